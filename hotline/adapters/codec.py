"""Case and message documents as plain dicts: what every store adapter persists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from hotline.crypto import Sealed
from hotline.domain.audit import AuditHead
from hotline.domain.case import Case, CaseMessage
from hotline.errors import ContractError

__all__ = ["case_from_doc", "case_to_doc", "message_from_doc", "message_to_doc", "page_limit"]


def page_limit(value: object) -> int:
    """A page size as stores take it: a positive int (0 means "no limit" to MongoDB and -1
    to SQLite; neither may come from a caller)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ContractError("limit must be a positive integer", field="limit")
    return value


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def sealed_to_doc(sealed: Sealed | None) -> dict[str, Any] | None:
    if sealed is None:
        return None
    return {"kid": sealed.kid, "enc": sealed.enc, "ciphertext": sealed.ciphertext}


def sealed_from_doc(doc: dict[str, Any] | None) -> Sealed | None:
    if doc is None:
        return None
    return Sealed(doc["kid"], bytes(doc["enc"]), bytes(doc["ciphertext"]))


def case_to_doc(case: Case, *, content: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Times stay ``datetime`` and blobs ``bytes``; each adapter maps them to its types.

    ``content`` replaces the sealed content's entry (``kid``, ``enc``, ``ciphertext``): an
    adapter that keeps a large ciphertext apart from the document stores ``kid`` and
    ``enc`` only (see :func:`case_from_doc`).
    """
    return {
        "id": case.id,
        "submission_id": case.submission_id,
        "reference": case.reference,
        "kind": case.kind,
        "category": case.category,
        "severity": case.severity,
        "status": case.status,
        "unit": case.unit,
        "channel": case.channel,
        "opened_at": case.opened_at,
        "received_at": case.received_at,
        "due_at": case.due_at,
        "locale": case.locale,
        "content": sealed_to_doc(case.content) if content is None else dict(content),
        "sealed_by": case.sealed_by,
        "receipt_hash": case.receipt_hash,
        "reply_key": case.reply_key,
        "triage": dict(case.triage),
        "workflow": dict(case.workflow),
        "audit_head": None if case.audit_head is None else {
            "seq": case.audit_head.seq, "hash": case.audit_head.hash},
        "version": case.version,
        "fingerprint": case.fingerprint,
        "excluded": list(case.excluded),
        "stub_unit": case.stub_unit,
        "archived_at": case.archived_at,
        "retention_until": case.retention_until,
    }


def case_from_doc(doc: dict[str, Any], ciphertext: bytes | None = None, *,
                  with_content: bool = True) -> Case:
    """The case of ``doc``; its content is read from the document, or, for an entry
    without a ciphertext, made of ``kid`` and ``enc`` there and ``ciphertext`` here.

    With ``with_content=False`` the content is :meth:`Sealed.withheld` (kid and enc only,
    whatever the document holds): a case of a list, whose content is not read.
    """
    head = doc.get("audit_head")
    due = doc.get("due_at")
    reply_key = doc.get("reply_key")
    return Case(
        id=doc["id"],
        submission_id=doc["submission_id"],
        reference=doc["reference"],
        kind=doc["kind"],
        category=doc["category"],
        severity=doc["severity"],
        status=doc["status"],
        unit=doc["unit"],
        channel=doc["channel"],
        opened_at=_aware(doc["opened_at"]),
        received_at=_aware(doc["received_at"]),
        due_at=None if due is None else _aware(due),
        locale=doc.get("locale"),
        content=_content_of(doc["content"], ciphertext, with_content=with_content),
        sealed_by=doc["sealed_by"],
        receipt_hash=doc.get("receipt_hash"),
        reply_key=None if reply_key is None else bytes(reply_key),
        triage=doc.get("triage") or {},
        workflow=doc.get("workflow") or {},
        audit_head=None if not head else AuditHead(int(head["seq"]), head["hash"]),
        version=int(doc.get("version", 1)),
        fingerprint=doc.get("fingerprint"),
        excluded=tuple(doc.get("excluded") or ()),
        stub_unit=doc.get("stub_unit"),
        archived_at=None if doc.get("archived_at") is None else _aware(doc["archived_at"]),
        retention_until=None if doc.get("retention_until") is None else _aware(
            doc["retention_until"]),
    )


def _content_of(entry: dict[str, Any], ciphertext: bytes | None, *,
                with_content: bool) -> Sealed:
    if not with_content:
        return Sealed.withheld(entry["kid"], bytes(entry["enc"]))
    if "ciphertext" in entry:
        return cast(Sealed, sealed_from_doc(entry))
    if ciphertext is None:
        raise KeyError("the case's ciphertext is kept apart and was not given")
    return Sealed(entry["kid"], bytes(entry["enc"]), bytes(ciphertext))


def message_to_doc(message: CaseMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "case_id": message.case_id,
        "at": message.at,
        "author": message.author,
        "actor": message.actor,
        "sealed_for_org": sealed_to_doc(message.sealed_for_org),
        "sealed_for_reporter": sealed_to_doc(message.sealed_for_reporter),
    }


def message_from_doc(doc: dict[str, Any]) -> CaseMessage:
    return CaseMessage(
        id=doc["id"],
        case_id=doc["case_id"],
        at=_aware(doc["at"]),
        author=doc["author"],
        actor=doc["actor"],
        sealed_for_org=sealed_from_doc(doc.get("sealed_for_org")),
        sealed_for_reporter=sealed_from_doc(doc.get("sealed_for_reporter")),
    )
