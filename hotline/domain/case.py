"""The case aggregate and the records the store keeps around it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hotline.contract import format_time
from hotline.crypto import Sealed
from hotline.domain.audit import AuditHead

MUTABLE_FIELDS = ("severity", "status", "unit", "due_at", "triage", "workflow", "fingerprint",
                  "excluded", "stub_unit", "archived_at", "retention_until")

__all__ = [
    "MUTABLE_FIELDS",
    "ROLES",
    "SEVERITIES",
    "SYSTEM_CHAIN",
    "Account",
    "Case",
    "CaseMessage",
    "CaseQuery",
    "ReceiptRecord",
    "case_id_for",
    "followup_status",
    "identities",
    "is_system_chain",
    "page_language",
    "reporter_language",
]

SEVERITIES = ("major", "high", "general", "low")
ROLES = ("clerk", "officer", "supervisor", "auditor", "admin")
# The router acts in workflows as "system"; no account can have that role.
Kind = Literal["report", "complaint"]


SYSTEM_CHAIN = "_system"  # the audit chain of events not about one case (accounts, keys …)


def is_system_chain(chain_id: str) -> bool:
    """Audit chains that belong to no case start with ``_`` (case ids start with ``c_``)."""
    return chain_id.startswith("_")


def case_id_for(submission_id: str) -> str:
    """Case ids derive from the submission id, so a redelivery can only hit the same case."""
    return "c_" + submission_id


@dataclass(frozen=True)
class CaseMessage:
    """A message on a case; content sealed, never stored in clear.

    ``sealed_for_org`` opens with the organisation key (officers read it);
    ``sealed_for_reporter`` opens only with the key derived from the receipt.
    """

    id: str
    case_id: str
    at: datetime
    author: Literal["officer", "reporter"]
    actor: str
    sealed_for_org: Sealed | None
    sealed_for_reporter: Sealed | None


@dataclass(frozen=True)
class Case:
    id: str
    submission_id: str
    reference: str
    kind: Kind
    category: str
    severity: str
    status: str
    unit: str
    channel: str
    opened_at: datetime
    received_at: datetime
    content: Sealed
    sealed_by: str
    due_at: datetime | None = None
    locale: str | None = None
    receipt_hash: str | None = None
    reply_key: bytes | None = None
    triage: Mapping[str, Any] = field(default_factory=dict)
    workflow: Mapping[str, Any] = field(default_factory=dict)
    audit_head: AuditHead | None = None
    version: int = 1
    fingerprint: str | None = None
    excluded: tuple[str, ...] = ()
    stub_unit: str | None = None  # the lower level that keeps only a stub (graded handling)
    # Set when the case closes (hotline/retention.py): "archived" is this flag, not a
    # status, so the workflow's "closed" state stays the status; the purge after
    # retention_until turns the case into a tombstone with status "purged".
    archived_at: datetime | None = None
    retention_until: datetime | None = None

    def summary(self) -> dict[str, Any]:
        """CaseSummary of CONTRACT §3."""
        return {
            "id": self.id,
            "reference": self.reference,
            "kind": self.kind,
            "category": self.category,
            "severity": self.severity,
            "status": self.status,
            "unit": self.unit,
            "channel": self.channel,
            "opened_at": format_time(self.opened_at),
            "due_at": None if self.due_at is None else format_time(self.due_at),
        }


def identities(account: Account) -> tuple[str, ...]:
    """What a case's exclusions may name an account by."""
    ids = [f"user:{account.username}"]
    if account.employee_id:
        ids.append(account.employee_id)
    return tuple(ids)


def followup_status(case: Case | None) -> str:
    """What a reporter is told: received, in_progress, answered or closed."""
    if case is None or case.status in _RECEIVED:
        return "received"
    if case.status in ("closed", "archived", "purged"):
        return "closed"
    if case.status in _ANSWERED:
        return "answered"
    return "in_progress"


# Units whose reporters are written to in another language than 简体 when the case's
# locale does not say (a post, phone or visit report).
_UNIT_LANGUAGE = {"HK": "zh-Hant", "OVERSEAS": "en"}


def page_language(tag: str) -> str | None:
    """The public pages' language (``en``, ``zh-Hans`` or ``zh-Hant``) that a language tag
    or locale names (``en-GB``, ``zh-TW``, ``zh-Hant-HK``, ``zh_CN`` …); None for others."""
    parts = tag.strip().lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh":
        traditional = "hant" in parts or any(p in ("tw", "hk", "mo") for p in parts[1:])
        return "zh-Hant" if traditional else "zh-Hans"
    return None


def reporter_language(case: Case) -> str:
    """The language (``en``, ``zh-Hans`` or ``zh-Hant``: the public pages' languages) in
    which the reporter or complainant is written to: the case's locale, else its unit's."""
    return page_language(case.locale or "") or _UNIT_LANGUAGE.get(case.unit, "zh-Hans")


_RECEIVED = frozenset({"new", "registered", "acknowledged"})
# Workflow states (hotline/data/workflows.toml) after which the reporter has had an answer.
_ANSWERED = frozenset({"feedback_sent", "resolved", "response_sent", "survey_sent"})


@dataclass(frozen=True)
class ReceiptRecord:
    receipt_hash: str
    case_id: str
    submission_id: str


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    role: str
    unit: str
    created_at: datetime
    disabled: bool = False
    must_change_password: bool = False
    employee_id: str | None = None


@dataclass(frozen=True)
class CaseQuery:
    """A page of cases; ``units`` is the caller's scope (None means every unit)."""

    units: frozenset[str] | None
    kind: str | None = None
    status: str | None = None
    severity: str | None = None
    unit: str | None = None
    overdue_at: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 50
    fingerprint: str | None = None
    # Identities of the reader (employee id, "user:<name>"): cases excluding any are hidden.
    viewer: tuple[str, ...] | None = None
    stub_units: frozenset[str] | None = None  # only cases forwarded away from these units
    # Purged cases (tombstones) are left out unless asked for (or status="purged").
    include_purged: bool = False
    retention_before: datetime | None = None  # archived cases whose retention ended by then
    channel: str | None = None  # "web", "email", "post", "phone" or "visit"
    assignee: str | None = None  # username in the case's workflow["assignee"]
    # True: only archived cases (archived_at set, hotline/retention.py); False: only those
    # not archived. "Archived" is a flag on a closed case, not a status.
    archived: bool | None = None
