"""The workflow engine: which actions are allowed now, what they change, what is due."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hotline.errors import HotlineError
from hotline.workdays import WorkCalendar
from hotline.workflow._definitions import (
    ActionSpec,
    ClockSpec,
    Condition,
    FieldSpec,
    WorkflowDefinition,
    load_definitions,
)

__all__ = [
    "ActionNotAllowedForRole",
    "ActionNotAllowedInState",
    "Actor",
    "Clock",
    "ClockDue",
    "ClosureConditionsUnmet",
    "Extension",
    "HistoryEntry",
    "InvalidActionFields",
    "OwnApprovalRefused",
    "UnknownAction",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowState",
]


class WorkflowError(HotlineError):
    """An action was refused; the subclass says why (and which HTTP status fits)."""

    status = 400


class ActionNotAllowedInState(WorkflowError):
    """The action is not allowed in the case's current state (HTTP 409)."""

    status = 409


class ClosureConditionsUnmet(ActionNotAllowedInState):
    """Closing (or an action with preconditions) before its conditions hold (HTTP 409)."""

    def __init__(self, message: str, unmet: Sequence[str]) -> None:
        super().__init__(message)
        self.unmet = list(unmet)


class ActionNotAllowedForRole(WorkflowError):
    """The actor's role may not perform the action (HTTP 403)."""

    status = 403


class OwnApprovalRefused(ActionNotAllowedForRole):
    """Nobody approves their own proposal (HTTP 403)."""


class InvalidActionFields(WorkflowError):
    """Required fields are missing or invalid (HTTP 422); ``problems`` maps field → message."""

    status = 422

    def __init__(self, message: str, problems: Mapping[str, str]) -> None:
        super().__init__(message)
        self.problems = dict(problems)


class UnknownAction(InvalidActionFields):
    """The workflow has no action of that name (HTTP 422)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a username and a role (``system`` for the router's own steps)."""

    username: str
    role: str


@dataclass(frozen=True)
class Extension:
    days: int
    reason: str
    approver: str
    requested_by: str
    notice_sent: bool
    at: datetime


@dataclass(frozen=True)
class Clock:
    """A running or finished deadline of a case."""

    name: str
    label: str
    unit: str
    amount: int
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None = None
    paused_at: datetime | None = None
    extensions: tuple[Extension, ...] = ()
    estimated: bool = False

    @property
    def met(self) -> bool | None:
        """True/False once stopped (in time or not); None while running."""
        return None if self.stopped_at is None else self.stopped_at <= self.due_at

    @property
    def running(self) -> bool:
        return self.stopped_at is None and self.paused_at is None


@dataclass(frozen=True)
class HistoryEntry:
    action: str
    actor: str
    role: str
    at: datetime
    from_state: str
    to_state: str


@dataclass(frozen=True)
class ClockDue:
    """A clock that needs attention: ``status`` is ``overdue`` or ``due_soon``."""

    name: str
    label: str
    due_at: datetime
    status: str
    estimated: bool


