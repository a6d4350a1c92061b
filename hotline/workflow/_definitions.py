"""Workflow definitions as data: fields, clocks, actions and workflows from TOML."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "ActionSpec",
    "ClockSpec",
    "Condition",
    "FieldSpec",
    "WorkflowDefinition",
    "load_definitions",
    "parse_definitions",
    "validate_workflows",
]

# "unit": an organisation unit's code (the engine checks it against the tree it is given).
FIELD_TYPES = ("text", "choice", "unit", "true", "int", "date", "object")
CLOCK_UNITS = ("wd", "d", "month")
_FIELD_KEYS = {"type", "choices", "min", "max", "keys", "optional"}
_CLOCK_KEYS = {"label", "amount", "unit", "start", "stop", "pause", "resume", "remind_days"}
_ACTION_KEYS = {"from", "to", "roles", "fields", "route", "approves", "requires", "max_times",
                "extends", "closes"}
_WORKFLOW_KEYS = {"name", "kind", "flow", "real_name", "initial", "states", "terminal",
                  "actions", "clocks", "closure", "overrides"}

# A condition is "action" or "action.field"; a tuple of them means any of.
Condition = tuple[str, ...]


@dataclass(frozen=True)
class FieldSpec:
    """A field an action requires, and what a valid value looks like."""

    name: str
    type: str
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    optional: bool = False  # an action may be done without it (checked when given)


@dataclass(frozen=True)
class ClockSpec:
    """A deadline: how long, on which calendar, and which events start/stop/pause it."""

    name: str
    label: str
    amount: int
    unit: str
    start: tuple[str, ...]
    stop: tuple[str, ...] = ()
    pause: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    remind_days: int = 2


@dataclass(frozen=True)
class ActionSpec:
    """An action of a workflow: where it is allowed, for whom, with what."""

    name: str
    from_states: tuple[str, ...]
    roles: tuple[str, ...]
    to: str | None = None
    fields: tuple[FieldSpec, ...] = ()
    route_field: str | None = None
    route: Mapping[str, str] = field(default_factory=dict)
    approves: str | None = None
    requires: tuple[Condition, ...] = ()
    max_times: int | None = None
    extends: tuple[str, ...] = ()
    extend_days: str | None = None
    extend_max_days: int | None = None
    closes: bool = False


@dataclass(frozen=True)
class WorkflowDefinition:
    """One response workflow (kind × flow × anonymity)."""

    name: str
    kind: str
    flow: str
    real_name: bool | None
    initial: str
    states: tuple[str, ...]
    terminal: tuple[str, ...]
    actions: Mapping[str, ActionSpec]
    clocks: Mapping[str, ClockSpec]
    closure: tuple[Condition, ...]


def _conditions(raw: Sequence[Any]) -> tuple[Condition, ...]:
    return tuple(tuple(c) if isinstance(c, list) else (str(c),) for c in raw)


def parse_definitions(doc: Mapping[str, Any],
                      source: str = "workflows.toml") -> dict[str, WorkflowDefinition]:
    """All workflows of a document by name; ``ValueError`` listing every problem."""
    errors = validate_workflows(doc, source)
    if errors:
        raise ValueError("; ".join(errors))
    remind = int(doc.get("defaults", {}).get("remind_days", 2))
    fields = {name: FieldSpec(name=name, type=f["type"], choices=tuple(f.get("choices", ())),
                              min=f.get("min"), max=f.get("max"), keys=dict(f.get("keys", {})),
                              optional=bool(f.get("optional", False)))
              for name, f in doc.get("fields", {}).items()}
    clocks = {name: ClockSpec(name=name, label=c.get("label", name), amount=int(c["amount"]),
                              unit=c["unit"], start=tuple(c["start"]),
                              stop=tuple(c.get("stop", ())), pause=tuple(c.get("pause", ())),
                              resume=tuple(c.get("resume", ())),
                              remind_days=int(c.get("remind_days", remind)))
              for name, c in doc.get("clocks", {}).items()}
    result: dict[str, WorkflowDefinition] = {}
    for entry in doc["workflow"]:
        overrides = entry.get("overrides", {})
        actions = {}
        for name in entry["actions"]:
            raw = {**doc["actions"][name], **overrides.get(name, {})}
            route = raw.get("route", {})
            extends = raw.get("extends", {})
            actions[name] = ActionSpec(
                name=name, from_states=tuple(raw["from"]), roles=tuple(raw["roles"]),
                to=raw.get("to"), fields=tuple(fields[f] for f in raw.get("fields", ())),
                route_field=route.get("field"), route=dict(route.get("map", {})),
                approves=raw.get("approves"), requires=_conditions(raw.get("requires", ())),
                max_times=raw.get("max_times"), extends=tuple(extends.get("clocks", ())),
                extend_days=extends.get("days"), extend_max_days=extends.get("max_days"),
                closes=bool(raw.get("closes", False)))
        result[entry["name"]] = WorkflowDefinition(
            name=entry["name"], kind=entry["kind"], flow=entry["flow"],
            real_name=entry.get("real_name"), initial=entry["initial"],
            states=tuple(entry["states"]), terminal=tuple(entry.get("terminal", ())),
            actions=actions, clocks={n: clocks[n] for n in entry["clocks"]},
            closure=_conditions(entry.get("closure", ())))
    return result


def load_definitions(path: Path | None = None) -> dict[str, WorkflowDefinition]:
    """Load ``path`` or the packaged ``workflows.toml``."""
    if path is None:
        text = resources.files("hotline").joinpath("data/workflows.toml").read_text("utf-8")
        return parse_definitions(tomllib.loads(text), "workflows.toml (default)")
    return parse_definitions(tomllib.loads(path.read_text("utf-8")), str(path))


def validate_workflows(doc: Mapping[str, Any], source: str) -> list[str]:
    """Every problem of a workflows document, each with its location."""
    errors: list[str] = []
    for key in set(doc) - {"defaults", "fields", "clocks", "actions", "workflow"}:
        errors.append(f"{source}: unknown key {key!r}")
    fields = doc.get("fields", {})
    clocks = doc.get("clocks", {})
    actions = doc.get("actions", {})
    for name, spec in fields.items():
        where = f"{source}: fields.{name}"
        errors += [f"{where}: unknown key {k!r}" for k in set(spec) - _FIELD_KEYS]
        if spec.get("type") not in FIELD_TYPES:
            errors.append(f"{where}: type must be one of {', '.join(FIELD_TYPES)}")
        if spec.get("type") == "choice" and not spec.get("choices"):
            errors.append(f"{where}: a choice needs choices")
        for key, kind in dict(spec.get("keys", {})).items():
            if kind not in FIELD_TYPES:
                errors.append(f"{where}.keys.{key}: unknown type {kind!r}")
    for name, spec in clocks.items():
        where = f"{source}: clocks.{name}"
        errors += [f"{where}: unknown key {k!r}" for k in set(spec) - _CLOCK_KEYS]
        if not isinstance(spec.get("amount"), int) or spec["amount"] < 0:
            errors.append(f"{where}: amount must be a whole number ≥ 0")
        if spec.get("unit") not in CLOCK_UNITS:
            errors.append(f"{where}: unit must be one of {', '.join(CLOCK_UNITS)}")
        if not spec.get("start"):
            errors.append(f"{where}: start is required")
        for key in ("start", "stop", "pause", "resume"):
            for trigger in spec.get(key, []):
                if not _trigger_ok(trigger, actions):
                    errors.append(f"{where}.{key}: {trigger!r} is not 'open', an action, "
                                  "'enter:STATE' or 'leave:STATE'")
    for name, spec in actions.items():
        errors += _check_action(f"{source}: actions.{name}", spec, fields, clocks, actions)
    workflows = doc.get("workflow")
    if not isinstance(workflows, list) or not workflows:
        return [*errors, f"{source}: at least one [[workflow]] is required"]
    names: set[str] = set()
    for index, entry in enumerate(workflows):
        where = f"{source}: workflow[{index}]"
        if isinstance(entry.get("name"), str):
            where += f" ({entry['name']})"
            if entry["name"] in names:
                errors.append(f"{where}: duplicate name")
            names.add(entry["name"])
        errors += _check_workflow(where, entry, actions, clocks)
    return errors


def _trigger_ok(trigger: object, actions: Mapping[str, Any]) -> bool:
    if not isinstance(trigger, str):
        return False
    if trigger == "open" or trigger in actions:
        return True
    kind, _, state = trigger.partition(":")
    return kind in ("enter", "leave") and bool(state)


def _check_action(where: str, spec: Mapping[str, Any], fields: Mapping[str, Any],
                  clocks: Mapping[str, Any], actions: Mapping[str, Any]) -> list[str]:
    errors = [f"{where}: unknown key {k!r}" for k in set(spec) - _ACTION_KEYS]
    if not spec.get("from"):
        errors.append(f"{where}: from (states) is required")
    if not spec.get("roles"):
        errors.append(f"{where}: roles is required")
    for name in spec.get("fields", []):
        if name not in fields:
            errors.append(f"{where}.fields: no [fields.{name}]")
    if spec.get("approves") is not None and spec["approves"] not in actions:
        errors.append(f"{where}.approves: no action {spec['approves']!r}")
    extends = spec.get("extends")
    if extends is not None:
        for clock in extends.get("clocks", []):
            if clock not in clocks:
                errors.append(f"{where}.extends: no clock {clock!r}")
        if not isinstance(extends.get("days"), str):
            errors.append(f"{where}.extends: days must name 'action.field'")
    for condition in spec.get("requires", []):
        for item in condition if isinstance(condition, list) else [condition]:
            if str(item).split(".")[0] not in actions:
                errors.append(f"{where}.requires: {item!r} names no action")
    return errors


def _check_workflow(where: str, entry: Mapping[str, Any], actions: Mapping[str, Any],
                    clocks: Mapping[str, Any]) -> list[str]:
    errors = [f"{where}: unknown key {k!r}" for k in set(entry) - _WORKFLOW_KEYS]
    for key in ("name", "kind", "flow", "initial"):
        if not isinstance(entry.get(key), str):
            errors.append(f"{where}: {key} is required")
    if entry.get("kind") not in ("report", "complaint"):
        errors.append(f"{where}: kind must be report or complaint")
    if entry.get("flow") not in ("serious", "general"):
        errors.append(f"{where}: flow must be serious or general")
    if entry.get("kind") == "report" and not isinstance(entry.get("real_name"), bool):
        errors.append(f"{where}: real_name (true/false) is required for reports")
    states = set(entry.get("states", []))
    if entry.get("initial") not in states:
        errors.append(f"{where}: initial state {entry.get('initial')!r} is not in states")
    for state in entry.get("terminal", []):
        if state not in states:
            errors.append(f"{where}.terminal: {state!r} is not in states")
    own_actions = list(entry.get("actions", []))
    overrides = entry.get("overrides", {})
    for name in own_actions:
        if name not in actions:
            errors.append(f"{where}.actions: no [actions.{name}]")
            continue
        spec = {**actions[name], **overrides.get(name, {})}
        # shared actions may list states other workflows have; one must be ours
        if not states & set(spec.get("from", [])):
            errors.append(f"{where}: action {name}: none of its from-states is in states")
        for state in [*([spec["to"]] if "to" in spec else []),
                      *dict(spec.get("route", {})).get("map", {}).values()]:
            if state not in states:
                errors.append(f"{where}: action {name}: state {state!r} is not in states")
        if spec.get("approves") and spec["approves"] not in own_actions:
            errors.append(f"{where}: action {name} approves {spec['approves']!r}, "
                          "which this workflow lacks")
    for name in overrides:
        if name not in own_actions:
            errors.append(f"{where}.overrides: {name!r} is not an action of this workflow")
    for name in entry.get("clocks", []):
        if name not in clocks:
            errors.append(f"{where}.clocks: no [clocks.{name}]")
    for condition in entry.get("closure", []):
        for item in condition if isinstance(condition, list) else [condition]:
            if str(item).split(".")[0] not in own_actions:
                errors.append(f"{where}.closure: {item!r} names no action of this workflow")
    return errors
