"""The bus contract: every Bus adapter (RabbitMQ, embedded SQLite queue) passes these tests.

Written only against :class:`hotline.ports.Bus`; the ``bus`` fixture runs each test once
per adapter. RabbitMQ-only behaviour is in ``test_rabbit_bus.py``.
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hotline.errors import MalformedMessage
from hotline.ports import Bus, Handler, Message
from hotline.topology import ROUTER_QUEUE

pytestmark = pytest.mark.integration

DELIVERY_LIMIT = 3
WAIT = 15.0  # seconds any single expected event may take on a busy 2-core machine
QUIET = 0.5  # seconds in which an unexpected delivery would have shown up


@pytest.fixture(params=["rabbitmq", "sqlite"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    """An open bus of each adapter, with its topology declared, on a fresh vhost/file."""
    adapter: Bus
    if request.param == "rabbitmq":
        from hotline.adapters.rabbit_bus import RabbitBus

        adapter = RabbitBus(request.getfixturevalue("amqp_url"), delivery_limit=DELIVERY_LIMIT)
    else:
        from hotline.adapters.sqlite_bus import SqliteBus

        adapter = SqliteBus(tmp_path / "bus.sqlite3", delivery_limit=DELIVERY_LIMIT)
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


def submission(routing_key: str = "submission.report", **overrides: str) -> Message:
    """A wire message shaped like intake's, with a fresh id."""
    message_id = overrides.get("message_id", uuid.uuid4().hex)
    body = json.dumps({"schema": "hotline.submission/1", "id": message_id,
                       "payload": {"kid": "k1", "enc": "ZW5j", "ciphertext": "Y3Q"}}).encode()
    return Message(routing_key=routing_key, message_id=message_id, body=body,
                   correlation_id=overrides.get("correlation_id", f"corr-{message_id[:8]}"),
                   headers={"schema": "hotline.submission/1"})


@contextlib.asynccontextmanager
async def consuming(bus: Bus, handler: Handler, *,
                    prefetch: int = 8) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``bus.consume`` on the router queue in a task; cancel and await it on exit."""
    task = asyncio.create_task(bus.consume(ROUTER_QUEUE, handler, prefetch=prefetch))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def recording(seen: asyncio.Queue[Message],
              fail: Callable[[Message], Awaitable[None]] | None = None) -> Handler:
    """A handler that records every delivery, then runs ``fail`` (which may raise)."""
    async def handle(message: Message) -> None:
        seen.put_nowait(message)
        if fail is not None:
            await fail(message)
    return handle


async def next_seen(seen: asyncio.Queue[Message]) -> Message:
    return await asyncio.wait_for(seen.get(), WAIT)


async def seen_until(seen: asyncio.Queue[Message], message_id: str) -> list[Message]:
    """Deliveries up to and including the first one of ``message_id``."""
    deliveries = [await next_seen(seen)]
    while deliveries[-1].message_id != message_id:
        deliveries.append(await next_seen(seen))
    return deliveries


async def parked_ids(bus: Bus, expected: int) -> list[str]:
    """Ids in the parking queue once it holds ``expected`` messages (dead-lettering is async)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        ids = [m.message_id for m in await bus.parked()]
        if len(ids) >= expected or loop.time() > deadline:
            return ids
        await asyncio.sleep(0.1)


def wire(message: Message) -> tuple[str, str, bytes, str | None]:
    return message.routing_key, message.message_id, message.body, message.correlation_id


async def test_published_message_reaches_handler_and_is_acked(bus: Bus) -> None:
    """A handled message arrives intact once and is not delivered again after the ack."""
    sent, sentinel = submission(), submission()
    seen: asyncio.Queue[Message] = asyncio.Queue()
    await bus.publish(sent)
    async with consuming(bus, recording(seen)):
        first = await next_seen(seen)
        await asyncio.sleep(QUIET)  # the ack follows the handler's return
    async with consuming(bus, recording(seen)):
        await bus.publish(sentinel)
        later = await seen_until(seen, sentinel.message_id)

    assert wire(sent) == wire(first)
    assert "hotline.submission/1" == first.headers.get("schema")
    assert 0 == first.delivery_count
    assert [sentinel.message_id] == [m.message_id for m in later]
    assert [] == await bus.parked()


