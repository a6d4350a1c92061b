"""An in-process mail pipeline for tests: ingest → embedded queue → router → outbox."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from hotline.domain.case import Case
from hotline.mail.config import MailboxBook, load_mailboxes
from hotline.mail.ingest import MailIngest
from hotline.mail.outbound import Delivery, OutboundConsumer, OutboxDelivery
from hotline.ports import Bus
from hotline.topology import MAIL_OUTBOUND_QUEUE, ROUTER_QUEUE
from router.mail import MailDesk
from router.worker import Router
from tests.support.embedded import Embedded, embedded

DOMAIN = "hotline.localhost"


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float = 10.0,
                     interval: float = 0.02) -> None:
    """Wait until ``condition()`` is true; TimeoutError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"condition not met within {seconds} s")


@dataclass
class MailFlow:
    env: Embedded
    book: MailboxBook
    ingest: MailIngest
    router: Router
    outbound: OutboundConsumer
    outbox: Path

    async def deliver(self, raw: bytes, to: str = f"complaints-gd@{DOMAIN}") -> str:
        """Queue ``raw`` as the SMTP receiver would; the submission id."""
        mailbox = self.book.get(to)
        assert mailbox is not None
        return (await self.ingest.accept(raw, mailbox, via="smtp")).submission_id

    async def pending(self) -> int:
        async with self.env.store.transaction() as db:
            cursor = await db.execute("SELECT COUNT(*) FROM bus_messages")
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def settle(self, seconds: float = 10.0) -> None:
        """Run the router and the outbound consumer until the queue is empty."""
        tasks = [asyncio.create_task(self.env.bus.consume(ROUTER_QUEUE, self.router.handle)),
                 asyncio.create_task(self.env.bus.consume(MAIL_OUTBOUND_QUEUE,
                                                          self.outbound.handle))]

        async def drained() -> bool:
            return await self.pending() == 0

        try:
            await eventually(drained, seconds)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def case(self, submission_id: str) -> Case:
        case = await self.env.store.cases.by_submission(submission_id)
        assert case is not None
        return case

    async def audit_types(self, case_id: str) -> list[str]:
        return [e.type for e in await self.env.store.audit.events(case_id)]

    def sent(self) -> list[EmailMessage]:
        """The mails in the outbox, oldest first."""
        files = sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in files]


@contextlib.asynccontextmanager
async def mail_flow(tmp_path: Path, *, delivery: Delivery | None = None,
                    ack_per_hour: int = 3, bus: Bus | None = None) -> AsyncIterator[MailFlow]:
    """The pipeline on an embedded store; on the embedded queue unless ``bus`` is given."""
    async with embedded(tmp_path) as env:
        book = load_mailboxes(env.org, DOMAIN)
        the_bus = bus or env.bus
        router = Router(store=env.store, bus=the_bus, org=env.org, master=env.master,
                        mail=MailDesk(book, DOMAIN, ack_per_hour=ack_per_hour))
        outbox = tmp_path / "outbox"

        async def private_key(kid: str) -> object:
            return await router._private_key(kid)

        outbound = OutboundConsumer(env.store, private_key,  # type: ignore[arg-type]
                                    delivery or OutboxDelivery(outbox), DOMAIN,
                                    retry_base_seconds=0.01)
        yield MailFlow(env, book, MailIngest(env.store, the_bus, mail_domain=DOMAIN), router,
                       outbound, outbox)
