"""The clock runner: reminders before deadlines, escalations after them.

Each crossing (a clock becoming due soon, overdue, or overdue long enough to go one level
up) is announced exactly once, however many routers run: a runner first claims the
crossing by updating the case at the version it read (only one writer can win), then
writes the audit event and publishes ``case.escalated`` with an id derived from the
crossing, then marks the claim done. A claim left pending by a runner that died is
finished by the next sweep; the audit event is written only if missing and the event id
is stable, so consumers can drop a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from hotline.casefile import workflow_of
from hotline.clock import utcnow
from hotline.contract import CaseEvent
from hotline.domain.case import Case, CaseQuery
from hotline.errors import ConcurrencyConflict
from hotline.logging import get_logger
from hotline.org import OrgTree
from hotline.ports import Bus, Message, Store
from hotline.services import append_audit
from hotline.workflow import WorkflowEngine

__all__ = ["ClockRunner"]

_log = get_logger("hotline.router.clocks")

CROSSINGS = Counter("hotline_clock_crossings_total", "Deadline reminders and escalations",
                    ["crossing", "clock"])

# How long a clock may be overdue before the escalation goes one level up (policy).
_ESCALATE_UP_AFTER = timedelta(days=5)
# A claim older than this without being marked done is finished by another sweep.
_STALE_CLAIM = timedelta(seconds=60)
# A clock of no definition counts as due soon this many days before it is due (as
# WorkflowEngine.due has it).
_DEFAULT_REMIND_DAYS = 2


@dataclass
class ClockRunner:
    store: Store
    bus: Bus
    org: OrgTree
    workflows: WorkflowEngine
    interval_seconds: float = 30.0
    batch: int = 500
    # Other periodic work of the router, run after each sweep, each on its own: survey
    # expiry and the purge after retention (router/periodic.py).
    jobs: Sequence[Callable[[datetime], Awaitable[object]]] = ()

    async def run(self) -> None:
        """Sweep forever (until cancelled); a failed sweep is logged and retried."""
        while True:
            try:
                await self.sweep(utcnow())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the runner must outlive one bad sweep
                _log.error("clocks.sweep_failed", error_type=type(exc).__name__)
            for job in self.jobs:
                try:
                    await job(utcnow())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one failing job must not stop the others
                    _log.error("clocks.job_failed", job=getattr(job, "__name__", "job"),
                               error_type=type(exc).__name__)
            await asyncio.sleep(self.interval_seconds)

    @property
    def lookahead(self) -> timedelta:
        """How far ahead a case's earliest deadline may lie for one of its clocks to be due
        soon: the longest ``remind_days`` of the workflows. A sweep reads only those cases
        (it read every case due within a week, i.e. nearly every open case, each 30 s)."""
        days = [spec.remind_days for definition in self.workflows.definitions.values()
                for spec in definition.clocks.values()]
        return timedelta(days=max([_DEFAULT_REMIND_DAYS, *days]))

    async def sweep(self, now: datetime) -> int:
        """Announce every crossing due at ``now``; returns how many this runner announced."""
        announced = 0
        after: tuple[datetime, str] | None = None
        horizon = now + self.lookahead
        while True:
            cases = await self.store.cases.query(CaseQuery(
                units=None, overdue_at=horizon, after=after, limit=self.batch))
            for case in cases:
                if "state" not in case.workflow:
                    continue
                for crossing in self._crossings(case, now):
                    if await self._announce(case.id, crossing, now):
                        announced += 1
            if len(cases) < self.batch:
                return announced
            after = (cases[-1].opened_at, cases[-1].id)

    def _crossings(self, case: Case, now: datetime) -> list[dict[str, Any]]:
        found = []
        for due in self.workflows.due(workflow_of(case), now):
            kinds = ["due_soon"] if due.status == "due_soon" else ["overdue"]
            if due.status == "overdue" and now - due.due_at >= _ESCALATE_UP_AFTER:
                kinds.append("escalated_up")
            for kind in kinds:
                found.append({"clock": due.name, "label": due.label, "kind": kind,
                              "due_at": due.due_at.isoformat()})
        return found

    @staticmethod
    def _key(crossing: dict[str, Any]) -> str:
        return f"{crossing['clock']}:{crossing['kind']}:{crossing['due_at']}"

    async def _announce(self, case_id: str, crossing: dict[str, Any], now: datetime) -> bool:
        key = self._key(crossing)
        case = await self.store.cases.get(case_id)
        if case is None:
            return False
        notified = dict(case.workflow.get("notified", {}))
        mark = notified.get(key)
        if mark is not None and (mark.get("done") or datetime.fromisoformat(
                mark["claimed_at"]) > now - _STALE_CLAIM):
            return False
        notified[key] = {"claimed_at": now.isoformat(), "done": False}
        try:
            case = await self.store.cases.update(
                replace(case, workflow={**case.workflow, "notified": notified}),
                expected_version=case.version)
        except ConcurrencyConflict:
            return False  # another runner claimed it (or the case moved): next sweep decides
        target = self._target(case, crossing["kind"])
        event_id = hashlib.sha256(f"{case.id}|{key}".encode()).hexdigest()[:32]
        events = await self.store.audit.events(case.id)
        if not any(e.data.get("crossing") == key for e in events):
            await append_audit(self.store, case.id, actor="router",
                               type_=f"clock.{crossing['kind']}",
                               data={"crossing": key, "clock": crossing["clock"],
                                     "due_at": crossing["due_at"], "notify": target})
        await self.bus.publish(Message(
            routing_key="case.escalated", message_id=event_id,
            body=CaseEvent(id=event_id, occurred_at=now, correlation_id=case.id[:64],
                           type="case.escalated", case_id=case.id, reference=case.reference,
                           kind=case.kind, unit=case.unit, severity=case.severity,
                           status=case.status).to_bytes(),
            correlation_id=case.id[:64], headers={"crossing": crossing["kind"],
                                                   "clock": crossing["clock"],
                                                   "notify": target}))
        await self._mark_done(case.id, key)
        CROSSINGS.labels(crossing["kind"], crossing["clock"]).inc()
        _log.info("clock.crossing", case_id=case.id, clock=crossing["clock"],
                  crossing=crossing["kind"], notify=target)
        return True

    def _target(self, case: Case, kind: str) -> str:
        """Who is told: the handlers (due soon), the unit's supervisors, then the level up."""
        if kind == "due_soon":
            return f"officers:{case.unit}"
        if kind == "overdue":
            return f"supervisors:{case.unit}"
        parent = self.org.parent_of(case.unit) if case.unit in self.org else None
        return f"supervisors:{parent or case.unit}"

    async def _mark_done(self, case_id: str, key: str) -> None:
        for _ in range(5):
            case = await self.store.cases.get(case_id)
            if case is None:
                return
            notified = dict(case.workflow.get("notified", {}))
            notified[key] = {**notified.get(key, {}), "done": True}
            try:
                await self.store.cases.update(
                    replace(case, workflow={**case.workflow, "notified": notified}),
                    expected_version=case.version)
                return
            except ConcurrencyConflict:
                continue
