"""The embedded queue keeps large bodies apart from their message rows (issue 7).

A lease, retry or renewal rewrites a message's row; a large body lives in ``bus_bodies``
so that it is not rewritten with it. These tests check that bodies stay with their
message through ack, retry, park and replay, that nothing is left behind, and that a
queue file written before ``bus_bodies`` existed is still delivered in full.
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline.adapters.sqlite_bus import SqliteBus
from hotline.errors import BusUnavailable, MalformedMessage
from hotline.ports import Message
from hotline.topology import ROUTER_QUEUE
from tests.integration.test_bus_contract import consuming

pytestmark = pytest.mark.integration

WAIT = 15.0  # seconds any single expected event may take on a busy 2-core machine
LARGE = 1 << 20  # far above the size up to which a body stays in its row
SMALL = 200

# The schema of the queue before bodies had a table of their own.
_OLD_SCHEMA = """
CREATE TABLE bus_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, routing_key TEXT NOT NULL,
    message_id TEXT NOT NULL, correlation_id TEXT, headers TEXT NOT NULL, body BLOB NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0, visible_at REAL NOT NULL DEFAULT 0,
    leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bus_messages_ready ON bus_messages (queue, visible_at, seq);
CREATE TABLE bus_parked (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, routing_key TEXT NOT NULL,
    message_id TEXT NOT NULL, correlation_id TEXT, headers TEXT NOT NULL, body BLOB NOT NULL,
    delivery_count INTEGER NOT NULL, parked_at REAL NOT NULL, reason TEXT NOT NULL
);
"""


def _body(message_id: str, size: int) -> bytes:
    """A JSON body of about ``size`` bytes whose content differs from message to message."""
    head = json.dumps({"schema": "hotline.submission/1", "id": message_id, "pad": ""})
    pad = (message_id * (size // len(message_id) + 1))[:max(0, size - len(head))]
    return head.replace('"pad": ""', f'"pad": "{pad}"').encode()


def _message(message_id: str, size: int) -> Message:
    return Message(routing_key="submission.report", message_id=message_id,
                   body=_body(message_id, size), correlation_id=f"corr-{message_id}",
                   headers={"schema": "hotline.submission/1"})


@contextlib.contextmanager
def _inspect(path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        yield db


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """What the file holds: message ids with their inline body sizes, body rows, parked."""
    with _inspect(path) as db:
        return {
            "messages": db.execute("SELECT message_id, length(body) FROM bus_messages"
                                   " ORDER BY seq").fetchall(),
            "bodies": db.execute("SELECT m.message_id, length(b.body) FROM bus_bodies AS b"
                                 " LEFT JOIN bus_messages AS m ON m.seq = b.seq"
                                 " ORDER BY b.seq").fetchall(),
            "parked": db.execute("SELECT message_id, length(body) FROM bus_parked"
                                 " ORDER BY seq").fetchall(),
        }


_EMPTY: dict[str, list[tuple[object, ...]]] = {"messages": [], "bodies": [], "parked": []}


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    adapter = SqliteBus(tmp_path / "bus.sqlite3", poll_seconds=0.05, delivery_limit=3,
                        retry_backoff_seconds=0.05)
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()



async def _until(path: Path, expected: dict[str, list[tuple[object, ...]]]
                 ) -> dict[str, list[tuple[object, ...]]]:
    """The tables once they look like ``expected`` (or as they are after WAIT seconds)."""
    for _ in range(int(WAIT / 0.05)):
        if _tables(path) == expected:
            break
        await asyncio.sleep(0.05)
    return _tables(path)


async def _drain(bus: SqliteBus) -> tuple[list[Message], dict[str, list[tuple[object, ...]]]]:
    """Consume until the tables are empty: the messages delivered, and the tables then."""
    seen: list[Message] = []

    async def handle(message: Message) -> None:
        seen.append(message)

    async with consuming(bus, handle):
        left = await _until(bus.path, _EMPTY)
    return seen, left


async def test_a_large_body_waits_apart_from_its_row_and_goes_with_the_ack(
        bus: SqliteBus) -> None:
    """A large body is queued in bus_bodies (its row's body empty), delivered whole, and
    deleted with its message on ack; a small one stays in its row."""
    large, small = _message("large", LARGE), _message("small", SMALL)
    await bus.publish(large)
    await bus.publish(small)
    queued = _tables(bus.path)
    seen, left = await _drain(bus)

    assert {"messages": [("large", 0), ("small", len(small.body))],
            "bodies": [("large", len(large.body))], "parked": []} == queued
    assert [large, small] == seen
    assert _EMPTY == left


async def test_a_retried_message_keeps_its_body(bus: SqliteBus) -> None:
    """A retry only makes the row visible again: the next delivery has the whole body."""
    sent = _message("flaky", LARGE)
    seen: list[Message] = []

    async def fail_once(message: Message) -> None:
        seen.append(message)
        if len(seen) == 1:
            raise RuntimeError("store briefly unavailable")

    await bus.publish(sent)
    async with consuming(bus, fail_once):
        left = await _until(bus.path, _EMPTY)

    assert [(sent.body, 0), (sent.body, 1)] == [(m.body, m.delivery_count) for m in seen]
    assert _EMPTY == left


async def test_a_large_message_of_a_consumer_that_died_is_delivered_again_whole(
        tmp_path: Path) -> None:
    """Leased but never settled (the process stopped mid-handler): the next consumer gets
    the whole body, and its ack leaves nothing behind."""
    path = tmp_path / "bus.sqlite3"
    sent = _message("in-flight", LARGE)
    first = SqliteBus(path, poll_seconds=0.05)
    await first.open()
    started = asyncio.Event()

    async def hang(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    try:
        await first.publish(sent)
        async with consuming(first, hang):
            await asyncio.wait_for(started.wait(), WAIT)
    finally:
        await first.close()
    leased = _tables(path)
    second = SqliteBus(path, poll_seconds=0.05)
    await second.open()
    try:
        seen, left = await _drain(second)
    finally:
        await second.close()

    assert {"messages": [("in-flight", 0)], "bodies": [("in-flight", len(sent.body))],
            "parked": []} == leased
    assert [(sent.body, 1)] == [(m.body, m.delivery_count) for m in seen]
    assert _EMPTY == left


async def test_parking_moves_the_body_and_replay_brings_it_back(bus: SqliteBus) -> None:
    """A rejected large message is parked with its body (no body row left behind); replay
    puts the body back in bus_bodies and the message is delivered whole."""
    sent = _message("rejected", LARGE)

    async def reject(message: Message) -> None:
        raise MalformedMessage("not yet understood")

    await bus.publish(sent)
    async with consuming(bus, reject):
        parked_tables = await _until(bus.path, {"messages": [], "bodies": [],
                                                "parked": [("rejected", len(sent.body))]})
    [parked] = await bus.parked()
    moved = await bus.replay_parked()
    replayed_tables = _tables(bus.path)
    seen, left = await _drain(bus)

    assert {"messages": [], "bodies": [], "parked": [("rejected", len(sent.body))]} \
        == parked_tables
    assert sent.body == parked.body
    assert 1 == moved
    assert {"messages": [("rejected", 0)], "bodies": [("rejected", len(sent.body))],
            "parked": []} == replayed_tables
    assert [sent.body] == [m.body for m in seen]
    assert _EMPTY == left


async def test_a_message_deleted_by_hand_takes_its_body(bus: SqliteBus) -> None:
    """An operator's (or a benchmark's) DELETE FROM bus_messages leaves no orphan body."""
    await bus.publish(_message("large", LARGE))
    with _inspect(bus.path) as db:
        db.execute("DELETE FROM bus_messages")
        db.commit()

    assert _EMPTY == _tables(bus.path)


async def test_a_body_that_cannot_be_stored_takes_its_message_back(bus: SqliteBus) -> None:
    """Message row and body commit together: a failing body insert leaves no message."""
    with _inspect(bus.path) as db:
        db.execute("CREATE TRIGGER refuse_bodies BEFORE INSERT ON bus_bodies"
                   " BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        db.commit()

    with pytest.raises(BusUnavailable):
        await bus.publish(_message("large", LARGE))

    assert _EMPTY == _tables(bus.path)


async def test_a_queue_file_from_before_bus_bodies_is_delivered_in_full(
        tmp_path: Path) -> None:
    """Rows written by the old schema, bodies inline (small and large, queued and parked),
    are delivered whole after the upgrade, and leave nothing behind."""
    path = tmp_path / "bus.sqlite3"
    old = [_message("old-small", SMALL), _message("old-large", LARGE)]
    old_parked = _message("old-parked", LARGE)
    with _inspect(path) as db:
        db.executescript(_OLD_SCHEMA)
        db.executemany(
            "INSERT INTO bus_messages (queue, routing_key, message_id, correlation_id, headers,"
            " body) VALUES (?, ?, ?, ?, ?, ?)",
            [(ROUTER_QUEUE, m.routing_key, m.message_id, m.correlation_id,
              json.dumps(dict(m.headers)), m.body) for m in old])
        db.execute(
            "INSERT INTO bus_parked (queue, routing_key, message_id, correlation_id, headers,"
            " body, delivery_count, parked_at, reason) VALUES (?, ?, ?, ?, ?, ?, 3, 0,"
            " 'delivery limit')",
            (ROUTER_QUEUE, old_parked.routing_key, old_parked.message_id,
             old_parked.correlation_id, json.dumps(dict(old_parked.headers)), old_parked.body))
        db.commit()
    bus = SqliteBus(path, poll_seconds=0.05)
    await bus.open()
    new = _message("new-large", LARGE)
    seen: list[Message] = []

    async def handle(message: Message) -> None:
        seen.append(message)

    try:
        await bus.publish(new)
        async with consuming(bus, handle):
            after_queue = await _until(path, {"messages": [], "bodies": [],
                                              "parked": [("old-parked", len(old_parked.body))]})
            moved = await bus.replay_parked()
            left = await _until(path, _EMPTY)
    finally:
        await bus.close()

    assert {"messages": [], "bodies": [], "parked": [("old-parked", len(old_parked.body))]} \
        == after_queue
    assert 1 == moved
    assert [*old, new, old_parked] == seen
    assert _EMPTY == left
