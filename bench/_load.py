"""Load generation: a lean HTTP/1.1 keep-alive client, closed-loop and open-loop drivers.

The client writes pre-built requests and reads ``Content-Length`` responses on raw
asyncio streams: on a 2-core machine the load generator shares the CPU with the server,
so it must cost much less per request than the server does (aiohttp's client costs
about as much as the server it measures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Connection", "LoadResult", "SmtpConnection", "build_request", "closed_loop",
           "open_loop", "percentiles"]


def build_request(method: str, path: str, body: bytes = b"", *, host: str = "127.0.0.1",
                  headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection; :meth:`request` returns (status, body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(raw)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                    break
            body = await self._reader.readexactly(length) if length else b""
        except BaseException:
            self.close()
            raise
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader, self._writer = None, None


class SmtpConnection:
    """One SMTP session; :meth:`request` sends one mail (MAIL, RCPT, DATA) and returns
    the final reply code. ``<<ID>>`` in the mail is replaced by a unique token, so each
    send is a distinct mail (its own Message-ID)."""

    sender = b"customer@example.net"
    recipient = b"complaints-gd@hotline.localhost"
    _counter = 0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _reply(self) -> tuple[int, bytes]:
        assert self._reader is not None
        lines = []
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionResetError("SMTP server closed the connection")
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"".join(lines)

    async def _command(self, line: bytes, expect: int) -> tuple[int, bytes]:
        assert self._writer is not None
        self._writer.write(line + b"\r\n")
        code, text = await self._reply()
        if code != expect:
            raise _SmtpRefused(code, text)
        return code, text

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            await self._reply()
            await self._command(b"EHLO bench.localhost", 250)
        SmtpConnection._counter += 1
        mail = raw.replace(b"<<ID>>", f"{SmtpConnection._counter}.{time.time_ns()}".encode())
        try:
            await self._command(b"MAIL FROM:<" + self.sender + b">", 250)
            await self._command(b"RCPT TO:<" + self.recipient + b">", 250)
            await self._command(b"DATA", 354)
            assert self._writer is not None
            self._writer.write(mail + b"\r\n.\r\n")
            return await self._reply()
        except _SmtpRefused as refused:
            with contextlib.suppress(OSError, ConnectionError, _SmtpRefused):
                await self._command(b"RSET", 250)
            return refused.code, refused.text
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader, self._writer = None, None


class _SmtpRefused(Exception):
    def __init__(self, code: int, text: bytes) -> None:
        super().__init__(code)
        self.code, self.text = code, text


Connect = Callable[[str, int], "Connection | SmtpConnection"]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max in the unit of ``values`` (nearest rank); None when empty."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": ordered[-1]}


@dataclass
class LoadResult:
    """What one load run saw: accepted items, errors, latencies (s) and wall time."""

    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    # (perf_counter at send, response body) of accepted requests, for e2e tracking.
    accepted: list[tuple[float, bytes]] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def closed_loop(host: str, port: int, requests: Sequence[bytes], *, concurrency: int,
                      max_items: int, max_seconds: float, ok_status: int = 202,
                      keep_bodies: bool = False, connect: Connect = Connection) -> LoadResult:
    """``concurrency`` clients each sending the next request as soon as the last answered."""
    result = LoadResult()
    issued = 0
    start = time.perf_counter()
    deadline = start + max_seconds

    async def client() -> None:
        nonlocal issued
        conn = connect(host, port)
        try:
            while issued < max_items and time.perf_counter() < deadline:
                raw = requests[issued % len(requests)]
                issued += 1
                sent = time.perf_counter()
                try:
                    status, body = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    result.error(type(exc).__name__)
                    await asyncio.sleep(0.01)
                    continue
                if status == ok_status:
                    result.ok += 1
                    result.latencies.append(time.perf_counter() - sent)
                    if keep_bodies:
                        result.accepted.append((sent, body))
                else:
                    result.error(f"http_{status}")
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


async def open_loop(host: str, port: int, requests: Sequence[bytes], *, rate: float,
                    seconds: float, max_items: int, ok_status: int = 202,
                    on_accepted: Callable[[float, bytes], Any] | None = None,
                    max_connections: int = 256, seed: int = 7,
                    connect: Connect = Connection) -> LoadResult:
    """Poisson arrivals at ``rate``/s for ``seconds``: the sender never waits for answers.

    Latency counts from the scheduled arrival, so time spent waiting for a free
    connection (when the server falls behind) is counted, not hidden.
    """
    result = LoadResult()
    idle: list[Connection | SmtpConnection] = []
    opened = 0
    slots = asyncio.Semaphore(max_connections)
    tasks: set[asyncio.Task[None]] = set()
    rng = random.Random(seed)  # noqa: S311 — arrival times, not secrets; seeded to repeat

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal opened
        async with slots:
            if idle:
                conn = idle.pop()
            else:
                conn = connect(host, port)
                opened += 1
            try:
                status, body = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.error(type(exc).__name__)
                return
            idle.append(conn)
        if status == ok_status:
            result.ok += 1
            result.latencies.append(time.perf_counter() - scheduled)
            if on_accepted is not None:
                on_accepted(scheduled, body)
        else:
            result.error(f"http_{status}")

    start = time.perf_counter()
    arrival = start
    index = 0
    while index < max_items:
        arrival += rng.expovariate(rate)
        if arrival - start > seconds:
            break
        delay = arrival - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(requests[index % len(requests)], arrival))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    if tasks:
        await asyncio.wait(set(tasks), timeout=60)
    result.seconds = time.perf_counter() - start
    for conn in idle:
        conn.close()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def submission_id(body: bytes) -> str | None:
    """The ``submission_id`` of a 202 answer, or None."""
    try:
        value = json.loads(body).get("submission_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
