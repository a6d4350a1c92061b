"""The bus on RabbitMQ: quorum queues, publisher confirms, dead-lettering to a parking queue.

Topology comes from :mod:`hotline.topology`; what happens to a delivery is decided by
:func:`hotline.bus.deliver`. This module only translates both to AMQP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    DeliveryMode,
    ExchangeType,
)

from hotline.bus import deliver
from hotline.errors import BusUnavailable
from hotline.logging import get_logger
from hotline.ports import Handler, Message, Outcome
from hotline.topology import DEAD_EXCHANGE, EXCHANGE, PARKING_QUEUE, QUEUES, QueueSpec, matches

__all__ = ["RabbitBus"]

_log = get_logger("hotline.adapters.rabbit_bus")

# What aio-pika, aiormq and the socket raise when the broker cannot take a message.
# ChannelInvalidStateError is a RuntimeError.
_AMQP_FAILURES = (aiormq.exceptions.AMQPError, RuntimeError, OSError, TimeoutError)

# Broker-set headers that describe one delivery or one death, not the message itself.
_DEATH_HEADERS = ("x-death", "x-delivery-count", "x-first-death-exchange",
                  "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange",
                  "x-last-death-queue", "x-last-death-reason")


def _bound(routing_key: str) -> bool:
    return any(matches(binding, routing_key) for spec in QUEUES for binding in spec.bindings)


def _text_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """The string-valued headers (application headers and death reasons)."""
    text: dict[str, str] = {}
    for key, value in headers.items():
        if isinstance(value, bytes):
            text[key] = value.decode("utf-8", "replace")
        elif isinstance(value, str):
            text[key] = value
    return text


def _delivery_count(headers: Mapping[str, Any]) -> int:
    value = headers.get("x-delivery-count", 0)
    return value if isinstance(value, int) else 0


def _original_routing_key(incoming: AbstractIncomingMessage) -> str:
    """The routing key a dead-lettered message was first published with."""
    deaths = incoming.headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths:
        first = deaths[-1]  # x-death lists the most recent death first, the first last
        if isinstance(first, Mapping):
            keys = first.get("routing-keys")
            if isinstance(keys, list | tuple) and keys and isinstance(keys[0], str | bytes):
                return keys[0].decode() if isinstance(keys[0], bytes) else keys[0]
    return incoming.routing_key or ""


def _as_message(incoming: AbstractIncomingMessage, *, routing_key: str | None = None) -> Message:
    if routing_key is None:
        routing_key = incoming.routing_key or ""
    return Message(
        routing_key=routing_key,
        message_id=incoming.message_id or "",
        body=incoming.body,
        correlation_id=incoming.correlation_id,
        headers=_text_headers(incoming.headers),
        delivery_count=_delivery_count(incoming.headers),
    )


class RabbitBus:
    """:class:`hotline.ports.Bus` on RabbitMQ.

    ``delivery_limit`` is the number of times a message is handed to a handler before
    a still-failing message is parked (RabbitMQ's ``x-delivery-limit`` counts the
    redeliveries, so it is set one lower). ``publish_timeout`` bounds how long
    :meth:`publish` waits for the broker, including a reconnection in progress.
    """

    def __init__(self, url: str, *, delivery_limit: int = 5, publish_timeout: float = 5.0,
                 reconnect_interval: float = 1.0) -> None:
        if delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        self._url = url
        self._delivery_limit = delivery_limit
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def open(self) -> None:
        """Connect and declare the topology (idempotent)."""
        if self._connection is not None:
            return
        try:
            async with asyncio.timeout(self._publish_timeout * 2):
                connection = await aio_pika.connect_robust(
                    self._url, reconnect_interval=self._reconnect_interval,
                    client_properties={"connection_name": "hotline"})
        except _AMQP_FAILURES as exc:
            raise BusUnavailable(f"cannot connect to RabbitMQ: {type(exc).__name__}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await self._declare(channel)
        except _AMQP_FAILURES as exc:
            await connection.close()
            raise BusUnavailable(f"cannot declare the topology: {type(exc).__name__}") from exc
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel = connection, channel

    async def close(self) -> None:
        connection = self._connection
        self._connection, self._channel, self._exchange = None, None, None
        if connection is not None:
            await connection.close()

    async def ping(self) -> bool:
        connection = self._connection
        return (connection is not None and not connection.is_closed
                and connection.connected.is_set())

    async def publish(self, message: Message) -> None:
        """Return once the broker confirmed the message; :class:`BusUnavailable` otherwise.

        A routing key some queue binds is published ``mandatory``: if no queue takes it
        (topology missing), the broker returns it and that is a failure, not a loss.
        """
        await self._publish(message.routing_key, self._amqp_message(
            body=message.body, message_id=message.message_id,
            correlation_id=message.correlation_id, headers=message.headers))

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 32) -> None:
        """Deliver messages of ``queue`` to ``handler`` until cancelled, up to ``prefetch``
        at once (the broker sends no more unacknowledged ones), each settled as soon as
        its handler returns — as the embedded queue does, so that the store can commit
        the cases of concurrent deliveries together.

        Survives connection loss: the robust connection re-opens the channel and
        re-registers the consumer. Deliveries received on a channel that has since
        closed are skipped, the broker redelivers them. On cancellation the messages in
        hand are neither acked nor rejected; closing the channel returns them to the queue.
        """
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

        async def receive(incoming: AbstractIncomingMessage) -> None:
            inbox.put_nowait(incoming)

        channel, amqp_queue, consumer_tag = await self._subscribe(queue, prefetch, receive)
        _log.info("bus.consuming", queue=queue, prefetch=prefetch)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                task = asyncio.create_task(self._settle(handler, await inbox.get()))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await self._stop_consuming(channel, amqp_queue, consumer_tag)

    async def parked(self, limit: int = 100) -> list[Message]:
        """Up to ``limit`` parked messages, oldest first, with their original routing key.

        Each is fetched unacknowledged and returned to the parking queue afterwards, so
        looking does not consume.
        """
        connection = self._require_connection()
        found: list[Message] = []
        try:
            channel = await connection.channel(publisher_confirms=False)
        except _AMQP_FAILURES as exc:
            raise BusUnavailable(f"cannot open a channel: {type(exc).__name__}") from exc
        held: list[AbstractIncomingMessage] = []
        try:
            parking = await channel.get_queue(PARKING_QUEUE, ensure=True)
            while len(held) < limit:
                incoming = await parking.get(no_ack=False, fail=False)
                if incoming is None:
                    break
                held.append(incoming)
                found.append(_as_message(incoming, routing_key=_original_routing_key(incoming)))
        except _AMQP_FAILURES as exc:
            raise BusUnavailable(f"cannot read {PARKING_QUEUE}: {type(exc).__name__}") from exc
        finally:
            await self._release(channel, held)
        return found

    async def replay_parked(self, message_id: str | None = None) -> int:
        """Publish parked messages (all, or the one with ``message_id``) to their original
        routing key, each acknowledged from parking only after the broker confirmed it.
        """
        connection = self._require_connection()
        try:
            channel = await connection.channel(publisher_confirms=False)
        except _AMQP_FAILURES as exc:
            raise BusUnavailable(f"cannot open a channel: {type(exc).__name__}") from exc
        held: list[AbstractIncomingMessage] = []
        moved = 0
        try:
            parking = await channel.get_queue(PARKING_QUEUE, ensure=True)
            replayed: set[tuple[str | None, bytes]] = set()
            while (incoming := await parking.get(no_ack=False, fail=False)) is not None:
                identity = (incoming.message_id, incoming.body)
                if identity in replayed:
                    # Replayed by this call and already parked again: it waits for the
                    # next replay rather than going round in a loop with its consumer.
                    held.append(incoming)
                    break
                if message_id is not None and incoming.message_id != message_id:
                    held.append(incoming)
                    continue
                await self._publish(_original_routing_key(incoming), self._amqp_message(
                    body=incoming.body, message_id=incoming.message_id or "",
                    correlation_id=incoming.correlation_id,
                    headers={key: value for key, value in _text_headers(incoming.headers).items()
                             if key not in _DEATH_HEADERS}))
                replayed.add(identity)
                await incoming.ack()
                moved += 1
        except _AMQP_FAILURES as exc:
            raise BusUnavailable(f"cannot replay {PARKING_QUEUE}: {type(exc).__name__}") from exc
        finally:
            await self._release(channel, held)
        _log.info("bus.replayed", count=moved)
        return moved

    # -- internals ---------------------------------------------------------------------

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise BusUnavailable("the bus is not open")
        return self._connection

    async def _subscribe(
        self, queue: str, prefetch: int,
        receive: Callable[[AbstractIncomingMessage], Awaitable[None]],
    ) -> tuple[AbstractChannel, AbstractQueue, str]:
        """Register the consumer, waiting out a connection that drops meanwhile.

        :class:`BusUnavailable` only when the broker refuses for good (no such queue,
        no access): retrying would not help.
        """
        while True:
            connection = self._require_connection()
            try:
                channel = await connection.channel(publisher_confirms=False)
                try:
                    await channel.set_qos(prefetch_count=prefetch)
                    amqp_queue = await channel.get_queue(queue, ensure=True)
                    return channel, amqp_queue, await amqp_queue.consume(receive)
                except BaseException:
                    with contextlib.suppress(*_AMQP_FAILURES):
                        async with asyncio.timeout(5):
                            await channel.close()
                    raise
            except aiormq.exceptions.ChannelClosed as exc:
                raise BusUnavailable(f"cannot consume {queue}: {exc}") from exc
            except _AMQP_FAILURES as exc:
                _log.warning("bus.consume_retry", queue=queue, error_type=type(exc).__name__)
                await asyncio.sleep(self._reconnect_interval)

    async def _declare(self, channel: AbstractChannel) -> AbstractExchange:
        exchange = await channel.declare_exchange(EXCHANGE, ExchangeType.TOPIC, durable=True)
        dead = await channel.declare_exchange(DEAD_EXCHANGE, ExchangeType.FANOUT, durable=True)
        parking = await channel.declare_queue(
            PARKING_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        await parking.bind(dead, "")
        for spec in QUEUES:
            queue = await channel.declare_queue(
                spec.name, durable=True, arguments=self._queue_arguments(spec))
            for binding in spec.bindings:
                await queue.bind(exchange, binding)
        return exchange

    def _queue_arguments(self, spec: QueueSpec) -> dict[str, Any]:
        arguments: dict[str, Any] = {"x-dead-letter-exchange": DEAD_EXCHANGE}
        if spec.quorum:
            arguments |= {
                "x-queue-type": "quorum",
                # The broker counts redeliveries: limit - 1 of them after the first.
                "x-delivery-limit": self._delivery_limit - 1,
                # A dead-lettered message leaves the queue only once the parking queue
                # confirmed it (RabbitMQ >= 3.10); this strategy needs reject-publish.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        return arguments

    @staticmethod
    def _amqp_message(*, body: bytes, message_id: str, correlation_id: str | None,
                      headers: Mapping[str, str]) -> aio_pika.Message:
        return aio_pika.Message(
            body, content_type="application/json", delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id, correlation_id=correlation_id, headers=dict(headers))

    async def _publish(self, routing_key: str, amqp_message: aio_pika.Message) -> None:
        channel, exchange = self._channel, self._exchange
        if channel is None or exchange is None:
            raise BusUnavailable("the bus is not open")
        try:
            async with asyncio.timeout(self._publish_timeout):
                # While the robust connection reconnects, wait for it (bounded by the
                # timeout): a broker blip should delay a publish, not fail it.
                await channel.ready()
                await exchange.publish(amqp_message, routing_key, mandatory=_bound(routing_key))
        except _AMQP_FAILURES as exc:
            _log.warning("bus.publish_failed", routing_key=routing_key,
                         message_id=amqp_message.message_id, error_type=type(exc).__name__)
            raise BusUnavailable(
                f"RabbitMQ did not take {routing_key}: {type(exc).__name__}") from exc

    @staticmethod
    async def _settle(handler: Handler, incoming: AbstractIncomingMessage) -> None:
        try:
            incoming.channel  # noqa: B018 — raises once the delivering channel is gone
        except aio_pika.exceptions.ChannelInvalidStateError:
            return  # delivered on a lost channel: the broker redelivers it
        outcome = await deliver(handler, _as_message(incoming))
        try:
            if outcome is Outcome.ACK:
                await incoming.ack()
            elif outcome is Outcome.REJECT:
                await incoming.reject(requeue=False)
            else:
                await incoming.nack(requeue=True)
        except _AMQP_FAILURES as exc:
            # The channel went away after the handler ran: the broker redelivers the
            # message, and handlers are idempotent on the message id.
            _log.warning("bus.settle_failed", message_id=incoming.message_id,
                         outcome=outcome.value, error_type=type(exc).__name__)

    @staticmethod
    async def _stop_consuming(channel: AbstractChannel, queue: AbstractQueue,
                              consumer_tag: str) -> None:
        # Runs while being cancelled: bounded, and never raising, so the cancellation
        # itself propagates. Closing the channel returns unacked deliveries.
        with contextlib.suppress(*_AMQP_FAILURES):
            async with asyncio.timeout(5):
                await queue.cancel(consumer_tag)
        with contextlib.suppress(*_AMQP_FAILURES):
            async with asyncio.timeout(5):
                await channel.close()

    @staticmethod
    async def _release(channel: AbstractChannel, held: list[AbstractIncomingMessage]) -> None:
        """Return held deliveries to their queue in order, then close the channel."""
        with contextlib.suppress(*_AMQP_FAILURES):
            for incoming in held:
                await incoming.nack(requeue=True)
        with contextlib.suppress(*_AMQP_FAILURES):
            async with asyncio.timeout(5):
                await channel.close()