@dataclass(frozen=True)
class WorkflowState:
    """The workflow part of a case: state, clocks, what each action recorded, history."""

    workflow: str
    state: str
    opened_at: datetime
    clocks: Mapping[str, Clock] = field(default_factory=dict)
    record: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def to_dict(self, *, json: bool = False) -> dict[str, Any]:
        """Plain dict; with ``json=True`` datetimes become RFC 3339 strings.

        Written out by hand: ``dataclasses.asdict`` deep-copies every value and was a fifth
        of the router's time per case.
        """
        def t(moment: datetime | None) -> Any:
            return moment.isoformat() if json and moment is not None else moment

        def seq(items: list[Any]) -> Any:
            return items if json else tuple(items)

        return {
            "workflow": self.workflow,
            "state": self.state,
            "opened_at": t(self.opened_at),
            "clocks": {name: {
                "name": c.name, "label": c.label, "unit": c.unit, "amount": c.amount,
                "started_at": t(c.started_at), "due_at": t(c.due_at),
                "stopped_at": t(c.stopped_at), "paused_at": t(c.paused_at),
                "extensions": seq([{"days": e.days, "reason": e.reason,
                                    "approver": e.approver, "requested_by": e.requested_by,
                                    "notice_sent": e.notice_sent, "at": t(e.at)}
                                   for e in c.extensions]),
                "estimated": c.estimated} for name, c in self.clocks.items()},
            "record": {k: (_jsonable(dict(v)) if json else dict(v))
                       for k, v in self.record.items()},
            "history": seq([{"action": h.action, "actor": h.actor, "role": h.role,
                             "at": t(h.at), "from_state": h.from_state, "to_state": h.to_state}
                            for h in self.history]),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> WorkflowState:
        """Inverse of :meth:`to_dict` (either form)."""
        def clock(c: Mapping[str, Any]) -> Clock:
            extensions = tuple(Extension(**{**e, "at": _moment(e["at"])})
                               for e in c.get("extensions", ()))
            return Clock(**{**c, "started_at": _moment(c["started_at"]),
                            "due_at": _moment(c["due_at"]),
                            "stopped_at": _moment(c.get("stopped_at")),
                            "paused_at": _moment(c.get("paused_at")),
                            "extensions": extensions})
        return cls(workflow=doc["workflow"], state=doc["state"],
                   opened_at=_moment(doc["opened_at"]),
                   clocks={name: clock(c) for name, c in doc.get("clocks", {}).items()},
                   record={k: dict(v) for k, v in doc.get("record", {}).items()},
                   history=tuple(HistoryEntry(**{**h, "at": _moment(h["at"])})
                                 for h in doc.get("history", ())))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _moment(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class WorkflowEngine:
    """Interprets workflow definitions on a working-day calendar."""

    def __init__(self, definitions: Mapping[str, WorkflowDefinition],
                 calendar: WorkCalendar | None = None, *,
                 units: Collection[str] | None = None) -> None:
        """``units``: the organisation's unit codes, which a ``unit`` field must name;
        without them only the form of a code is checked."""
        self.definitions = dict(definitions)
        self.calendar = calendar if calendar is not None else WorkCalendar.default()
        self.units = None if units is None else frozenset(units)

    @classmethod
    def load(cls, path: Path | None = None, calendar: WorkCalendar | None = None, *,
             units: Collection[str] | None = None) -> WorkflowEngine:
        """Engine over ``path`` (or the packaged ``workflows.toml``)."""
        return cls(load_definitions(path), calendar, units=units)

    def definition_for(self, kind: str, flow: str, real_name: bool) -> WorkflowDefinition:
        """The workflow for a kind × flow × anonymity (anonymity only matters for reports)."""
        for definition in self.definitions.values():
            if definition.kind == kind and definition.flow == flow and (
                    definition.real_name is None or definition.real_name == real_name):
                return definition
        raise KeyError(f"no workflow for {kind}/{flow}/real_name={real_name}")

    def definition(self, state: WorkflowState) -> WorkflowDefinition:
        return self.definitions[state.workflow]

    @property
    def states(self) -> tuple[str, ...]:
        """Every state of every workflow, each once, in the order the definitions name them."""
        return tuple(dict.fromkeys(
            state for definition in self.definitions.values() for state in definition.states))

    # --- clocks ----------------------------------------------------------------------

    def _due(self, spec: ClockSpec, start: datetime) -> datetime:
        if spec.unit == "wd":
            return self.calendar.add_working_days(start, spec.amount)
        if spec.unit == "month":
            return self.calendar.add_calendar_months(start, spec.amount)
        return self.calendar.add_calendar_days(start, spec.amount)

    def _start_clock(self, spec: ClockSpec, now: datetime) -> Clock:
        due = self._due(spec, now)
        estimated = self.calendar.is_estimated(WorkCalendar.local_date(now),
                                               WorkCalendar.local_date(due))
        return Clock(name=spec.name, label=spec.label, unit=spec.unit, amount=spec.amount,
                     started_at=now, due_at=due, estimated=estimated and spec.unit == "wd")

    def _shift(self, clock: Clock, start: date, end: date) -> datetime:
        if clock.unit == "wd":
            return self.calendar.add_working_days(
                clock.due_at, self.calendar.working_days_between(start, end))
        return clock.due_at + timedelta(days=(end - start).days)

    def _run_triggers(self, definition: WorkflowDefinition, clocks: dict[str, Clock],
                      triggers: Sequence[str], now: datetime) -> None:
        for spec in definition.clocks.values():
            clock = clocks.get(spec.name)
            if any(t in spec.stop for t in triggers) and clock and clock.stopped_at is None:
                clocks[spec.name] = dataclasses.replace(clock, stopped_at=now, paused_at=None)
                clock = clocks[spec.name]
            if any(t in spec.start for t in triggers):
                clocks[spec.name] = self._start_clock(spec, now)
                continue
            if clock is None or clock.stopped_at is not None:
                continue
            if any(t in spec.pause for t in triggers) and clock.paused_at is None:
                clocks[spec.name] = dataclasses.replace(clock, paused_at=now)
            elif any(t in spec.resume for t in triggers) and clock.paused_at is not None:
                due = self._shift(clock, WorkCalendar.local_date(clock.paused_at),
                                  WorkCalendar.local_date(now))
                clocks[spec.name] = dataclasses.replace(clock, paused_at=None, due_at=due)

    def start(self, definition: WorkflowDefinition, opened_at: datetime) -> WorkflowState:
        """A new case in the initial state with the clocks that start at opening."""
        if opened_at.tzinfo is None:
            raise ValueError("opened_at must be timezone-aware")
        clocks: dict[str, Clock] = {}
        self._run_triggers(definition, clocks, ["open", f"enter:{definition.initial}"],
                           opened_at)
        return WorkflowState(workflow=definition.name, state=definition.initial,
                             opened_at=opened_at, clocks=clocks)

    def due(self, state: WorkflowState, now: datetime) -> list[ClockDue]:
        """Running clocks that are overdue or due soon, soonest first."""
        definition = self.definition(state)
        found = []
        for clock in state.clocks.values():
            if not clock.running:
                continue
            remind = definition.clocks[clock.name].remind_days if \
                clock.name in definition.clocks else 2
            if now > clock.due_at:
                status = "overdue"
            elif now >= clock.due_at - timedelta(days=remind):
                status = "due_soon"
            else:
                continue
            found.append(ClockDue(clock.name, clock.label, clock.due_at, status,
                                  clock.estimated))
        return sorted(found, key=lambda c: c.due_at)

    # --- actions ---------------------------------------------------------------------

    @staticmethod
    def _holds(condition: Condition, record: Mapping[str, Mapping[str, Any]]) -> bool:
        for item in condition:
            action, _, name = item.partition(".")
            if action in record and (not name or record[action].get(name) not in (None, "")):
                return True
        return False

    def _unmet(self, conditions: Sequence[Condition], state: WorkflowState) -> list[str]:
        return [" or ".join(c) for c in conditions if not self._holds(c, state.record)]

    def _refusal(self, definition: WorkflowDefinition, spec: ActionSpec, state: WorkflowState,
                 actor: Actor) -> WorkflowError | None:
        if state.state not in spec.from_states or state.state in definition.terminal:
            return ActionNotAllowedInState(
                f"{spec.name} is not allowed in state {state.state!r}")
        if actor.role not in spec.roles:
            return ActionNotAllowedForRole(
                f"{spec.name} is not allowed for role {actor.role!r} "
                f"(allowed: {', '.join(spec.roles)})")
        if spec.approves is not None:
            proposer = state.record.get(spec.approves, {}).get("actor")
            if proposer == actor.username:
                return OwnApprovalRefused(
                    f"{actor.username} did {spec.approves} and cannot also {spec.name}")
        if spec.max_times is not None and sum(
                1 for h in state.history if h.action == spec.name) >= spec.max_times:
            return ActionNotAllowedInState(
                f"{spec.name} may be done at most {spec.max_times} time(s)")
        unmet = self._unmet(spec.requires, state)
        if spec.closes:
            unmet += self._unmet(definition.closure, state)
        if unmet:
            return ClosureConditionsUnmet(
                f"{spec.name} needs first: {'; '.join(unmet)}", unmet)
        return None

    def allowed_actions(self, state: WorkflowState, actor: Actor) -> list[ActionSpec]:
        """The actions this actor may perform now (fields still to be supplied)."""
        definition = self.definition(state)
        return [spec for spec in definition.actions.values()
                if self._refusal(definition, spec, state, actor) is None]

    def apply(self, state: WorkflowState, action: str, actor: Actor,
              fields: Mapping[str, Any], now: datetime) -> WorkflowState:
        """Perform ``action``; raises a :class:`WorkflowError` subclass if refused."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        definition = self.definition(state)
        spec = definition.actions.get(action)
        if spec is None:
            raise UnknownAction(f"workflow {definition.name} has no action {action!r}",
                                {"action": "unknown action"})
        refusal = self._refusal(definition, spec, state, actor)
        if refusal is not None:
            raise refusal
        values = _validated(spec.fields, fields, self.units)
        target = self._target(spec, state, values)
        record = {**state.record, spec.name: {**values, "actor": actor.username,
                                              "at": now.isoformat()}}
        clocks = dict(state.clocks)
        if spec.extends:
            clocks = self._extend(spec, state, clocks, actor, record, now)
        triggers = [spec.name]
        if target != state.state:
            triggers += [f"leave:{state.state}", f"enter:{target}"]
        self._run_triggers(definition, clocks, triggers, now)
        if target in definition.terminal:
            clocks = {n: c if c.stopped_at else dataclasses.replace(c, stopped_at=now,
                                                                      paused_at=None)
                      for n, c in clocks.items()}
        entry = HistoryEntry(action=spec.name, actor=actor.username, role=actor.role, at=now,
                             from_state=state.state, to_state=target)
        return WorkflowState(workflow=state.workflow, state=target, opened_at=state.opened_at,
                             clocks=clocks, record=record, history=(*state.history, entry))

    @staticmethod
    def _target(spec: ActionSpec, state: WorkflowState, values: Mapping[str, Any]) -> str:
        if spec.route_field is not None:
            action, _, name = spec.route_field.partition(".")
            value = values.get(name) if action == spec.name else \
                state.record.get(action, {}).get(name)
            if value not in spec.route:
                raise ActionNotAllowedInState(f"{spec.name}: no route for {value!r}")
            return spec.route[str(value)]
        return spec.to or state.state

    def _extend(self, spec: ActionSpec, state: WorkflowState, clocks: dict[str, Clock],
                actor: Actor, record: Mapping[str, Mapping[str, Any]],
                now: datetime) -> dict[str, Clock]:
        source, _, name = (spec.extend_days or "").partition(".")
        request = record.get(source, {})
        days = request.get(name)
        if not isinstance(days, int) or days < 1 or (
                spec.extend_max_days is not None and days > spec.extend_max_days):
            raise InvalidActionFields(f"{spec.name}: extension of {days!r} days is not allowed",
                                      {"days": f"1 to {spec.extend_max_days}"})
        reason = request.get("reason", "")
        # A sealed reason (casework seals free text, hotline/casefile.py) stays in the
        # record only: the clock keeps no second copy of it.
        extension = Extension(days=days, reason=reason if isinstance(reason, str) else "",
                              approver=actor.username, requested_by=str(request.get("actor")),
                              notice_sent=bool(record[spec.name].get("notice_sent")), at=now)
        for clock_name in spec.extends:
            clock = clocks.get(clock_name)
            if clock is None or clock.stopped_at is not None:
                continue
            if clock.extensions:
                raise ActionNotAllowedInState(f"clock {clock_name} was already extended")
            clocks[clock_name] = dataclasses.replace(
                clock, due_at=clock.due_at + timedelta(days=days),
                extensions=(*clock.extensions, extension))
        return clocks


_UNIT_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,39}")  # as units.toml allows (hotline/org.py)


def _validated(specs: Sequence[FieldSpec], fields: Mapping[str, Any],
               units: frozenset[str] | None) -> dict[str, Any]:
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    for spec in specs:
        value = fields.get(spec.name)
        if spec.optional and (value is None or value == ""):
            continue
        problem = _check_value(spec.type, spec, value, units)
        if problem:
            problems[spec.name] = problem
        else:
            values[spec.name] = value
    if problems:
        listed = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise InvalidActionFields(f"missing or invalid fields: {listed}", problems)
    return values


def _check_value(kind: str, spec: FieldSpec, value: Any,
                 units: frozenset[str] | None = None) -> str | None:
    if value is None or value == "":
        return "required"
    if kind == "text":
        return None if isinstance(value, str) and value.strip() else "must be text"
    if kind == "choice":
        return None if value in spec.choices else f"must be one of {', '.join(spec.choices)}"
    if kind == "unit":
        if not isinstance(value, str) or not _UNIT_CODE.fullmatch(value):
            return "must be a unit code"
        return None if units is None or value in units else "is not an organisation unit"
    if kind == "true":
        return None if value is True else "must be true (confirm it was done)"
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        if (spec.min is not None and value < spec.min) or (
                spec.max is not None and value > spec.max):
            return f"must be between {spec.min} and {spec.max}"
        return None
    if kind == "date":
        if isinstance(value, date):
            return None
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return "must be a date (YYYY-MM-DD)"
        return None
    if kind == "object":
        if not isinstance(value, Mapping):
            return f"must be an object with {', '.join(spec.keys)}"
        inner = [f"{key} {problem}" for key, sub in spec.keys.items()
                 if (problem := _check_value(sub, FieldSpec(key, sub), value.get(key), units))]
        return "; ".join(inner) or None
    return f"unknown field type {kind!r}"
