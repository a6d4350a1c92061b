"""The wire contract (CONTRACT §5): versioned submission envelopes and events.

Frozen dataclasses with strict parsing: an unknown or missing field, a wrong type or an
operator-looking key is a :class:`~hotline.errors.ContractError` naming the field. Golden
samples in ``tests/golden`` pin the format from the producing and the consuming side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from hotline._buffers import BytesBuilder
from hotline._large_json import LargeJson, LargeString
from hotline.crypto import Sealed, b64d, b64e
from hotline.errors import ContractError, MalformedMessage

__all__ = [
    "CHANNELS",
    "COMPLAINT_CATEGORIES",
    "EVENT_SCHEMA",
    "REPORT_CATEGORIES",
    "SUBMISSION_SCHEMA",
    "CaseEvent",
    "Submission",
    "format_time",
    "parse_time",
]

SUBMISSION_SCHEMA = "hotline.submission/1"
EVENT_SCHEMA = "hotline.event/1"

REPORT_CATEGORIES = ("corruption", "fraud", "safety", "wage_arrears", "labour_rights",
                     "environment", "data_security", "conduct", "other")
COMPLAINT_CATEGORIES = ("service_quality", "construction_quality", "billing", "staff_conduct",
                        "delay", "other")
CHANNELS = ("web", "email", "post", "phone", "visit")
SubmissionKind = Literal["report", "complaint", "followup", "survey"]
SUBMISSION_KINDS = ("report", "complaint", "followup", "survey")
EVENT_TYPES = ("case.opened", "case.updated", "case.escalated")

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_UNIT = re.compile(r"^[A-Z][A-Z0-9-]{0,31}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and microseconds dropped to milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: object, *, field: str) -> datetime:
    if not isinstance(text, str):
        raise ContractError(f"{field} must be an RFC 3339 string", field=field)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ContractError(f"{field} is not an RFC 3339 time", field=field) from None
    if moment.tzinfo is None:
        raise ContractError(f"{field} must carry a time zone", field=field)
    return moment.astimezone(UTC)


class _Fields:
    """Strict reader over one JSON object: every field is consumed exactly once."""

    def __init__(self, doc: object, *, where: str, error: type[ContractError]) -> None:
        if not isinstance(doc, dict):
            raise error(f"{where} must be a JSON object", field=where)
        for key in doc:
            if not isinstance(key, str) or key.startswith("$") or "." in key:
                raise error(f"{where} has a forbidden key {str(key)[:40]!r}", field=where)
        self._doc: dict[str, Any] = doc
        self._seen: set[str] = set()
        self._where = where
        self._error = error

    def _path(self, name: str) -> str:
        return f"{self._where}.{name}" if self._where != "message" else name

    def raw(self, name: str, *, required: bool = True) -> Any:
        self._seen.add(name)
        if name not in self._doc:
            if required:
                raise self._error(f"{self._path(name)} is required", field=self._path(name))
            return None
        return self._doc[name]

    def string(self, name: str, *, required: bool = True, pattern: re.Pattern[str] | None = None,
               choices: tuple[str, ...] | None = None, max_len: int = 256) -> str | None:
        value = self.raw(name, required=required)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise self._error(f"{self._path(name)} must be a non-empty string",
                              field=self._path(name))
        if pattern is not None and not pattern.match(value):
            raise self._error(f"{self._path(name)} has an invalid format", field=self._path(name))
        if choices is not None and value not in choices:
            raise self._error(f"{self._path(name)} must be one of {', '.join(choices)}",
                              field=self._path(name))
        return value

    def finish(self) -> None:
        unknown = sorted(set(self._doc) - self._seen)
        if unknown:
            raise self._error(f"{self._where} has unknown field(s): {', '.join(unknown)}",
                              field=self._where)


# One encoder for every submission (json.dumps with options builds a new one per call).
_WIRE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# A ciphertext longer than this goes into the body slice by slice, in the place of this
# mark (which no other value spells, or the body is encoded the ordinary way).
_STREAMED_CIPHERTEXT = 64 * 1024
_CIPHERTEXT_MARK = "\x00ciphertext\x00"
_CIPHERTEXT_MARK_JSON = _WIRE_ENCODER.encode(_CIPHERTEXT_MARK)


def _decode_message(body: bytes | str) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("message body is not JSON", field="message") from None


def _decode_large_message(body: bytes) -> object:
    """``json.loads(body)``, but a long base64url ciphertext of ``sealed`` or
    ``reporter_copy`` stays in ``body`` as a view of its ASCII bytes."""
    try:
        parsed = LargeJson(body, min_size=_STREAMED_CIPHERTEXT)
        doc = parsed.document
        for name in ("sealed", "reporter_copy"):
            sealed = doc.get(name) if isinstance(doc, dict) else None
            if not isinstance(sealed, dict):
                continue
            text = sealed.get("ciphertext")
            if isinstance(text, LargeString):
                view = text.b64url_view()
                if view is not None:  # otherwise decoded as json.loads would, checked as text
                    sealed["ciphertext"] = view
        return parsed.value()
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("message body is not JSON", field="message") from None


@dataclass(frozen=True)
class Submission:
    """``hotline.submission/1``: one report, complaint, follow-up or survey answer, sealed.

    A ``survey`` submission (routing key ``submission.survey``) carries a complainant's
    answer to a satisfaction survey, sealed with purpose ``survey``; it has no category,
    receipt or reporter copy (docs/contract-extensions.md).

    Nothing here is plaintext of a report: content travels in ``sealed``; the receipt
    only as a keyed hash; ``reply_key`` is the public key derived from the receipt.
    """

    id: str
    occurred_at: datetime
    correlation_id: str
    kind: SubmissionKind
    channel: str
    sealed: Sealed
    sealed_by: Literal["client", "intake"]
    category: str | None = None
    unit: str | None = None
    locale: str | None = None
    receipt_hash: str | None = None
    reply_key: bytes | None = None
    reporter_copy: Sealed | None = None

    @property
    def routing_key(self) -> str:
        return f"submission.{self.kind}"

    def to_wire(self) -> dict[str, Any]:
        return self._wire(self.sealed.to_wire())

    def _wire(self, sealed: dict[str, str]) -> dict[str, Any]:
        return {
            "schema": SUBMISSION_SCHEMA,
            "id": self.id,
            "occurred_at": format_time(self.occurred_at),
            "correlation_id": self.correlation_id,
            "kind": self.kind,
            "channel": self.channel,
            "category": self.category,
            "unit": self.unit,
            "locale": self.locale,
            "sealed": sealed,
            "sealed_by": self.sealed_by,
            "receipt_hash": self.receipt_hash,
            "reply_key": None if self.reply_key is None else b64e(self.reply_key),
            "reporter_copy": None if self.reporter_copy is None else self.reporter_copy.to_wire(),
        }

    def to_bytes(self) -> bytes:
        """The UTF-8 JSON of :meth:`to_wire`.

        A large ciphertext is written into the result slice by slice: its base64url text
        is never held whole, nor copied by the encoder and again by the UTF-8 encoding
        (issue 7: copies of a large report).
        """
        sealed = self.sealed
        if sealed.ciphertext_size <= _STREAMED_CIPHERTEXT:
            return _WIRE_ENCODER.encode(self.to_wire()).encode()
        text = _WIRE_ENCODER.encode(self._wire(
            {"kid": sealed.kid, "enc": b64e(sealed.enc), "ciphertext": _CIPHERTEXT_MARK}))
        head, mark, tail = text.partition(_CIPHERTEXT_MARK_JSON)
        if not mark or _CIPHERTEXT_MARK_JSON in tail:
            return _WIRE_ENCODER.encode(self.to_wire()).encode()
        before, after = head.encode(), tail.encode()
        out = BytesBuilder(len(before) + 2 + sealed.wire_ciphertext_size + len(after))
        out.write(before)
        out.write(b'"')
        for piece in sealed.wire_ciphertext():
            out.write(piece)
        out.write(b'"')
        out.write(after)
        return out.value()

    @classmethod
    def from_bytes(cls, body: bytes | str) -> Submission:
        """Parse a message body strictly (:meth:`from_wire`).

        A large ciphertext is not copied out of ``body``: the submission keeps a view of
        its text in ``body`` (issue 7: the decoded document and the ciphertext's text were
        two more copies of a large report, held while it was opened).
        """
        if isinstance(body, bytes) and len(body) > _STREAMED_CIPHERTEXT:
            return cls.from_wire(_decode_large_message(body))
        return cls.from_wire(_decode_message(body))

    @classmethod
    def from_wire(cls, doc: object) -> Submission:
        """Parse strictly; raise :class:`MalformedMessage` naming the first bad field."""
        f = _Fields(doc, where="message", error=MalformedMessage)
        f.string("schema", choices=(SUBMISSION_SCHEMA,))
        kind = cast(SubmissionKind, f.string("kind", choices=SUBMISSION_KINDS))
        categories = {"report": REPORT_CATEGORIES, "complaint": COMPLAINT_CATEGORIES}.get(kind)
        category = f.string("category", required=False, choices=categories)
        if (category is None) != (kind in ("followup", "survey")):
            raise MalformedMessage("category is required for reports and complaints only",
                                   field="category")
        try:
            sealed = Sealed.from_wire(f.raw("sealed"), field="sealed")
            reply_raw = f.string("reply_key", required=False, max_len=64)
            reply_key = None if reply_raw is None else b64d(reply_raw, field="reply_key")
            copy_raw = f.raw("reporter_copy", required=False)
            reporter_copy = None if copy_raw is None else Sealed.from_wire(
                copy_raw, field="reporter_copy")
        except MalformedMessage:
            raise
        except ContractError as exc:
            raise MalformedMessage(str(exc), field=exc.field) from None
        if reply_key is not None and len(reply_key) != 32:
            raise MalformedMessage("reply_key must be 32 bytes", field="reply_key")
        submission = cls(
            id=cast(str, f.string("id", pattern=_ID)),
            occurred_at=_message_time(f.raw("occurred_at")),
            correlation_id=cast(str, f.string("correlation_id", pattern=_ID)),
            kind=kind,
            channel=cast(str, f.string("channel", choices=CHANNELS)),
            sealed=sealed,
            sealed_by=cast(Literal["client", "intake"],
                           f.string("sealed_by", choices=("client", "intake"))),
            category=category,
            unit=f.string("unit", required=False, pattern=_UNIT, max_len=32),
            locale=f.string("locale", required=False, pattern=_LOCALE, max_len=35),
            receipt_hash=f.string("receipt_hash", required=False, pattern=_HEX64),
            reply_key=reply_key,
            reporter_copy=reporter_copy,
        )
        f.finish()
        if kind == "followup" and submission.receipt_hash is None:
            raise MalformedMessage("a follow-up needs receipt_hash", field="receipt_hash")
        if kind == "survey" and (submission.receipt_hash is not None or submission.reply_key
                                 is not None or submission.reporter_copy is not None):
            raise MalformedMessage("a survey answer carries no receipt", field="receipt_hash")
        return submission


def _message_time(value: object) -> datetime:
    try:
        return parse_time(value, field="occurred_at")
    except ContractError as exc:
        raise MalformedMessage(str(exc), field="occurred_at") from None


@dataclass(frozen=True)
class CaseEvent:
    """``hotline.event/1``: what happened to a case, for other consumers. No content."""

    id: str
    occurred_at: datetime
    correlation_id: str
    type: str
    case_id: str
    reference: str
    kind: str
    unit: str
    severity: str
    status: str

    @property
    def routing_key(self) -> str:
        return self.type

    def to_wire(self) -> dict[str, Any]:
        return {
            "schema": EVENT_SCHEMA,
            "id": self.id,
            "occurred_at": format_time(self.occurred_at),
            "correlation_id": self.correlation_id,
            "type": self.type,
            "case_id": self.case_id,
            "reference": self.reference,
            "kind": self.kind,
            "unit": self.unit,
            "severity": self.severity,
            "status": self.status,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, body: bytes | str) -> CaseEvent:
        return cls.from_wire(_decode_message(body))

    @classmethod
    def from_wire(cls, doc: object) -> CaseEvent:
        f = _Fields(doc, where="message", error=MalformedMessage)
        f.string("schema", choices=(EVENT_SCHEMA,))
        event = cls(
            id=cast(str, f.string("id", pattern=_ID)),
            occurred_at=_message_time(f.raw("occurred_at")),
            correlation_id=cast(str, f.string("correlation_id", pattern=_ID)),
            type=cast(str, f.string("type", choices=EVENT_TYPES)),
            case_id=cast(str, f.string("case_id", pattern=_ID)),
            reference=cast(str, f.string("reference", max_len=32)),
            kind=cast(str, f.string("kind", choices=("report", "complaint"))),
            unit=cast(str, f.string("unit", pattern=_UNIT, max_len=32)),
            severity=cast(str, f.string("severity", choices=("major", "high", "general", "low"))),
            status=cast(str, f.string("status", max_len=32)),
        )
        f.finish()
        return event


def strict_object(doc: object, *, where: str) -> Mapping[str, Any]:
    """Reject non-objects and operator-looking keys anywhere inside ``doc``."""
    _reject_operators(doc, where)
    if not isinstance(doc, dict):
        raise ContractError(f"{where} must be a JSON object", field=where)
    return doc


def _reject_operators(value: object, path: str, depth: int = 0) -> None:
    if depth > 16:
        raise ContractError(f"{path} is nested too deeply", field=path)
    # Paths are built only for containers (and for a scalar one level too deep): the
    # walk runs on every request body, and most values are scalars.
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str) or key.startswith("$") or "\x00" in key:
                raise ContractError(f"{path} has a forbidden key", field=path)
            if isinstance(inner, dict | list) or depth >= 16:
                _reject_operators(inner, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            if isinstance(inner, dict | list) or depth >= 16:
                _reject_operators(inner, f"{path}[{index}]", depth + 1)
