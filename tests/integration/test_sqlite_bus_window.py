"""The embedded queue's consumer keeps a window of messages in flight, not a batch.

The bus contract (test_bus_contract.py) checks that a message arriving while another
is being handled does not wait for it; here: a handler that runs longer than half the
lease has its lease renewed, so the message is not delivered a second time while it is
still being handled, and a refilling window handles every message once.
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from hotline.adapters.sqlite_bus import SqliteBus
from hotline.ports import Message
from tests.integration.test_bus_contract import consuming, recording

pytestmark = pytest.mark.integration

WAIT = 15.0  # seconds any single expected event may take on a busy 2-core machine


def _message(message_id: str) -> Message:
    body = json.dumps({"schema": "hotline.submission/1", "id": message_id}).encode()
    return Message(routing_key="submission.report", message_id=message_id, body=body,
                   correlation_id=f"corr-{message_id}", headers={"schema": "hotline.submission/1"})



def _remaining(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM bus_messages").fetchone()[0])


async def test_a_long_handler_keeps_its_lease(tmp_path: Path) -> None:
    """A handler running for several lease periods is not given its message again."""
    bus = SqliteBus(tmp_path / "bus.sqlite3", poll_seconds=0.05, lease_seconds=0.4)
    await bus.open()
    deliveries: list[str] = []

    async def handle(message: Message) -> None:
        deliveries.append(message.message_id)
        if message.message_id == "long":
            await asyncio.sleep(1.5)

    try:
        async with consuming(bus, handle, prefetch=4):
            await bus.publish(_message("long"))
            # Short messages keep the consumer leasing while the long one runs.
            for _ in range(10):
                await bus.publish(_message(uuid.uuid4().hex))
                await asyncio.sleep(0.15)
            for _ in range(int(WAIT / 0.05)):
                if _remaining(bus.path) == 0:
                    break
                await asyncio.sleep(0.05)
        assert (1, 11, 0) == (deliveries.count("long"), len(deliveries), _remaining(bus.path))
    finally:
        await bus.close()


async def test_many_messages_are_each_handled_once(tmp_path: Path) -> None:
    """A full window refills as handlers finish; every message is acked exactly once."""
    bus = SqliteBus(tmp_path / "bus.sqlite3", poll_seconds=0.05)
    await bus.open()
    seen: list[str] = []

    async def handle(message: Message) -> None:
        await asyncio.sleep(0.001 * (hash(message.message_id) % 7))
        seen.append(message.message_id)

    ids = [f"m{i}" for i in range(300)]
    try:
        async with consuming(bus, handle, prefetch=16):
            await asyncio.gather(*(bus.publish(_message(i)) for i in ids))
            for _ in range(int(WAIT / 0.05)):
                if _remaining(bus.path) == 0 and len(seen) >= len(ids):
                    break
                await asyncio.sleep(0.05)
        assert (sorted(ids), 0) == (sorted(seen), _remaining(bus.path))
    finally:
        await bus.close()


# -- several consumers of one queue (two routers on one file) ----------------------------

async def test_a_consumer_that_starts_leaves_a_live_consumers_leases_alone(
        tmp_path: Path) -> None:
    """A second consumer of the queue (another process on the file) does not take the
    message the first one is handling, however many times it beats."""
    path = tmp_path / "bus.sqlite3"
    first = SqliteBus(path, poll_seconds=0.02, beat_seconds=0.02, stale_seconds=0.5)
    second = SqliteBus(path, poll_seconds=0.02, beat_seconds=0.02, stale_seconds=0.5)
    await first.open()
    await second.open()
    started, release = asyncio.Event(), asyncio.Event()
    deliveries: list[tuple[str, str]] = []

    def handler(name: str) -> Any:
        async def handle(message: Message) -> None:
            deliveries.append((name, message.message_id))
            started.set()
            await release.wait()
        return handle

    try:
        async with consuming(first, handler("first")):
            await first.publish(_message("busy"))
            await asyncio.wait_for(started.wait(), WAIT)
            async with consuming(second, handler("second")):
                await asyncio.sleep(1.0)  # 50 beats of each, twice the staleness
                release.set()
                for _ in range(int(WAIT / 0.05)):
                    if _remaining(path) == 0:
                        break
                    await asyncio.sleep(0.05)
        assert ([("first", "busy")], 0) == (deliveries, _remaining(path))
    finally:
        await second.close()
        await first.close()


async def test_the_leases_of_a_consumer_that_died_go_to_one_that_lives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer that stops beating without leaving (a killed process) loses its leases
    to a live consumer once it is stale; the message is then delivered again, once."""
    path = tmp_path / "bus.sqlite3"
    dead = SqliteBus(path, poll_seconds=0.02, beat_seconds=0.02, stale_seconds=0.3)
    live = SqliteBus(path, poll_seconds=0.02, beat_seconds=0.02, stale_seconds=0.3)
    await dead.open()
    await live.open()
    started = asyncio.Event()
    seen: asyncio.Queue[Message] = asyncio.Queue()

    async def hang(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    async def no_leaving(me: str) -> None:
        return None

    monkeypatch.setattr(dead, "_leave", no_leaving)
    try:
        async with consuming(dead, hang):
            await dead.publish(_message("orphan"))
            await asyncio.wait_for(started.wait(), WAIT)
        # The dead consumer's row is still there: only its staleness frees the lease.
        async with consuming(live, recording(seen)):
            message = await asyncio.wait_for(seen.get(), WAIT)
            await asyncio.sleep(0.5)
        assert (("orphan", 1), True) == ((message.message_id, message.delivery_count),
                                         seen.empty())
    finally:
        await live.close()
        await dead.close()
