"""Complaint mail over RabbitMQ: the mail.outbound queue is declared and consumed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from hotline.adapters.rabbit_bus import RabbitBus
from hotline.topology import MAIL_OUTBOUND_QUEUE, ROUTER_QUEUE
from tests.support.mailflow import eventually, mail_flow

pytestmark = pytest.mark.integration

MAIL = (b"From: Jane Doe <jane.doe@example.com>\r\nTo: overseas@hotline.localhost\r\n"
        b"Subject: Late delivery\r\nMessage-ID: <rabbit-1@example.com>\r\n\r\n"
        b"My order has been late for three weeks and nobody answers my messages.\r\n")


async def test_mail_becomes_a_case_and_an_acknowledgement_over_rabbitmq(
        tmp_path: Path, amqp_url: str) -> None:
    """Ingest → RabbitMQ → router → mail.outbound → outbox, each mail once."""
    bus = RabbitBus(amqp_url, delivery_limit=3)
    await bus.open()
    try:
        async with mail_flow(tmp_path, bus=bus) as flow:
            submission_id = await flow.deliver(MAIL, to="overseas@hotline.localhost")
            await flow.deliver(MAIL, to="overseas@hotline.localhost")  # re-read after a crash
            tasks = [asyncio.create_task(bus.consume(ROUTER_QUEUE, flow.router.handle)),
                     asyncio.create_task(bus.consume(MAIL_OUTBOUND_QUEUE,
                                                     flow.outbound.handle))]

            async def acknowledged() -> bool:
                return len(flow.sent()) >= 1

            try:
                await eventually(acknowledged, 15)
                await asyncio.sleep(0.5)  # a duplicate would show up by now
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            case = await flow.case(submission_id)
            assert "OVERSEAS" == case.unit
            assert 1 == await flow.env.store.cases.count()
            [ack] = flow.sent()
            assert f"[{case.reference}]" in ack["Subject"]
    finally:
        await bus.close()
