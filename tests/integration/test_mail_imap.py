"""IMAP ingestion against a real Dovecot: IDLE, polling, crash between queue and flag."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aioimaplib import IMAP4  # type: ignore[import-untyped]  # no py.typed

from hotline.domain.case import CaseQuery
from hotline.mail.config import ImapSettings, Mailbox
from hotline.topology import ROUTER_QUEUE
from intake.mail_imap import ImapIngester
from tests.support.dovecot import Dovecot
from tests.support.mailflow import DOMAIN, MailFlow, eventually, mail_flow

pytestmark = pytest.mark.integration

USER, PASSWORD = "complaints-gd", "imap-test-password"


def complaint(n: int) -> bytes:
    return (f"From: Zhao Lei <zhao.lei{n}@example.cn>\r\nTo: complaints-gd@{DOMAIN}\r\n"
            f"Subject: =?UTF-8?B?5oqV6K+J?= {n}\r\nMessage-ID: <imap-{n}@example.cn>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"第{n}封投诉：施工队晚上十点以后还在施工，噪音太大，请处理。\r\n").encode()


async def imap_client(server: Dovecot) -> IMAP4:
    client = IMAP4(server.host, server.port, timeout=5)
    await client.wait_hello_from_server()
    await client.login(USER, PASSWORD)
    return client


async def append(server: Dovecot, raw: bytes) -> None:
    client = await imap_client(server)
    try:
        response = await client.append(raw, mailbox="INBOX")
        assert "OK" == response.result
    finally:
        await client.logout()


async def search(server: Dovecot, folder: str, criteria: str) -> list[str]:
    client = await imap_client(server)
    try:
        await client.select(folder)
        response = await client.uid_search(criteria)
        return [t.decode() for line in response.lines[:-1] for t in bytes(line).split()]
    finally:
        await client.logout()


def mailbox_for(server: Dovecot, **changes: Any) -> Mailbox:
    imap = ImapSettings(host=server.host, port=server.port, tls="none", user=USER,
                        password_env="HOTLINE_TEST_IMAP_PASSWORD", poll_seconds=0.2)
    return Mailbox(f"complaints-gd@{DOMAIN}", "GD", "zh-Hans", replace(imap, **changes))


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[MailFlow]:
    async with mail_flow(tmp_path) as instance:
        yield instance


@contextlib.asynccontextmanager
async def running(*coroutines: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def wait_for_cases(flow: MailFlow, count: int) -> None:
    async def enough() -> bool:
        return await flow.env.store.cases.count() >= count

    await eventually(enough)


def folder_matches(server: Dovecot, folder: str, criteria: str,
                   expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return expected == len(await search(server, folder, criteria))

    return check


async def test_appended_mail_becomes_a_case_within_seconds_via_idle(
        dovecot: Dovecot, flow: MailFlow) -> None:
    """With IDLE, a mail APPENDed to the mailbox is a case in seconds and is then \\Seen."""
    worker = ImapIngester(mailbox_for(dovecot), PASSWORD, flow.ingest)
    async with running(worker.run(), flow.env.bus.consume(ROUTER_QUEUE, flow.router.handle)):
        await asyncio.sleep(0.3)  # the worker is connected and idling
        started = time.perf_counter()
        await append(dovecot, complaint(1))
        await wait_for_cases(flow, 1)
        latency = time.perf_counter() - started
        await eventually(folder_matches(dovecot, "INBOX", "UNSEEN", 0), 5)
    print(f"IDLE append-to-case latency: {latency:.2f} s")
    assert latency < 5.0
    [case] = await flow.env.store.cases.query(CaseQuery(units=None))
    assert ("GD", "email", "complaint") == (case.unit, case.channel, case.kind)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the worker, not even error handling."""


async def test_crash_between_queueing_and_flagging_still_gives_one_case_per_mail(
        dovecot: Dovecot, flow: MailFlow) -> None:
    """Killed after queueing the first mail but before flagging it; a restart makes one
    case per mail, and every mail ends flagged."""
    for n in (1, 2, 3):
        await append(dovecot, complaint(n))

    async def kill(_uid: str) -> None:
        raise Killed

    crashed = ImapIngester(mailbox_for(dovecot), PASSWORD, flow.ingest, before_mark=kill)
    with pytest.raises(Killed):
        await crashed.session()
    assert 3 == len(await search(dovecot, "INBOX", "UNSEEN"))  # nothing was flagged
    assert 1 == await flow.pending()  # but the first mail was queued

    restarted = ImapIngester(mailbox_for(dovecot), PASSWORD, flow.ingest)
    async with running(restarted.run()):
        await eventually(folder_matches(dovecot, "INBOX", "UNSEEN", 0), 10)
    assert 4 == await flow.pending()  # the first mail was queued twice
    await flow.settle()
    assert 3 == await flow.env.store.cases.count()
    assert [] == await search(dovecot, "INBOX", "UNSEEN")


async def test_polling_moves_processed_mail_to_its_folder(
        dovecot: Dovecot, flow: MailFlow) -> None:
    """Without IDLE the worker polls; a mail dropped into Maildir/new is moved once queued."""
    mailbox = mailbox_for(dovecot, idle=False, processed_folder="Processed")
    worker = ImapIngester(mailbox, PASSWORD, flow.ingest)
    async with running(worker.run(), flow.env.bus.consume(ROUTER_QUEUE, flow.router.handle)):
        await asyncio.sleep(0.3)
        dovecot.deliver(USER, complaint(7))
        await wait_for_cases(flow, 1)
        await eventually(folder_matches(dovecot, "INBOX", "ALL", 0), 5)
    assert 1 == len(await search(dovecot, "Processed", "ALL"))


async def test_queue_down_leaves_mail_unflagged_until_it_recovers(
        dovecot: Dovecot, flow: MailFlow) -> None:
    """While the queue refuses mail the worker backs off and flags nothing; then catches up."""
    await flow.env.bus.close()
    worker = ImapIngester(mailbox_for(dovecot), PASSWORD, flow.ingest, backoff_first=0.1,
                          backoff_max=0.3)
    async with running(worker.run()):
        await append(dovecot, complaint(9))
        await asyncio.sleep(0.8)
        assert 1 == len(await search(dovecot, "INBOX", "UNSEEN"))
        await flow.env.bus.open()
        await eventually(folder_matches(dovecot, "INBOX", "UNSEEN", 0), 5)
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
