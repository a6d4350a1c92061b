"""From raw mail to a durably queued, sealed submission (shared by SMTP/LMTP and IMAP).

The raw bytes are parsed at the edge (never raising), and everything read from them —
sender, subject, text, HTML, attachment list, classification, and the raw mail itself as
evidence — is sealed for the organisation (purpose ``complaint``) before it leaves this
process. On the bus travels only what :class:`~hotline.contract.Submission` already
carries: kind ``complaint``, channel ``email``, the mailbox's unit and a language tag.

The submission id is derived from the mailbox address and the Message-ID (or the hash
of the raw mail when it has none), so a mail read twice — after a crash between queueing
and flagging, or delivered by SMTP and fetched by IMAP — is the same submission, and the
router's idempotency makes it one case.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

from hotline.clock import utcnow
from hotline.contract import Submission, format_time
from hotline.crypto import seal
from hotline.logging import get_logger
from hotline.mail._classify import should_auto_reply
from hotline.mail._model import MailLimits, ParsedMail
from hotline.mail._parse import parse_mail
from hotline.mail.config import Mailbox
from hotline.ports import Bus, Message, Store
from hotline.services import PublicKeyCache

__all__ = ["MAIL_PAYLOAD_VERSION", "MailIngest", "mail_payload", "mail_submission_id"]

_log = get_logger("hotline.mail.ingest")

MAIL_PAYLOAD_VERSION = 1
MAILS_QUEUED = Counter("hotline_mail_queued_total", "Mails durably queued as submissions",
                       ["via", "automation"])
QUEUE_SECONDS = Histogram("hotline_mail_queue_seconds",
                          "Parse, seal and durable publish of one mail", ["via"])


def mail_submission_id(mailbox_address: str, message_id: str) -> str:
    """Deterministic: the same mail to the same mailbox is always the same submission."""
    key = f"{mailbox_address.strip().lower()}\n{message_id.strip()}".encode()
    return "m_" + hashlib.sha256(key).hexdigest()[:40]


def _empty_text(parsed: ParsedMail) -> str:
    if parsed.subject.strip():
        return parsed.subject.strip()
    names = ", ".join(a.filename or a.content_type for a in parsed.attachments)
    return f"(mail without text; attachments: {names})" if names else "(mail without text)"


def mail_payload(parsed: ParsedMail, raw: bytes, mailbox: Mailbox, *, our_domain: str,
                 envelope_from: str | None = None, via: str = "smtp") -> dict[str, Any]:
    """The sealed content of an e-mail submission (``hotline.mail-payload/1``).

    ``description`` is the readable text, so a mail case reads like a web complaint;
    ``raw`` (base64) is the evidence. ``auto_reply`` records the edge's decision whether
    this sender may get an automatic answer (a null envelope sender never does).
    """
    automation = parsed.automation
    auto_reply = should_auto_reply(parsed, our_domain) and envelope_from != ""
    return {
        "version": MAIL_PAYLOAD_VERSION,
        "description": parsed.text.strip() or _empty_text(parsed),
        "subject": parsed.subject,
        "name": parsed.from_name,
        "email": parsed.from_address,
        "reply_to": list(parsed.reply_to),
        "envelope_from": envelope_from,
        "mailbox": mailbox.address,
        "via": via,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "date": None if parsed.date is None else format_time(parsed.date),
        "language": parsed.language,
        "automation": {"kind": automation.kind, "reason": automation.reason,
                       "original_message_id": automation.original_message_id,
                       "suppress_auto_reply": automation.suppress_auto_reply},
        "auto_reply": auto_reply,
        "flags": sorted(parsed.flags),
        "html": parsed.html,
        "attachments": [{"filename": a.filename, "content_type": a.content_type,
                         "size": a.size, "truncated": a.truncated}
                        for a in parsed.attachments],
        "raw": base64.b64encode(raw).decode("ascii"),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
    }


@dataclass(frozen=True)
class QueuedMail:
    """What the ingester may tell its caller (and log): no content, no address."""

    submission_id: str
    automation: str
    size: int


class MailIngest:
    """Parse, seal and publish one mail; returns only once the bus durably took it.

    Raises :class:`~hotline.errors.BusUnavailable` when the bus did not, and
    :class:`~hotline.errors.UnknownKey` when no organisation key exists yet.
    """

    def __init__(self, store: Store, bus: Bus, *, mail_domain: str,
                 limits: MailLimits | None = None) -> None:
        self._bus = bus
        self._keys = PublicKeyCache(store)
        self._domain = mail_domain
        self._limits = limits or MailLimits()

    async def accept(self, raw: bytes, mailbox: Mailbox, *, via: str,
                     envelope_from: str | None = None) -> QueuedMail:
        started = time.perf_counter()
        parsed = parse_mail(raw, limits=self._limits, our_domain=self._domain)
        payload = mail_payload(parsed, raw, mailbox, our_domain=self._domain,
                               envelope_from=envelope_from, via=via)
        kid, public = await self._keys.active()
        plaintext = json.dumps(payload, ensure_ascii=False).encode()
        sealed = seal(plaintext, public, kid=kid, purpose="complaint")
        del plaintext, payload
        submission_id = mail_submission_id(mailbox.address, parsed.message_id)
        submission = Submission(
            id=submission_id, occurred_at=utcnow(), correlation_id=submission_id,
            kind="complaint", channel="email", sealed=sealed, sealed_by="intake",
            category="other", unit=mailbox.unit, locale=parsed.language or mailbox.language)
        await self._bus.publish(Message(
            routing_key=submission.routing_key, message_id=submission.id,
            body=submission.to_bytes(), correlation_id=submission.correlation_id,
            headers={"schema": "hotline.submission/1"}))
        kind = parsed.automation.kind
        MAILS_QUEUED.labels(via, kind).inc()
        QUEUE_SECONDS.labels(via).observe(time.perf_counter() - started)
        _log.info("mail.queued", submission_id=submission_id, unit=mailbox.unit, via=via,
                  size=len(raw), automation=kind, flags=sorted(parsed.flags))
        return QueuedMail(submission_id, kind, len(raw))
