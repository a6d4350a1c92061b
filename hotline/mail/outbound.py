"""Outbound mail: composing, queueing on the bus, delivering, and recording on the case.

Whoever decides to send a mail (the router's acknowledgement, an officer's reply)
publishes ``mail.outbound`` with the mail sealed (purpose ``message``) and returns; the
consumer in the router process opens it, composes an RFC 5322 message and hands it to
the relay (``HOTLINE_SMTP_URL``) or writes ``DATA_DIR/outbox/<id>.eml`` atomically.
A crash between deciding and sending loses nothing: the message stays queued.

Outbox files hold the mail in clear (replies, survey links), so they belong to their case:
the purge after retention (hotline/retention.py) deletes every file a case's audit chain
names, and a mail still queued for a purged case is dropped, not delivered.

Idempotent on the outbound id: a delivered mail records ``mail.sent`` on the case, and
a redelivery that finds it does nothing. A failed delivery records
``mail.delivery_failed`` (attempt number and error type, no address) and is retried by
the bus with a growing pause before each new attempt, then parked at the delivery limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Literal, Protocol, cast
from urllib.parse import unquote, urlsplit

import aiosmtplib
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from prometheus_client import Counter

from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.crypto import Sealed, open_sealed, seal
from hotline.domain.audit import AuditEvent
from hotline.errors import ContractError, MalformedMessage
from hotline.logging import get_logger
from hotline.ports import Bus, Message, Store
from hotline.retention import is_purged
from hotline.services import append_audit
from hotline.topology import MAIL_OUTBOUND_QUEUE

__all__ = [
    "OUTBOUND_QUEUE",
    "OUTBOUND_ROUTING_KEY",
    "OUTBOUND_SCHEMA",
    "Delivery",
    "OutboundConsumer",
    "OutboundMail",
    "OutboxDelivery",
    "RecipientCaps",
    "SmtpDelivery",
    "compose",
    "delivery_for",
    "our_message_id",
    "outbound_id_for",
    "queue_outbound",
]

_log = get_logger("hotline.mail.outbound")

OUTBOUND_SCHEMA = "hotline.mail-outbound/1"
OUTBOUND_ROUTING_KEY = "mail.outbound"
OUTBOUND_QUEUE = MAIL_OUTBOUND_QUEUE
MailKind = Literal["acknowledgement", "reply"]

SENT = Counter("hotline_mail_sent_total", "Outbound mails delivered", ["kind", "via"])
FAILED = Counter("hotline_mail_delivery_failures_total", "Failed outbound delivery attempts",
                 ["kind", "via"])

DROPPED = Counter("hotline_mail_dropped_purged_total",
                  "Outbound mails not delivered because their case was purged")

_OUTBOUND_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def our_message_id(outbound_id: str, mail_domain: str) -> str:
    """The Message-ID of an outbound mail: fixed before sending, so threads can find it."""
    return f"<{outbound_id}@{mail_domain}>"


@dataclass(frozen=True)
class OutboundMail:
    """One mail to send; travels only sealed. ``id`` also makes its Message-ID."""

    id: str
    case_id: str
    kind: MailKind
    from_address: str
    to_address: str
    subject: str
    body: str
    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: bool = False
    """True for automatic mail (acknowledgements): RFC 3834 headers, null envelope sender."""
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> OutboundMail:
        try:
            doc = json.loads(raw)
            return cls(**{**doc, "references": tuple(doc.get("references", ())),
                          "extra_headers": tuple(tuple(h) for h in doc.get("extra_headers", ()))})
        except (ValueError, TypeError) as exc:
            raise MalformedMessage(f"outbound mail does not decode: {type(exc).__name__}",
                                   field="sealed") from None


def compose(mail: OutboundMail, mail_domain: str) -> EmailMessage:
    """The RFC 5322 message: threading headers, and RFC 3834 ones for automatic mail."""
    message = EmailMessage()
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(utcnow())
    message["From"] = Address(addr_spec=mail.from_address)
    message["To"] = Address(addr_spec=mail.to_address)
    message["Subject"] = mail.subject
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
    if mail.references:
        message["References"] = " ".join(mail.references)
    if mail.auto_submitted:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
        message["Precedence"] = "auto_reply"
    message["X-Loop"] = mail_domain
    for name, value in mail.extra_headers:
        message[name] = value
    message.set_content(mail.body, charset="utf-8")
    return message


class Delivery(Protocol):
    via: str

    async def deliver(self, mail: OutboundMail, message: EmailMessage) -> None:
        """Hand the message on; raise on any failure (the bus retries)."""
        ...


@dataclass
class OutboxDelivery:
    """Embedded mode without a relay: ``DIR/<id>.eml``, written atomically."""

    directory: Path
    via: str = "outbox"

    async def deliver(self, mail: OutboundMail, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, mail.id, bytes(message))

    def _write(self, outbound_id: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{outbound_id}.eml"
        if final.exists():
            return  # delivered before a crash that came before the audit event
        temporary = self.directory / f".{outbound_id}.{secrets.token_hex(4)}.tmp"
        with open(temporary, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, final)
        self._sync_directory()

    async def discard(self, events: Iterable[AuditEvent]) -> int:
        """Delete the outbox files (and any temporary file of a write cut short) of the mails
        a case's audit ``events`` name; the number of files deleted. Idempotent."""
        ids = {str(e.data["outbound_id"]) for e in events
               if isinstance(e.data.get("outbound_id"), str)
               and _OUTBOUND_ID.match(e.data["outbound_id"])}
        return await asyncio.to_thread(self._discard, ids) if ids else 0

    def _discard(self, outbound_ids: set[str]) -> int:
        if not self.directory.is_dir():
            return 0
        deleted = 0
        for outbound_id in sorted(outbound_ids):
            for path in (self.directory / f"{outbound_id}.eml",
                         *self.directory.glob(f".{outbound_id}.*.tmp")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    deleted += 1
        if deleted:
            self._sync_directory()  # the unlinks are durable before the purge moves on
        return deleted

    def _sync_directory(self) -> None:
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@dataclass
class SmtpDelivery:
    """Through the relay of ``HOTLINE_SMTP_URL`` (``smtp://`` with STARTTLS when offered,
    ``smtps://`` implicit TLS; user and password in the URL's userinfo)."""

    url: str
    timeout: float = 30.0
    via: str = "smtp"

    async def deliver(self, mail: OutboundMail, message: EmailMessage) -> None:
        parts = urlsplit(self.url)
        implicit_tls = parts.scheme == "smtps"
        await aiosmtplib.send(
            message, hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls, start_tls=None if not implicit_tls else False,
            # RFC 3834: automatic answers go out with a null envelope sender.
            sender="" if mail.auto_submitted else mail.from_address,
            recipients=[mail.to_address], timeout=self.timeout)


def delivery_for(smtp_url: str | None, data_dir: Path) -> Delivery:
    return SmtpDelivery(smtp_url) if smtp_url else OutboxDelivery(data_dir / "outbox")


async def queue_outbound(bus: Bus, mail: OutboundMail, *, kid: str, public: X25519PublicKey,
                         correlation_id: str) -> None:
    """Publish ``mail.outbound`` with the mail sealed; returns once durably queued."""
    sealed = seal(mail.to_json(), public, kid=kid, purpose="message")
    body = json.dumps({"schema": OUTBOUND_SCHEMA, "id": mail.id,
                       "occurred_at": format_time(utcnow()), "correlation_id": correlation_id,
                       "case_id": mail.case_id, "kind": mail.kind,
                       "sealed": sealed.to_wire()}, separators=(",", ":")).encode()
    await bus.publish(Message(routing_key=OUTBOUND_ROUTING_KEY, message_id=mail.id, body=body,
                              correlation_id=correlation_id,
                              headers={"schema": OUTBOUND_SCHEMA}))


def _parse_wire(body: bytes) -> tuple[str, str, str, Sealed]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("outbound message is not JSON", field="message") from None
    if not isinstance(doc, dict) or doc.get("schema") != OUTBOUND_SCHEMA:
        raise MalformedMessage(f"expected schema {OUTBOUND_SCHEMA}", field="schema")
    outbound_id, case_id, kind = doc.get("id"), doc.get("case_id"), doc.get("kind")
    if not isinstance(outbound_id, str) or not _OUTBOUND_ID.match(outbound_id):
        raise MalformedMessage("id has an invalid format", field="id")
    if not isinstance(case_id, str) or not case_id:
        raise MalformedMessage("case_id is required", field="case_id")
    if kind not in ("acknowledgement", "reply"):
        raise MalformedMessage("kind must be acknowledgement or reply", field="kind")
    try:
        sealed = Sealed.from_wire(doc.get("sealed"), field="sealed")
    except ContractError as exc:
        raise MalformedMessage(str(exc), field=exc.field) from None
    return outbound_id, case_id, cast(str, kind), sealed


PrivateKeyFor = Callable[[str], Awaitable[X25519PrivateKey]]


@dataclass
class OutboundConsumer:
    """The ``hotline.mail.outbound`` handler: deliver once, record it on the case."""

    store: Store
    private_key: PrivateKeyFor
    delivery: Delivery
    mail_domain: str
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 30.0

    async def handle(self, message: Message) -> None:
        outbound_id, case_id, kind, sealed = _parse_wire(message.body)
        if outbound_id != message.message_id:
            raise MalformedMessage("message_id does not match the outbound id", field="id")
        case = await self.store.cases.get(case_id)
        if case is None:
            raise MalformedMessage("outbound mail for a case that does not exist",
                                   field="case_id")
        if is_purged(case):
            # Its retention ended: the purge deleted the case's mail, this one must not go.
            DROPPED.inc()
            _log.info("mail.dropped_purged", case_id=case_id, outbound_id=outbound_id)
            return
        events = await self.store.audit.events(case_id)
        if any(e.type == "mail.sent" and e.data.get("outbound_id") == outbound_id
               for e in events):
            return  # delivered before; this is a redelivery
        mail = OutboundMail.from_json(
            open_sealed(sealed, await self.private_key(sealed.kid), purpose="message"))
        if message.delivery_count > 0:
            # Backoff between attempts; the bus counts them and parks at its limit.
            await asyncio.sleep(min(self.retry_base_seconds * 2 ** (message.delivery_count - 1),
                                    self.retry_max_seconds))
        via = self.delivery.via
        try:
            await self.delivery.deliver(mail, compose(mail, self.mail_domain))
        except Exception as exc:
            FAILED.labels(kind, via).inc()
            _log.warning("mail.delivery_failed", case_id=case_id, outbound_id=outbound_id,
                         attempt=message.delivery_count + 1, error_type=type(exc).__name__)
            with contextlib.suppress(Exception):
                await append_audit(self.store, case_id, actor="mailer",
                                   type_="mail.delivery_failed",
                                   data={"outbound_id": outbound_id, "kind": kind,
                                         "attempt": message.delivery_count + 1,
                                         "error_type": type(exc).__name__})
            raise
        SENT.labels(kind, via).inc()
        await append_audit(self.store, case_id, actor="mailer", type_="mail.sent",
                           data={"outbound_id": outbound_id, "kind": kind, "via": via,
                                 "message_id": mail.message_id})
        _log.info("mail.sent", case_id=case_id, outbound_id=outbound_id, kind=kind, via=via)


@dataclass
class RecipientCaps:
    """Per-recipient limits on automatic mail, counted durably in the store's sequences.

    The counter name holds a keyed hash of the address (never the address), per hour and
    per day, so every router instance shares the same counts.
    """

    store: Store
    key: bytes
    per_hour: int = 3
    per_day: int = 10

    def _token(self, address: str) -> str:
        return hmac.new(self.key, address.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]

    async def take(self, address: str) -> bool:
        """Count one automatic mail to ``address``; False when a cap is already reached."""
        now = utcnow()
        token = self._token(address)
        hourly = await self.store.sequences.next(f"mail-cap:h:{now:%Y%m%d%H}:{token}")
        daily = await self.store.sequences.next(f"mail-cap:d:{now:%Y%m%d}:{token}")
        return hourly <= self.per_hour and daily <= self.per_day


def outbound_id_for(case_id: str, purpose: str) -> str:
    """A deterministic outbound id (e.g. the acknowledgement of a case): one per purpose."""
    return "o_" + hashlib.sha256(f"{case_id}\n{purpose}".encode()).hexdigest()[:40]
