"""The SMTP/LMTP receiver an MTA delivers complaint mail to (CONTRACT §4).

One listener speaks both: a client greeting with ``LHLO`` gets LMTP (one reply per
recipient after ``DATA``), ``EHLO``/``HELO`` gets SMTP. Only configured mailbox
addresses are accepted (``550`` at ``RCPT``); a mail over the size limit gets ``552`` at
``DATA``; ``250`` is answered only after the submission was durably queued, ``451``
when the queue could not take it (the MTA keeps the mail and retries; the deterministic
submission id makes a retried mail the same case).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from hotline.errors import BusUnavailable, UnknownKey
from hotline.logging import get_logger
from hotline.mail.config import Mailbox, MailboxBook
from hotline.mail.ingest import MailIngest
from hotline.ports import Bus, Store
from hotline.settings import Settings

__all__ = ["DEFAULT_MAX_MAIL_BYTES", "MailReceiver", "mail_ingestion", "start_mail_server"]

_log = get_logger("hotline.intake.mail")

DEFAULT_MAX_MAIL_BYTES = 25 * 1024 * 1024
_OK = "250 2.0.0 Queued"
_UNAVAILABLE = "451 4.3.0 Queue unavailable, try again later"
_NO_KEY = "451 4.3.5 Not configured yet, try again later"
_UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here"


class _Protocol(SMTP):
    """aiosmtpd's SMTP that also answers ``LHLO`` and then behaves as LMTP."""

    # Real-world mail breaks the 1000-octet line limit often enough; refusing it would
    # lose complaints. The size limit at DATA still bounds the memory used.
    line_length_limit = 1024 * 1024
    lmtp = False

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        self.lmtp = True
        await super().smtp_EHLO(arg)


@dataclass
class MailReceiver:
    """The aiosmtpd handler: recipient check, then durable queueing per mailbox."""

    ingest: MailIngest
    book: MailboxBook

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.book.get(address) is None:
            return _UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        lmtp = isinstance(server, _Protocol) and server.lmtp
        via = "lmtp" if lmtp else "smtp"
        # The null reverse-path (bounces, auto-replies) arrives as "<>"; "" means null here.
        sender = (envelope.mail_from or "").strip()
        envelope_from = "" if sender in ("", "<>") else sender
        replies: list[str] = []
        done: dict[str, str] = {}
        for address in envelope.rcpt_tos:
            mailbox = self.book.get(address)
            assert mailbox is not None  # handle_RCPT admitted only configured ones
            if mailbox.key not in done:  # the same mailbox twice is one submission
                done[mailbox.key] = await self._queue(raw, mailbox, via, envelope_from)
            replies.append(done[mailbox.key])
        if lmtp:
            return "\r\n".join(replies)
        failed = [reply for reply in replies if not reply.startswith("250")]
        return failed[0] if failed else _OK

    async def _queue(self, raw: bytes, mailbox: Mailbox, via: str,
                     envelope_from: str | None) -> str:
        try:
            await self.ingest.accept(raw, mailbox, via=via, envelope_from=envelope_from)
        except BusUnavailable:
            _log.error("mail.not_queued", unit=mailbox.unit, via=via, reason="bus_unavailable")
            return _UNAVAILABLE
        except UnknownKey:
            _log.error("mail.not_queued", unit=mailbox.unit, via=via, reason="no_key")
            return _NO_KEY
        return _OK


async def start_mail_server(receiver: MailReceiver, host: str, port: int, *,
                            max_bytes: int = DEFAULT_MAX_MAIL_BYTES,
                            hostname: str | None = None) -> asyncio.Server:
    """Listen for SMTP and LMTP on ``host:port`` (0 picks a free port) in this loop."""
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return _Protocol(receiver, data_size_limit=max_bytes, enable_SMTPUTF8=True,
                         decode_data=False, hostname=hostname, ident="Hotline", loop=loop)

    server = await loop.create_server(factory, host, port)
    bound = server.sockets[0].getsockname()[1] if server.sockets else port
    _log.info("mail.listening", host=host, port=bound)
    return server


MailContext = Callable[[web.Application], AsyncIterator[None]]


def mail_ingestion(settings: Settings, book: MailboxBook, store: Store, bus: Bus, *,
                   host: str, smtp_port: int | None, announce: Callable[[str], None],
                   port_optional: bool = False) -> MailContext:
    """A ``cleanup_ctx`` running the SMTP/LMTP listener (when ``smtp_port``) and one IMAP
    worker per IMAP mailbox, stopped with the app.

    Missing IMAP passwords fail the start (SettingsError). With ``port_optional`` (the
    default port of ``hotline dev``) a port in use is announced and mail reception by
    SMTP is skipped instead of failing the whole process.
    """
    # Imported here: intake.mail_imap is only needed when mail ingestion runs.
    from intake.mail_imap import run_imap_workers

    passwords = {m.key: m.imap.password(settings.extra)
                 for m in book.imap_mailboxes() if m.imap is not None}

    async def context(_app: web.Application) -> AsyncIterator[None]:
        ingest = MailIngest(store, bus, mail_domain=settings.mail_domain)
        server: asyncio.Server | None = None
        if smtp_port:
            try:
                server = await start_mail_server(MailReceiver(ingest, book), host, smtp_port,
                                                 hostname=settings.mail_domain)
            except OSError as exc:
                if not port_optional:
                    raise
                announce(f"  smtp    : port {smtp_port} unavailable ({exc.strerror}); "
                         "no mail reception by SMTP (choose one with --smtp-port)")
            else:
                bound = server.sockets[0].getsockname()[1] if server.sockets else smtp_port
                announce(f"  smtp    : smtp://{host}:{bound}/ (SMTP and LMTP, "
                         f"{len(book)} mailboxes @{settings.mail_domain})")
        workers = asyncio.create_task(run_imap_workers(book, ingest, passwords))
        if passwords:
            announce(f"  imap    : {len(passwords)} mailbox(es) read by IMAP")
        try:
            yield
        finally:
            workers.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await workers
            if server is not None:
                server.close()
                await server.wait_closed()

    return context