async def test_malformed_message_is_parked_and_consumer_goes_on(bus: Bus) -> None:
    """A handler raising MalformedMessage parks the message at once; the next one is handled."""
    bad, good = submission(), submission("submission.complaint")
    seen: asyncio.Queue[Message] = asyncio.Queue()

    async def reject_bad(message: Message) -> None:
        if message.message_id == bad.message_id:
            raise MalformedMessage("not a submission", field="schema")

    await bus.publish(bad)
    await bus.publish(good)
    async with consuming(bus, recording(seen, reject_bad)) as task:
        deliveries = await seen_until(seen, good.message_id)
        ids = await parked_ids(bus, 1)
        await asyncio.sleep(QUIET)  # a retry of the bad message would show up here
        running = not task.done()
    deliveries += [seen.get_nowait() for _ in range(seen.qsize())]

    assert [bad.message_id, good.message_id] == [m.message_id for m in deliveries]
    assert [bad.message_id] == ids
    assert [wire(bad)] == [wire(m) for m in await bus.parked()]
    assert running


async def test_failing_handler_is_retried_then_parked(bus: Bus) -> None:
    """A transient failure is redelivered with a rising count, parked at the delivery limit."""
    flaky = submission()
    seen: asyncio.Queue[Message] = asyncio.Queue()

    async def always_fail(message: Message) -> None:
        raise RuntimeError("store down")

    await bus.publish(flaky)
    async with consuming(bus, recording(seen, always_fail)):
        ids = await parked_ids(bus, 1)
        await asyncio.sleep(QUIET)  # no delivery may follow the parking
    counts = [seen.get_nowait().delivery_count for _ in range(seen.qsize())]

    assert [flaky.message_id] == ids
    assert list(range(DELIVERY_LIMIT)) == counts


async def test_message_in_cancelled_handler_is_delivered_again(bus: Bus) -> None:
    """Cancelling a consumer mid-handler leaves the message for the next consumer."""
    sent = submission()
    started = asyncio.Event()

    async def hang(message: Message) -> None:
        started.set()
        await asyncio.Event().wait()

    await bus.publish(sent)
    async with consuming(bus, hang):
        await asyncio.wait_for(started.wait(), WAIT)
    seen: asyncio.Queue[Message] = asyncio.Queue()
    async with consuming(bus, recording(seen)):
        again = await next_seen(seen)

    assert wire(sent) == wire(again)


async def test_replayed_message_is_handled(bus: Bus) -> None:
    """replay_parked() moves a parked message back to its routing key; a good handler takes it."""
    sent = submission("submission.followup")
    seen: asyncio.Queue[Message] = asyncio.Queue()

    async def reject(message: Message) -> None:
        raise MalformedMessage("unknown schema")

    await bus.publish(sent)
    async with consuming(bus, reject):
        assert [sent.message_id] == await parked_ids(bus, 1)
    moved = await bus.replay_parked()
    async with consuming(bus, recording(seen)):
        replayed = await next_seen(seen)
        await asyncio.sleep(QUIET)  # the ack follows the handler's return

    assert 1 == moved
    assert wire(sent) == wire(replayed)
    assert [] == await bus.parked()


async def test_replay_of_one_message_leaves_the_others_parked(bus: Bus) -> None:
    """replay_parked(message_id) moves only that message; parked() lists without consuming."""
    first, second = submission(), submission()

    async def reject(message: Message) -> None:
        raise MalformedMessage("unknown schema")

    await bus.publish(first)
    await bus.publish(second)
    async with consuming(bus, reject):
        both = await parked_ids(bus, 2)
    looked_again = [m.message_id for m in await bus.parked()]
    moved = await bus.replay_parked(second.message_id)
    left = [m.message_id for m in await bus.parked()]

    assert [first.message_id, second.message_id] == both
    assert both == looked_again
    assert 1 == moved
    assert [first.message_id] == left


async def test_message_no_queue_binds_is_published(bus: Bus) -> None:
    """An event nobody consumes yet (case.opened) publishes without error and is not parked."""
    await bus.publish(submission("case.opened"))

    assert [] == await bus.parked()
    assert await bus.ping()


async def test_a_slow_handler_does_not_hold_back_the_next_message(bus: Bus) -> None:
    """Deliveries are handled concurrently (up to prefetch): the slow handler finishes only
    after the next message's handler ran, which a one-at-a-time consumer never reaches."""
    slow, fast = submission(), submission()
    slow_started, fast_done = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def handle(message: Message) -> None:
        if message.message_id == slow.message_id:
            slow_started.set()
            await asyncio.wait_for(fast_done.wait(), WAIT)
        else:
            fast_done.set()
        finished.append(message.message_id)

    async with consuming(bus, handle):
        await bus.publish(slow)
        await asyncio.wait_for(slow_started.wait(), WAIT)
        await bus.publish(fast)
        await asyncio.wait_for(fast_done.wait(), WAIT)
        for _ in range(int(WAIT / 0.05)):
            if len(finished) == 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET)  # an unexpected redelivery would show up here

    assert [fast.message_id, slow.message_id] == finished
    assert [] == await bus.parked()
