"""Building and advancing cases from triage and workflow results (router and casework)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from hotline.domain.case import Case
from hotline.org import OrgTree
from hotline.retention import PURGED
from hotline.triage import TriageResult
from hotline.workflow import WorkflowDefinition, WorkflowEngine, WorkflowState

__all__ = ["OPENED", "SEALED", "apply_triage", "apply_workflow", "case_statuses", "earliest_due",
           "is_sealed_value", "keyed_fingerprint", "map_sealed_values", "seal_action_text",
           "workflow_of"]

# The status of a case built before its workflow starts (router/worker.py); a case stored
# without a workflow document keeps it.
OPENED = "new"

# A free-text workflow value at rest: {"sealed": {"kid", "enc", "ciphertext"}} (HPKE to the
# organisation key, purpose "workflow"). Choices, numbers, dates and confirmations stay
# clear: deadlines, routes, the dashboard and closure conditions read them.
SEALED = "sealed"


def keyed_fingerprint(key: bytes, fingerprint: str) -> str:
    """A content fingerprint keyed with a secret of the installation.

    Stored in clear for repeat detection; keyed so that whoever reads the database cannot
    confirm a guessed report text by hashing it.
    """
    return hmac.new(key, fingerprint.encode(), hashlib.sha256).hexdigest()


def earliest_due(state: WorkflowState) -> datetime | None:
    running = [c.due_at for c in state.clocks.values() if c.running]
    return min(running) if running else None


def case_statuses(engine: WorkflowEngine) -> tuple[str, ...]:
    """Every status a case can have: :data:`OPENED`, the states of the engine's workflows
    (a case's status is its workflow's state, see :func:`apply_workflow`) and ``purged``
    (a tombstone, hotline/retention.py)."""
    return tuple(dict.fromkeys((OPENED, *engine.states, PURGED)))


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


def is_sealed_value(value: object) -> bool:
    """Whether a recorded workflow value is a sealed text (see :data:`SEALED`)."""
    return isinstance(value, Mapping) and set(value) == {SEALED} and isinstance(
        value[SEALED], Mapping)


def seal_action_text(state: WorkflowState, definition: WorkflowDefinition, action: str,
                     seal_text: Callable[[str], Mapping[str, str]]) -> WorkflowState:
    """``state`` with the text fields ``action`` just recorded sealed by ``seal_text``.

    Text-typed fields, and text keys of object fields (a corrective action's owner), are
    replaced by ``{"sealed": seal_text(value)}``; a closure condition on such a field
    still holds, as it asks only whether a value is present.
    """
    spec = definition.actions.get(action)
    entry = state.record.get(action)
    if spec is None or entry is None:
        return state

    def sealed(kind: str, value: Any) -> Any:
        return {SEALED: dict(seal_text(value))} if kind == "text" and isinstance(
            value, str) else value

    updated = dict(entry)
    for field in spec.fields:
        if field.name not in updated:
            continue
        value = updated[field.name]
        if field.type == "object" and isinstance(value, Mapping):
            updated[field.name] = {k: sealed(field.keys.get(k, ""), v) for k, v in value.items()}
        else:
            updated[field.name] = sealed(field.type, value)
    return replace(state, record={**state.record, action: updated})


def map_sealed_values(value: Any, convert: Callable[[Mapping[str, str]], Any]) -> Any:
    """``value`` (a recorded workflow document) with each sealed text replaced by
    ``convert(envelope)``: the opened text for an authorised reader, a placeholder else."""
    if is_sealed_value(value):
        return convert(value[SEALED])
    if isinstance(value, Mapping):
        return {k: map_sealed_values(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [map_sealed_values(v, convert) for v in value]
    return value


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
