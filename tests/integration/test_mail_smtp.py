"""The SMTP/LMTP receiver with real clients: 250 only after durable queueing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pytest

from hotline.contract import Submission
from intake.mail_receiver import MailReceiver, start_mail_server
from tests.support.mailflow import DOMAIN, MailFlow, mail_flow

pytestmark = pytest.mark.integration

MAX_TEST_MAIL_BYTES = 64 * 1024
GD = f"complaints-gd@{DOMAIN}"
SC = f"complaints-sc@{DOMAIN}"
MAIL = (
    "From: Wang Fang <wang.fang@example.cn>\r\n"
    f"To: {GD}\r\n"
    "Subject: =?UTF-8?B?5paw5oi/5ryP5rC0?=\r\n"
    "Message-ID: <smtp-1@example.cn>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "新房交付三个月就漏水，物业一直推脱，请贵公司尽快处理。\r\n"
).encode()


@dataclass
class Receiver:
    flow: MailFlow
    port: int

    def client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=10)

    async def queued(self) -> list[Submission]:
        async with self.flow.env.store.transaction() as db:
            cursor = await db.execute("SELECT body FROM bus_messages ORDER BY seq")
            rows = await cursor.fetchall()
        return [Submission.from_bytes(bytes(row[0])) for row in rows]


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    async with mail_flow(tmp_path) as flow:
        server = await start_mail_server(MailReceiver(flow.ingest, flow.book), "127.0.0.1", 0,
                                         max_bytes=MAX_TEST_MAIL_BYTES)
        try:
            yield Receiver(flow, server.sockets[0].getsockname()[1])
        finally:
            server.close()
            await server.wait_closed()


async def test_accepted_mail_is_queued_sealed_before_250(receiver: Receiver) -> None:
    """250 comes after the submission is in the queue; nothing readable travels in it."""
    async with receiver.client() as client:
        started = time.perf_counter()
        errors, reply = await client.sendmail("wang.fang@example.cn", [GD], MAIL)
        elapsed = time.perf_counter() - started
    assert {} == errors
    assert "Queued" in reply
    [submission] = await receiver.queued()
    assert ("complaint", "email", "GD") == (submission.kind, submission.channel, submission.unit)
    wire = submission.to_bytes()
    for secret in (b"wang.fang", "漏水".encode(), b"smtp-1@example.cn"):
        assert secret not in wire
    assert elapsed < 2.0


async def test_unknown_recipient_is_refused_with_550(receiver: Receiver) -> None:
    """RCPT to an address that is no mailbox of ours gets 550 and nothing is queued."""
    async with receiver.client() as client:
        await client.ehlo()
        await client.mail("wang.fang@example.cn")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt(f"someone@{DOMAIN}")
    assert 550 == refused.value.code
    assert [] == await receiver.queued()


async def test_too_large_mail_is_refused_at_data_with_552(receiver: Receiver) -> None:
    """A mail over the size limit gets 552 at DATA and nothing is queued."""
    big = MAIL + (b"y" * 998 + b"\r\n") * (MAX_TEST_MAIL_BYTES // 1000 + 1)
    async with receiver.client() as client:
        await client.ehlo()
        await client.mail("wang.fang@example.cn")
        await client.rcpt(GD)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(big)
    assert 552 == refused.value.code
    assert [] == await receiver.queued()


async def test_queue_down_answers_451_then_accepts_after_recovery(receiver: Receiver) -> None:
    """With the queue down the MTA gets 451; its retry after recovery is one case."""
    bus = receiver.flow.env.bus
    await bus.close()
    async with receiver.client() as client:
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await client.sendmail("wang.fang@example.cn", [GD], MAIL)
    assert 451 == deferred.value.code
    await bus.open()
    assert [] == await receiver.queued()
    async with receiver.client() as client:
        await client.sendmail("wang.fang@example.cn", [GD], MAIL)
    assert 1 == len(await receiver.queued())
    await receiver.flow.settle()
    assert 1 == await receiver.flow.env.store.cases.count()


async def lmtp_session(port: int, recipients: list[str], raw: bytes) -> list[str]:
    """A minimal LMTP client (RFC 2033): the reply lines after DATA, one per recipient.

    (smtplib.LMTP reads only one reply after DATA, so it cannot check this.)
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> str:
        line = await reader.readline()
        while line[3:4] == b"-":
            line = await reader.readline()
        return line.decode().strip()

    async def command(text: str) -> str:
        writer.write(text.encode() + b"\r\n")
        await writer.drain()
        return await reply()

    try:
        await reply()
        await command("LHLO mta.example")
        await command("MAIL FROM:<wang.fang@example.cn>")
        for recipient in recipients:
            await command(f"RCPT TO:<{recipient}>")
        assert (await command("DATA")).startswith("354")
        writer.write(raw.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        await writer.drain()
        replies = [await reply() for _ in recipients]
        await command("QUIT")
        return replies
    finally:
        writer.close()


async def test_lmtp_answers_once_per_recipient(receiver: Receiver) -> None:
    """LHLO switches to LMTP: two mailboxes, two 250 replies, two submissions of their units."""
    replies = await lmtp_session(receiver.port, [GD, SC], MAIL)
    assert ["250", "250"] == [r[:3] for r in replies]
    units = sorted(s.unit or "" for s in await receiver.queued())
    assert ["GD", "SC"] == units
    await receiver.flow.settle()
    # The same mail to two mailboxes is one complaint: the second joins the first case.
    assert 1 == await receiver.flow.env.store.cases.count()


async def test_lmtp_reports_451_per_recipient_when_the_queue_is_down(
        receiver: Receiver) -> None:
    """With the queue down every LMTP recipient gets its own 451."""
    await receiver.flow.env.bus.close()
    replies = await lmtp_session(receiver.port, [GD, SC], MAIL)
    await receiver.flow.env.bus.open()
    assert ["451", "451"] == [r[:3] for r in replies]
    assert [] == await receiver.queued()


async def test_null_sender_mail_is_accepted_but_never_answered(receiver: Receiver) -> None:
    """MAIL FROM:<> (a bounce) is queued and becomes a case, without an acknowledgement."""
    async with receiver.client() as client:
        await client.sendmail("", [GD], MAIL)
    await receiver.flow.settle()
    assert 1 == await receiver.flow.env.store.cases.count()
    assert [] == receiver.flow.sent()
