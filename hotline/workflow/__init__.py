"""Response workflows as data, interpreted by one engine on a working-day calendar.

Definitions live in ``hotline/data/workflows.toml`` (per kind × flow × anonymity). The
engine answers which actions a person may perform now, applies them (or refuses with
an exception that names the fitting HTTP status) and keeps the clocks.
"""

from __future__ import annotations

from hotline.workflow._definitions import (
    ActionSpec,
    ClockSpec,
    FieldSpec,
    WorkflowDefinition,
    load_definitions,
    parse_definitions,
    validate_workflows,
)
from hotline.workflow._engine import (
    ActionNotAllowedForRole,
    ActionNotAllowedInState,
    Actor,
    Clock,
    ClockDue,
    ClosureConditionsUnmet,
    Extension,
    HistoryEntry,
    InvalidActionFields,
    OwnApprovalRefused,
    UnknownAction,
    WorkflowEngine,
    WorkflowError,
    WorkflowState,
)

__all__ = [
    "ActionNotAllowedForRole",
    "ActionNotAllowedInState",
    "ActionSpec",
    "Actor",
    "Clock",
    "ClockDue",
    "ClockSpec",
    "ClosureConditionsUnmet",
    "Extension",
    "FieldSpec",
    "HistoryEntry",
    "InvalidActionFields",
    "OwnApprovalRefused",
    "UnknownAction",
    "WorkflowDefinition",
    "WorkflowEngine",
    "WorkflowError",
    "WorkflowState",
    "load_definitions",
    "parse_definitions",
    "validate_workflows",
]
