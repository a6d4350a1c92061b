"""RabbitMQ-only behaviour of the bus: raw clients, lost connections, a stopped broker."""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest

from hotline.adapters.rabbit_bus import RabbitBus
from hotline.errors import BusUnavailable, MalformedMessage
from hotline.ports import Message
from hotline.topology import EXCHANGE, PARKING_QUEUE, ROUTER_QUEUE
from tests.integration.test_bus_contract import (
    consuming,
    next_seen,
    parked_ids,
    recording,
    submission,
    wire,
)
from tests.support.rabbitmq import RabbitNode

pytestmark = pytest.mark.integration

PUBLISH_TIMEOUT = 2.0


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[RabbitBus]:
    """An open RabbitBus on a fresh vhost."""
    adapter = RabbitBus(amqp_url, delivery_limit=3, publish_timeout=PUBLISH_TIMEOUT,
                        reconnect_interval=0.5)
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


async def wait_until(bus: RabbitBus, *, up: bool) -> None:
    """Until ping() says ``up`` (the client notices a lost or regained connection)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while await bus.ping() != up:
        assert loop.time() < deadline, f"the bus never became {'up' if up else 'down'}"
        await asyncio.sleep(0.05)


async def wait_for_new_connection(node: RabbitNode, dropped: set[int]) -> None:
    """Until the broker has a connection again and none of ``dropped`` (a local reconnect
    takes milliseconds, too short to see in ping())."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        ports = await asyncio.to_thread(node.client_ports)
        if ports and not ports & dropped:
            return
        assert loop.time() < deadline, f"no reconnection: {dropped} before, {ports} now"
        await asyncio.sleep(0.2)


async def test_raw_non_json_message_ends_in_parking(bus: RabbitBus, amqp_url: str) -> None:
    """Garbage published by a plain client to submission.report lands in hotline.parking."""
    seen: asyncio.Queue[Message] = asyncio.Queue()

    async def parse(message: Message) -> None:
        try:
            json.loads(message.body)
        except ValueError as exc:
            raise MalformedMessage("not JSON") from exc

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        await exchange.publish(aio_pika.Message(b"\xff not json"), "submission.report")
        async with consuming(bus, recording(seen, parse)):
            delivered = await next_seen(seen)
            await parked_ids(bus, 1)
        parking = await channel.get_queue(PARKING_QUEUE)
        raw = await parking.get(no_ack=False, fail=False)
        assert raw is not None
        await raw.nack(requeue=True)

    assert b"\xff not json" == delivered.body
    assert (b"\xff not json", "submission.report") == (raw.body, raw.routing_key)
    assert "rejected" == raw.headers.get("x-first-death-reason")


async def test_consumer_survives_forced_connection_close(bus: RabbitBus,
                                                         rabbitmq_node: RabbitNode) -> None:
    """After the broker drops every connection, the same consume() call goes on and
    publishing works again."""
    before, after = submission(), submission()
    seen: asyncio.Queue[Message] = asyncio.Queue()
    async with consuming(bus, recording(seen)) as task:
        await bus.publish(before)
        first = await next_seen(seen)
        dropped = await asyncio.to_thread(rabbitmq_node.client_ports)
        await asyncio.to_thread(rabbitmq_node.close_all_connections)
        await wait_for_new_connection(rabbitmq_node, dropped)
        await bus.publish(after)
        second = await next_seen(seen)
        running = not task.done()

    assert wire(before) == wire(first)
    assert wire(after) == wire(second)
    assert running


async def test_publish_to_bound_key_without_queue_fails(bus: RabbitBus, amqp_url: str) -> None:
    """If the queue a submission routes to is gone, publish raises instead of losing it."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(ROUTER_QUEUE)

    with pytest.raises(BusUnavailable):
        await bus.publish(submission())


async def test_topology_is_declared_idempotently(amqp_url: str) -> None:
    """A second process opening the bus declares the same topology without a conflict."""
    one, two = RabbitBus(amqp_url, delivery_limit=3), RabbitBus(amqp_url, delivery_limit=3)
    await one.open()
    try:
        await two.open()
        await two.publish(submission())
        await two.close()
    finally:
        await one.close()

    assert not await two.ping()


async def test_broker_restart_fails_publish_in_bounded_time_then_recovers(
        bus: RabbitBus, rabbitmq_node: RabbitNode) -> None:
    """With the broker stopped, publish gives up with BusUnavailable after its timeout;
    once the broker is back, the same bus publishes and the same consumer receives."""
    before, after = submission(), submission()
    seen: asyncio.Queue[Message] = asyncio.Queue()
    async with consuming(bus, recording(seen)) as task:
        await bus.publish(before)
        await next_seen(seen)  # the consumer is registered
        # A graceful stop: RabbitMQ 3.10 killed (SIGKILL) within a second or two of
        # declaring a quorum queue may bring that queue back without a leader.
        await asyncio.to_thread(rabbitmq_node.stop)
        try:
            await wait_until(bus, up=False)
            started = time.monotonic()
            with pytest.raises(BusUnavailable):
                await bus.publish(submission())
            elapsed = time.monotonic() - started
        finally:
            await asyncio.to_thread(rabbitmq_node.start)
        await bus.publish(after)  # waits for the reconnection, within the publish timeout
        received = await next_seen(seen)
        running = not task.done()

    assert PUBLISH_TIMEOUT - 0.1 <= elapsed < PUBLISH_TIMEOUT + 1.0
    assert wire(after) == wire(received)
    assert running
