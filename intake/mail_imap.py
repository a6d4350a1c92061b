"""IMAP ingestion: one worker per configured mailbox (CONTRACT §4).

Each worker signs in, selects the mailbox's folder and then, forever: queues every
unprocessed mail, marks it processed, and waits — with IDLE where the server offers it
(Dovecot announces new mail within about half a second), polling otherwise. A mail is
fetched with ``BODY.PEEK[]`` (reading does not mark it) and is moved to the processed
folder or flagged only after :meth:`MailIngest.accept` returned, i.e. after the bus
durably took its submission. A crash in between leaves it unprocessed: the next session
reads it again and its deterministic submission id keeps it one case.

Connection failures and a bus that cannot take mail end the session; the worker
reconnects with exponential backoff (with jitter), so no mail is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aioimaplib import IMAP4, IMAP4_SSL, Response  # type: ignore[import-untyped]  # no py.typed
from prometheus_client import Counter

from hotline.logging import get_logger
from hotline.mail.config import ImapSettings, Mailbox, MailboxBook
from hotline.mail.ingest import MailIngest

__all__ = ["ImapError", "ImapIngester", "run_imap_workers"]

_log = get_logger("hotline.intake.imap")

SESSIONS = Counter("hotline_imap_sessions_total", "IMAP sessions started", ["unit", "outcome"])

_FETCHED = re.compile(rb"^\d+ FETCH \(.*UID (\d+)")
Hook = Callable[[str], Awaitable[None]]


class ImapError(Exception):
    """The IMAP server refused a command; the session ends and is retried."""


def _ok(response: Response, what: str) -> Response:
    if response.result != "OK":
        raise ImapError(f"IMAP {what} failed: {response.result}")
    return response


def _mailbox_name(name: str) -> str:
    """Quote a folder name for a command argument."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _nothing(_uid: str) -> None:
    return None


@dataclass
class ImapIngester:
    """The worker of one mailbox; :meth:`run` until cancelled."""

    mailbox: Mailbox
    password: str
    ingest: MailIngest
    timeout: float = 30.0
    idle_seconds: float = 25 * 60.0
    """Re-issue IDLE at least this often (RFC 2177: servers may drop it after 30 min)."""
    backoff_first: float = 1.0
    backoff_max: float = 60.0
    before_mark: Hook = _nothing
    """Called between queueing and marking a mail (tests stop the worker there)."""

    @property
    def imap(self) -> ImapSettings:
        assert self.mailbox.imap is not None
        return self.mailbox.imap

    async def run(self) -> None:
        delay = self.backoff_first
        while True:
            try:
                await self.session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                SESSIONS.labels(self.mailbox.unit, "failed").inc()
                _log.warning("imap.session_failed", unit=self.mailbox.unit,
                             error_type=type(exc).__name__, retry_in=round(delay, 2))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 — jitter, not crypto
                delay = min(delay * 2, self.backoff_max)
            else:
                delay = self.backoff_first

    async def _connect(self) -> IMAP4:
        settings = self.imap
        client: IMAP4 = (IMAP4_SSL(settings.host, settings.port, timeout=self.timeout)
                         if settings.tls == "tls" else
                         IMAP4(settings.host, settings.port, timeout=self.timeout))
        await client.wait_hello_from_server()
        _ok(await client.login(settings.user, self.password), "LOGIN")
        if settings.processed_folder:
            # Exists already (NO) or is created now; both are fine.
            await client.create(_mailbox_name(settings.processed_folder))
        _ok(await client.select(_mailbox_name(settings.folder)), "SELECT")
        return client

    async def session(self) -> None:
        """One connection: drain, wait for news, drain … until something fails."""
        client = await self._connect()
        SESSIONS.labels(self.mailbox.unit, "connected").inc()
        use_idle = self.imap.idle and client.has_capability("IDLE")
        _log.info("imap.connected", unit=self.mailbox.unit, idle=use_idle)
        try:
            while True:
                await self.drain(client)
                if use_idle:
                    await self._idle(client)
                else:
                    await asyncio.sleep(self.imap.poll_seconds)
                    # NOOP makes the server look for new mail in the selected folder.
                    _ok(await client.noop(), "NOOP")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await client.logout()

    async def _idle(self, client: IMAP4) -> None:
        idle = await client.idle_start(timeout=self.idle_seconds + 30)
        try:
            with contextlib.suppress(TimeoutError):
                await client.wait_server_push(timeout=self.idle_seconds)
        finally:
            if client.has_pending_idle():
                client.idle_done()
        _ok(await asyncio.wait_for(idle, self.timeout), "IDLE")

    async def _unprocessed(self, client: IMAP4) -> list[str]:
        settings = self.imap
        if settings.processed_folder:
            criteria = "ALL"  # what is still in the folder has not been moved yet
        elif settings.processed_flag.lower() == "\\seen":
            criteria = "UNSEEN"
        elif settings.processed_flag.startswith("\\"):
            criteria = f"UN{settings.processed_flag[1:].upper()}"
        else:
            criteria = f"UNKEYWORD {settings.processed_flag}"
        response = _ok(await client.uid_search(criteria), "SEARCH")
        uids: list[str] = []
        for line in response.lines[:-1]:
            uids += [token.decode() for token in bytes(line).split() if token.isdigit()]
        return uids

    async def _fetch(self, client: IMAP4, uid: str) -> bytes | None:
        response = _ok(await client.uid("fetch", uid, "(BODY.PEEK[])"), "FETCH")
        for index, line in enumerate(response.lines):
            if isinstance(line, bytearray) and index > 0:
                return bytes(line)
        return None  # expunged meanwhile by someone else

    async def _mark(self, client: IMAP4, uid: str) -> None:
        settings = self.imap
        if settings.processed_folder is None:
            _ok(await client.uid("store", uid, "+FLAGS.SILENT", f"({settings.processed_flag})"),
                "STORE")
            return
        target = _mailbox_name(settings.processed_folder)
        if client.has_capability("MOVE"):
            _ok(await client.uid("move", uid, target), "MOVE")
            return
        _ok(await client.uid("copy", uid, target), "COPY")
        _ok(await client.uid("store", uid, "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        if client.has_capability("UIDPLUS"):
            _ok(await client.uid("expunge", uid), "UID EXPUNGE")
        else:
            _ok(await client.expunge(), "EXPUNGE")

    async def drain(self, client: IMAP4) -> int:
        """Queue and mark every unprocessed mail; how many were queued."""
        count = 0
        for uid in await self._unprocessed(client):
            raw = await self._fetch(client, uid)
            if raw is None:
                continue
            # Raises BusUnavailable when the queue cannot take it: the session ends, the
            # mail stays unmarked and is read again after the backoff.
            await self.ingest.accept(raw, self.mailbox, via="imap")
            await self.before_mark(uid)
            await self._mark(client, uid)
            count += 1
        return count


async def run_imap_workers(book: MailboxBook, ingest: MailIngest,
                           passwords: dict[str, str]) -> None:
    """Run one worker per IMAP mailbox until cancelled (``passwords`` by address key)."""
    workers = [ImapIngester(mailbox, passwords[mailbox.key], ingest)
               for mailbox in book.imap_mailboxes()]
    if not workers:
        return
    async with asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(worker.run())
