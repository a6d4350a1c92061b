"""The bare baselines, each run as a process of its own: ``python -m bench._baseline …``.

``intake``: an aiohttp app with one handler that parses the request JSON and publishes
it, re-serialised, through the same bus adapter Hotline uses (``RabbitBus``: persistent,
mandatory, publisher confirm; ``SqliteBus``: group commit, ``synchronous=FULL``), then
answers 202. No validation, no receipt, no metrics, no logging: what the hardware and
the broker allow for "take JSON, make it durable, say so".

``smtp``: an aiosmtpd server whose DATA handler publishes the raw mail through the same
bus adapter and answers 250 once it is durable; no parsing, no sealing.

``drain``: consumes a queue of the embedded bus and acknowledges every message without
doing anything, through the same ``SqliteBus.consume`` (claim, settle) the router uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
from pathlib import Path

from aiohttp import web

from hotline.ports import Bus, Message

__all__ = ["main"]


def _bus(url: str) -> Bus:
    if url.startswith("sqlite:///"):
        from hotline.adapters.sqlite_bus import SqliteBus

        return SqliteBus(Path(url.removeprefix("sqlite:///")))
    from hotline.adapters.rabbit_bus import RabbitBus

    return RabbitBus(url)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("Ready.", flush=True)
    await stop.wait()


async def _intake(bus_url: str, host: str, port: int) -> None:
    bus = _bus(bus_url)
    await bus.open()

    async def post(request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        submission_id = secrets.token_urlsafe(18)
        await bus.publish(Message(routing_key="submission.report", message_id=submission_id,
                                  body=json.dumps(doc).encode(),
                                  correlation_id=submission_id))
        return web.json_response({"submission_id": submission_id}, status=202)

    app = web.Application(client_max_size=2**24)
    app.add_routes([web.post("/api/v1/reports", post)])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await _until_signalled()
    finally:
        await runner.cleanup()
        await bus.close()


async def _smtp(bus_url: str, host: str, port: int) -> None:
    from aiosmtpd.smtp import SMTP, Envelope, Session

    bus = _bus(bus_url)
    await bus.open()

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session,
                              envelope: Envelope) -> str:
            submission_id = secrets.token_urlsafe(18)
            await bus.publish(Message(routing_key="submission.complaint",
                                      message_id=submission_id,
                                      body=envelope.original_content or b"",
                                      correlation_id=submission_id))
            return "250 2.0.0 Queued"

    handler = Handler()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="baseline.localhost"), host, port)
    try:
        await _until_signalled()
    finally:
        server.close()
        await server.wait_closed()
        await bus.close()


async def _drain(bus_url: str, queue: str) -> None:
    bus = _bus(bus_url)
    await bus.open()

    async def nothing(_message: Message) -> None:
        return None

    consumer = asyncio.create_task(bus.consume(queue, nothing, prefetch=32))
    try:
        await _until_signalled()
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._baseline")
    sub = parser.add_subparsers(dest="kind", required=True)
    intake = sub.add_parser("intake")
    intake.add_argument("--bus", required=True)
    intake.add_argument("--host", default="127.0.0.1")
    intake.add_argument("--port", type=int, required=True)
    smtp = sub.add_parser("smtp")
    smtp.add_argument("--bus", required=True)
    smtp.add_argument("--host", default="127.0.0.1")
    smtp.add_argument("--port", type=int, required=True)
    drain = sub.add_parser("drain")
    drain.add_argument("--bus", required=True)
    drain.add_argument("--queue", required=True)
    args = parser.parse_args(argv)
    if args.kind == "intake":
        asyncio.run(_intake(args.bus, args.host, args.port))
    elif args.kind == "smtp":
        asyncio.run(_smtp(args.bus, args.host, args.port))
    else:
        asyncio.run(_drain(args.bus, args.queue))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
