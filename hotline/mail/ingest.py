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
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring as _escape
from typing import Any

from prometheus_client import Counter, Histogram

from hotline._buffers import BytesBuilder
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

__all__ = ["MAIL_PAYLOAD_VERSION", "MailIngest", "mail_payload", "mail_plaintext",
           "mail_submission_id"]

_log = get_logger("hotline.mail.ingest")

MAIL_PAYLOAD_VERSION = 1
MAILS_QUEUED = Counter("hotline_mail_queued_total", "Mails durably queued as submissions",
                       ["via", "automation"])
QUEUE_SECONDS = Histogram("hotline_mail_queue_seconds",
                          "Parse, seal and durable publish of one mail", ["via"])
# Bytes of raw mail base64-encoded at a time: a multiple of 3, so the slices' base64 has
# no padding inside and joins into the base64 of the whole. Characters of text escaped
# at a time.
_RAW_SLICE = 3 * 64 * 1024
_TEXT_SLICE = 64 * 1024
_NON_SPACE = re.compile(r"\S")  # \s is what str.strip() strips (Unicode white space)


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
    :func:`mail_plaintext` is this document as it is sealed.
    """
    return {**_metadata(parsed, raw, mailbox, our_domain=our_domain,
                        envelope_from=envelope_from, via=via),
            "description": _description(parsed), "html": parsed.html,
            "raw": base64.b64encode(raw).decode("ascii")}


def mail_plaintext(parsed: ParsedMail, raw: bytes, mailbox: Mailbox, *, our_domain: str,
                   envelope_from: str | None = None, via: str = "smtp") -> bytes:
    """:func:`mail_payload` as the UTF-8 JSON that is sealed.

    Written piece by piece into the result, so that a large mail costs its JSON once: the
    texts and the raw mail's base64 never exist as whole strings of their own, nor as the
    encoder's escaped copy and joined text (issue 7).
    """
    head = json.dumps(_metadata(parsed, raw, mailbox, our_domain=our_domain,
                                envelope_from=envelope_from, via=via),
                      ensure_ascii=False).encode()
    text = parsed.text
    start, end = _strip_bounds(text)
    if start == end:  # as in mail_payload: the stripped text, or a stand-in
        text = _empty_text(parsed)
        start, end = 0, len(text)
    texts = {"description": (text, start, end),
             "html": None if parsed.html is None else (parsed.html, 0, len(parsed.html))}
    raw_opening, closing = b', "raw": "', b'"}'
    size = (len(head) - 1 + sum(map(len, _text_fields(texts))) + len(raw_opening)
            + 4 * -(-len(raw) // 3) + len(closing))
    out = BytesBuilder(size)
    out.write(head[:-1])  # all but the closing brace
    for piece in _text_fields(texts):
        out.write(piece)
    out.write(raw_opening)
    view = memoryview(raw)
    for offset in range(0, len(raw), _RAW_SLICE):
        out.write(base64.b64encode(view[offset:offset + _RAW_SLICE]))
    out.write(closing)
    return out.value()


def _strip_bounds(text: str) -> tuple[int, int]:
    """``text[start:end] == text.strip()``, found without copying the text."""
    found = _NON_SPACE.search(text)
    if found is None:
        return 0, 0
    start, end = found.start(), len(text)
    while True:  # ends: text[start] is no space
        tail = text[max(start, end - _TEXT_SLICE):end]
        kept = len(tail.rstrip())
        end -= len(tail) - kept
        if kept:
            return start, end


def _text_fields(texts: dict[str, tuple[str, int, int] | None]) -> Iterator[bytes]:
    """``, "key": "text[start:end]"`` for each field, UTF-8, the text escaped slice by
    slice (JSON escapes character by character, so the slices agree with the whole)."""
    for key, span in texts.items():
        if span is None:
            yield f', "{key}": null'.encode()
            continue
        text, start, end = span
        yield f', "{key}": "'.encode()
        for offset in range(start, end, _TEXT_SLICE):
            yield _escape(text[offset:min(offset + _TEXT_SLICE, end)])[1:-1].encode()
        yield b'"'


def _description(parsed: ParsedMail) -> str:
    return parsed.text.strip() or _empty_text(parsed)


def _metadata(parsed: ParsedMail, raw: bytes, mailbox: Mailbox, *, our_domain: str,
              envelope_from: str | None, via: str) -> dict[str, Any]:
    """Every field of the payload but those that grow with the mail."""
    automation = parsed.automation
    auto_reply = should_auto_reply(parsed, our_domain) and envelope_from != ""
    return {
        "version": MAIL_PAYLOAD_VERSION,
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
        "attachments": [{"filename": a.filename, "content_type": a.content_type,
                         "size": a.size, "truncated": a.truncated}
                        for a in parsed.attachments],
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
        plaintext = mail_plaintext(parsed, raw, mailbox, our_domain=self._domain,
                                   envelope_from=envelope_from, via=via)
        # Only these go on; dropping the parsed mail frees its attachments' payloads (a
        # decoded copy of each) before the sealed copies are made.
        message_id, kind, flags = parsed.message_id, parsed.automation.kind, sorted(parsed.flags)
        locale = parsed.language or mailbox.language
        del parsed
        kid, public = await self._keys.active()
        sealed = seal(plaintext, public, kid=kid, purpose="complaint")
        del plaintext
        submission_id = mail_submission_id(mailbox.address, message_id)
        submission = Submission(
            id=submission_id, occurred_at=utcnow(), correlation_id=submission_id,
            kind="complaint", channel="email", sealed=sealed, sealed_by="intake",
            category="other", unit=mailbox.unit, locale=locale)
        message = Message(
            routing_key=submission.routing_key, message_id=submission.id,
            body=submission.to_bytes(), correlation_id=submission.correlation_id,
            headers={"schema": "hotline.submission/1"})
        del submission, sealed  # the body carries them; the bus may copy it once more
        await self._bus.publish(message)
        MAILS_QUEUED.labels(via, kind).inc()
        QUEUE_SECONDS.labels(via).observe(time.perf_counter() - started)
        _log.info("mail.queued", submission_id=submission_id, unit=mailbox.unit, via=via,
                  size=len(raw), automation=kind, flags=flags)
        return QueuedMail(submission_id, kind, len(raw))
