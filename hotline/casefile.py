"""Building and advancing cases from triage and workflow results (router and casework)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from hotline.domain.case import Case
from hotline.org import OrgTree
from hotline.triage import TriageResult
from hotline.workflow import WorkflowEngine, WorkflowState

__all__ = ["apply_triage", "apply_workflow", "earliest_due", "keyed_fingerprint",
           "workflow_of"]


def keyed_fingerprint(key: bytes, fingerprint: str) -> str:
    """A content fingerprint keyed with a secret of the installation.

    Stored in clear for repeat detection; keyed so that whoever reads the database cannot
    confirm a guessed report text by hashing it.
    """
    return hmac.new(key, fingerprint.encode(), hashlib.sha256).hexdigest()


def earliest_due(state: WorkflowState) -> datetime | None:
    running = [c.due_at for c in state.clocks.values() if c.running]
    return min(running) if running else None


def workflow_of(case: Case) -> WorkflowState:
    return WorkflowState.from_dict(case.workflow["state"])


def apply_workflow(case: Case, state: WorkflowState, engine: WorkflowEngine,
                   notified: Mapping[str, Any] | None = None) -> Case:
    """The case with ``state`` as its workflow: status, due date and stored document."""
    definition = engine.definition(state)
    deadlines = [{"name": c.label, "clock": c.name, "due_at": c.due_at.isoformat(),
                  "met_at": None if c.stopped_at is None else c.stopped_at.isoformat(),
                  "met": c.met, "estimated": c.estimated}
                 for c in sorted(state.clocks.values(), key=lambda c: c.due_at)]
    doc = {"name": definition.name, "state": state.to_dict(json=True),
           "deadlines": deadlines,
           "notified": dict(notified if notified is not None else
                            case.workflow.get("notified", {}))}
    return replace(case, status=state.state, due_at=earliest_due(state), workflow=doc)


def apply_triage(case: Case, result: TriageResult, org: OrgTree, fingerprint: str) -> Case:
    """The case with a triage result: severity, responsible unit, exclusions, explanation."""
    doc = result.public_dict()
    doc["fingerprint"] = fingerprint
    doc["rules"] = result.rule_ids
    doc["explanation"] = [{"rule": f.id, "reason": f.reason, "severity": f.severity}
                          for f in result.fired]
    unit = result.responsible_unit if result.responsible_unit in org else case.unit
    excluded = tuple(sorted({e.employee_id for e in result.exclusions if e.employee_id}))
    stub = result.stub_unit if result.stub_unit in org and result.stub_unit != unit else None
    return replace(case, severity=result.severity, category=result.category, unit=unit, triage=doc,
                   fingerprint=fingerprint, excluded=tuple(sorted({*case.excluded, *excluded})),
                   stub_unit=stub or case.stub_unit)
