"""The scenarios of issue 7: intake, router, e2e and mail, each against its baseline."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from bench._infra import (
    BenchError,
    Dovecot,
    RabbitNode,
    Service,
    dovecot_binary,
    free_port,
    hotline_env,
    run_hotline,
)
from bench._load import (
    Connection,
    LoadResult,
    SmtpConnection,
    build_request,
    closed_loop,
    open_loop,
    submission_id,
)
from bench._report import MB, Round, row, target
from hotline.clock import utcnow
from hotline.contract import Submission
from hotline.crypto import b64d, b64e, seal
from hotline.topology import ROUTER_QUEUE

__all__ = ["SCENARIOS", "Plan"]

HOST = "127.0.0.1"

# A realistic report: ~1.3 KB of mixed Chinese/English text, sealed to ~2 KB of JSON.
_DESCRIPTION = ("某省公司采购部负责人在2025年第三季度的设备招标中，多次向特定供应商透露标底，"
                "并收受现金及购物卡。 The same supplier won four tenders in a row; invoices "
                "were split below the approval threshold. ") * 6


@dataclass(frozen=True)
class Plan:
    """How long and how hard each scenario drives load (full or ``--short``)."""

    short: bool
    rounds: int
    round_seconds: float
    round_items: int
    concurrency: int
    router_batch: int
    e2e_seconds: float
    soak_seconds: float = 0.0

    @classmethod
    def make(cls, *, short: bool, soak_seconds: float = 0.0) -> Plan:
        if short:
            return cls(short=True, rounds=2, round_seconds=0.75, round_items=2_000,
                       concurrency=16, router_batch=200, e2e_seconds=1.5,
                       soak_seconds=soak_seconds)
        return cls(short=False, rounds=3, round_seconds=8.0, round_items=30_000,
                   concurrency=32, router_batch=5_000, e2e_seconds=10.0,
                   soak_seconds=soak_seconds)


def _payload(index: int, size: int | None = None) -> bytes:
    # A distinct title per report: equal content would be triaged as a repeat.
    doc: dict[str, Any] = {"title": f"benchmark report {index} {secrets.token_hex(4)}",
                           "description": _DESCRIPTION if size is None else "x" * size,
                           "subjects": [{"name": "王某", "unit": "GD", "position": "采购部经理"}]}
    return json.dumps(doc, ensure_ascii=False).encode()


def _envelope_requests(key_doc: dict[str, Any], count: int, *,
                       size: int | None = None) -> list[bytes]:
    """``count`` sealed report POSTs (sealed here, before any timing starts)."""
    public = X25519PublicKey.from_public_bytes(b64d(key_doc["public_key"]))
    requests = []
    for i in range(count):
        sealed = seal(_payload(i, size), public, kid=key_doc["kid"], purpose="report")
        body = json.dumps({"kid": sealed.kid, "enc": b64e(sealed.enc),
                           "ciphertext": b64e(sealed.ciphertext), "category": "corruption",
                           "unit": "GD", "locale": "zh-CN"}).encode()
        requests.append(build_request("POST", "/api/v1/reports", body))
    return requests


async def _get_json(port: int, path: str, token: str | None = None) -> Any:
    conn = Connection(HOST, port)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, body = await conn.request(build_request("GET", path, headers=headers))
    finally:
        conn.close()
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
    return json.loads(body)


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


@contextlib.contextmanager
def _workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"hotline-bench-{prefix}-") as tmp:
        # A private RabbitMQ runs as user rabbitmq and must reach its directory in here.
        Path(tmp).chmod(0o755)
        yield Path(tmp)


class _Stack:
    """Everything started so far, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []

    def service(self, service: Service) -> Service:
        self._stops.append(service.stop)
        return service.start()

    def dovecot(self, server: Dovecot) -> Dovecot:
        self._stops.append(server.stop)
        return server.start()

    def rabbit(self, node: RabbitNode) -> RabbitNode:
        self._stops.append(node.stop)
        return node.start()

    def close(self) -> None:
        while self._stops:
            with contextlib.suppress(Exception):
                self._stops.pop()()


def _rabbit_available() -> bool:
    import shutil

    return bool(shutil.which("rabbitmq-server")
                or shutil.which("rabbitmq-server", path="/usr/sbin:/usr/lib/rabbitmq/bin"))


# -- intake -----------------------------------------------------------------------------

async def _clear_queue(bus_url: str) -> None:
    """Empty the router queue between rounds, so every round starts from the same state."""
    if bus_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(bus_url.removeprefix("sqlite:///"),
                                                timeout=30)) as db:
            db.execute("DELETE FROM bus_messages")
            db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import aio_pika

    connection = await aio_pika.connect(bus_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(ROUTER_QUEUE, passive=True)
        await queue.purge()
    finally:
        await connection.close()


async def _measure(service: Service, node: RabbitNode | None,
                   load: Callable[[], Awaitable[LoadResult]]) -> Round:
    cpu0 = service.cpu_seconds()
    broker0 = node.cpu_seconds() if node is not None else None
    result = await load()
    cpu = service.cpu_seconds() - cpu0
    broker = None if node is None or broker0 is None else node.cpu_seconds() - broker0
    return Round(result, cpu, service.peak_rss(), broker)


async def _intake_variant(plan: Plan, bus: str, tmp: Path, stack: _Stack,
                          node: RabbitNode | None) -> tuple[list[dict[str, Any]], list[str]]:
    data = tmp / f"data-{bus}"
    bus_url = node.url if node is not None else f"sqlite:///{tmp / 'queue.sqlite3'}"
    env = hotline_env(data, HOTLINE_BUS_URL=bus_url)
    run_hotline(["keys", "rotate"], env)
    port, base_port = free_port(), free_port()
    subject = stack.service(Service(
        f"hotline intake ({bus})", _python("-m", "hotline.cli", "intake", "--port", str(port)),
        env, tmp / f"intake-{bus}.log"))
    baseline = stack.service(Service(
        f"baseline intake ({bus})",
        _python("-m", "bench._baseline", "intake", "--bus", bus_url, "--port", str(base_port)),
        env, tmp / f"baseline-{bus}.log"))
    requests = _envelope_requests(await _get_json(port, "/api/v1/intake/key"), 64)
    systems = [("A", subject, port), ("B", baseline, base_port)]
    for _, _, p in systems:  # warm-up: connections, caches, the first pages of the DB
        await closed_loop(HOST, p, requests, concurrency=8, max_items=200, max_seconds=5)
    rounds: dict[str, list[Round]] = {"A": [], "B": []}
    for _ in range(plan.rounds):
        for name, service, p in systems:
            await _clear_queue(bus_url)
            rounds[name].append(await _measure(service, node, lambda p=p: closed_loop(  # type: ignore[misc]
                HOST, p, requests, concurrency=plan.concurrency, max_items=plan.round_items,
                max_seconds=plan.round_seconds)))
    base_row = row(f"baseline aiohttp+{bus} (max)", rounds["B"], kind="baseline")
    subj_row = row(f"intake {bus} (max)", rounds["A"], baseline=base_row)
    # Latency at half of the product's maximum, the same absolute rate for both.
    rate = max(1.0, subj_row["throughput_per_s"] / 2)
    half: dict[str, list[Round]] = {"A": [], "B": []}
    for _ in range(plan.rounds):
        for name, service, p in systems:
            await _clear_queue(bus_url)
            half[name].append(await _measure(service, node, lambda p=p: open_loop(  # type: ignore[misc]
                HOST, p, requests, rate=rate, seconds=plan.round_seconds,
                max_items=plan.round_items)))
    base_half = row(f"baseline {bus} @ {rate:.0f}/s", half["B"], kind="baseline",
                    offered_rate_per_s=round(rate, 1))
    subj_half = row(f"intake {bus} @ 50% = {rate:.0f}/s", half["A"], baseline=base_half,
                    kind="half_rate", offered_rate_per_s=round(rate, 1))
    subject.stop()
    baseline.stop()
    return [subj_row, base_row, subj_half, base_half], []


async def scenario_intake(plan: Plan) -> dict[str, Any]:
    """Sealed reports to ``hotline intake`` vs a bare aiohttp publisher, on both buses."""
    doc: dict[str, Any] = {"rows": [], "notes": [], "targets": [], "memory": {}}
    with _workdir("intake") as tmp:
        stack = _Stack()
        try:
            rows, _ = await _intake_variant(plan, "sqlite", tmp, stack, None)
            doc["rows"] += rows
            if _rabbit_available():
                node = stack.rabbit(RabbitNode(tmp / "rabbitmq"))
                rows, _ = await _intake_variant(plan, "rabbitmq", tmp, stack, node)
                doc["rows"] += rows
            else:
                doc["notes"].append("RabbitMQ variant skipped: rabbitmq-server not installed")
        finally:
            stack.close()
    for r in doc["rows"]:
        if r["kind"] == "subject":
            doc["targets"].append(target(f"{r['name']}: >= 70 % of baseline throughput",
                                         r["ratio_to_baseline"], 0.70, at_least=True, unit="x"))
        if r["kind"] == "half_rate":
            doc["targets"].append(target(f"{r['name']}: p99 <= 50 ms", r["latency_ms"]["p99"],
                                         50, at_least=False, unit="ms"))
    return doc


# -- router -----------------------------------------------------------------------------

_STAGING = "bench.staging"
_BASELINE_QUEUE = "bench.baseline"


def _stage(db_path: Path, key: tuple[str, bytes], count: int) -> None:
    """Put ``count`` fresh sealed submissions in a queue no consumer reads (untimed)."""
    kid, public_raw = key
    public = X25519PublicKey.from_public_bytes(public_raw)
    rows = []
    for i in range(count):
        submission = Submission(
            id=secrets.token_urlsafe(18), occurred_at=utcnow(),
            correlation_id=secrets.token_urlsafe(18), kind="report", channel="web",
            sealed=seal(_payload(i), public, kid=kid, purpose="report"), sealed_by="client",
            category="corruption", unit="GD", locale="zh-CN",
            receipt_hash=secrets.token_hex(32), reply_key=secrets.token_bytes(32))
        rows.append((_STAGING, submission.routing_key, submission.id,
                     submission.correlation_id, json.dumps({"schema": "hotline.submission/1"}),
                     submission.to_bytes()))
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as db:
        db.executemany("INSERT INTO bus_messages (queue, routing_key, message_id, correlation_id,"
                       " headers, body) VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.commit()


def _count(db: sqlite3.Connection, sql: str, *params: Any) -> int:
    return int(db.execute(sql, params).fetchone()[0])


class _Processes:
    """Several server processes measured as one system (CPU summed, peak RSS the largest)."""

    def __init__(self, *services: Service) -> None:
        self.services = services

    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds() for s in self.services)

    def reset_peak(self) -> None:
        for service in self.services:
            service.reset_peak()

    def peak_rss(self) -> int:
        return max(s.peak_rss() for s in self.services)


async def _release_and_drain(db_path: Path, queue: str, count: int,
                             service: Service | _Processes,
                             max_seconds: float) -> Round:
    """Move the staged messages to ``queue`` at once; time the consumer emptying it."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as db:
        parked0 = _count(db, "SELECT count(*) FROM bus_parked")
        cases0 = _count(db, "SELECT count(*) FROM cases")
        service.reset_peak()
        cpu0 = service.cpu_seconds()
        db.execute("UPDATE bus_messages SET queue = ? WHERE queue = ?", (queue, _STAGING))
        db.commit()
        released = time.perf_counter()
        first = end = None
        remaining = count
        while time.perf_counter() - released < max_seconds:
            remaining = _count(db, "SELECT count(*) FROM bus_messages WHERE queue = ?", queue)
            now = time.perf_counter()
            if first is None and remaining < count:
                first = now  # the consumer's poll interval is not the consumer's speed
            if remaining == 0:
                end = now
                break
            await asyncio.sleep(0.005)
        cpu = service.cpu_seconds() - cpu0
        parked = _count(db, "SELECT count(*) FROM bus_parked") - parked0
        cases = _count(db, "SELECT count(*) FROM cases") - cases0
        if remaining:
            db.execute("DELETE FROM bus_messages WHERE queue = ?", (queue,))
            db.commit()
    done = count - remaining
    # A drain cut short by the time bound is not an error: the rest is just not counted.
    result = LoadResult(ok=done - parked, errors=parked,
                        seconds=(end or time.perf_counter()) - (first or released))
    if queue == ROUTER_QUEUE and not remaining and cases != done - parked:
        result.error("case_count_mismatch")
    return Round(result, cpu, service.peak_rss())


async def scenario_router(plan: Plan) -> dict[str, Any]:
    """Cases opened per second from a pre-filled embedded queue vs consume + ack only."""
    doc: dict[str, Any] = {"rows": [], "notes": [], "targets": [], "memory": {}}
    with _workdir("router") as tmp:
        stack = _Stack()
        try:
            data = tmp / "data"
            env = hotline_env(data)  # store and queue in one SQLite file, as `hotline dev`
            run_hotline(["keys", "rotate"], env)
            db_path = data / "hotline.sqlite3"
            bus_url = f"sqlite:///{db_path}"
            router = stack.service(Service(
                "hotline router", _python("-m", "hotline.cli", "router", "--port",
                                          str(free_port())), env, tmp / "router.log"))
            drain = stack.service(Service(
                "baseline drain", _python("-m", "bench._baseline", "drain", "--bus", bus_url,
                                          "--queue", _BASELINE_QUEUE), env, tmp / "drain.log"))
            with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as db:
                kid, public = db.execute(
                    "SELECT kid, public_key FROM keys WHERE active = 1").fetchone()
            key = (str(kid), bytes(public))
            systems = [("A", router, ROUTER_QUEUE), ("B", drain, _BASELINE_QUEUE)]
            warm = 20 if plan.short else 100
            for _, warming, queue in systems:  # warm-up
                _stage(db_path, key, warm)
                await _release_and_drain(db_path, queue, warm, warming, 30)
            # A second router on the same file, started for its rounds only: what one
            # machine takes with a router process per core (README: any number of each
            # service may run against the same store and bus).
            second = Service("hotline router #2", _python(
                "-m", "hotline.cli", "router", "--port", str(free_port())), env,
                tmp / "router2.log")
            pair = _Processes(router, second)
            rounds: dict[str, list[Round]] = {"A": [], "A2": [], "B": []}
            order: list[tuple[str, Service | _Processes, str]] = [
                systems[0], ("A2", pair, ROUTER_QUEUE), systems[1]]
            for _ in range(plan.rounds):
                for name, system, queue in order:
                    if name == "A2":
                        stack.service(second)
                    _stage(db_path, key, plan.router_batch)
                    rounds[name].append(await _release_and_drain(
                        db_path, queue, plan.router_batch, system,
                        plan.round_seconds * (2 if plan.short else 4)))
                    if name == "A2":
                        second.stop()
            base_row = row("baseline consume+ack (SqliteBus)", rounds["B"], kind="baseline",
                           with_latency=False)
            doc["rows"] = [row("router sqlite (cases opened)", rounds["A"], baseline=base_row,
                               with_latency=False),
                           row("router sqlite, 2 processes (cases opened)", rounds["A2"],
                               baseline=base_row, with_latency=False, processes=2),
                           base_row]
        finally:
            stack.close()
    doc["notes"].append("router rows are drains of a pre-filled queue: throughput is what "
                        "counts, per-item latency is not measured (it would be queueing time)")
    doc["notes"].append("the 2-process row runs a second `hotline router` on the same file; "
                        "its CPU per case is the sum over both processes")
    doc["targets"].append(target("router >= 1000 cases/s on SQLite",
                                 max(doc["rows"][0]["throughput_per_s"],
                                     doc["rows"][1]["throughput_per_s"]), 1000, at_least=True,
                                 unit="cases/s"))
    return doc


# -- e2e --------------------------------------------------------------------------------

async def _closed_e2e(visibility: _Visibility, public: int, requests: list[bytes],
                     plan: Plan) -> LoadResult:
    """``plan.concurrency`` clients, each posting, then waiting for its case to appear."""
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + plan.e2e_seconds
    issued = 0

    async def client() -> None:
        nonlocal issued
        conn = Connection(HOST, public)
        try:
            while time.perf_counter() < deadline and issued < plan.round_items:
                raw = requests[issued % len(requests)]
                issued += 1
                sent = time.perf_counter()
                try:
                    status, body = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    result.error(type(exc).__name__)
                    await asyncio.sleep(0.01)
                    continue
                if status != 202:
                    result.error(f"http_{status}")
                    continue
                seen = visibility.expect(sent, body, waiter=True)
                try:
                    async with asyncio.timeout(30):
                        latency = await seen
                except TimeoutError:
                    result.error("not_visible_in_30s")
                    continue
                result.ok += 1
                result.latencies.append(latency)
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(plan.concurrency)))
    result.seconds = time.perf_counter() - start
    return result


def _epoch(moment: str) -> float:
    """An ISO 8601 time of the API as seconds since the epoch."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


class _Visibility:
    """Polls casework's case list and notes when each awaited case first appears."""

    def __init__(self, port: int, token: str, interval: float = 0.01) -> None:
        self._conn = Connection(HOST, port)
        self._auth = {"Authorization": f"Bearer {token}"}
        self._interval = interval
        self.pending: dict[str, float] = {}  # case id -> scheduled send (perf_counter)
        self._sent_wall: dict[str, float] = {}  # case id -> wall clock when awaited
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self.latencies: list[float] = []
        self.seen_at: list[float] = []
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    def expect(self, scheduled: float, body: bytes, *,
               waiter: bool = False) -> asyncio.Future[float]:
        """Await the case of this 202 answer; the future gets its latency (optional)."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        sid = submission_id(body)
        if sid is None:
            future.set_exception(BenchError("a 202 answer without a submission_id"))
            return future
        self.pending["c_" + sid] = scheduled
        self._sent_wall["c_" + sid] = time.time() - (time.perf_counter() - scheduled)
        if waiter:
            self._waiters["c_" + sid] = future
        return future

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._conn.close()

    def reset(self) -> None:
        self.latencies, self.seen_at = [], []

    async def _page(self, cursor: str | None) -> dict[str, Any]:
        path = "/api/v1/cases?limit=20" + (f"&cursor={cursor}" if cursor else "")
        status, body = await self._conn.request(build_request("GET", path, headers=self._auth))
        if status != 200:
            raise BenchError(f"casework list answered {status}: {body[:200]!r}")
        doc: dict[str, Any] = json.loads(body)
        return doc

    async def _run(self) -> None:
        while True:
            if not self.pending:
                await asyncio.sleep(0.02)
                continue
            # Cases are listed newest first by opened_at, which the router sets before it
            # commits: one opened earlier may commit (and so appear) below cases already
            # seen. So page on until cases opened before the oldest awaited POST.
            oldest = min((self._sent_wall[i] for i in self.pending), default=time.time())
            cursor: str | None = None
            for _ in range(50):
                page = await self._page(cursor)
                self.polls += 1
                now = time.perf_counter()
                older = False
                for item in page["items"]:
                    scheduled = self.pending.pop(item["id"], None)
                    if scheduled is None:
                        older = older or _epoch(item["opened_at"]) < oldest - 0.01
                        continue
                    self._sent_wall.pop(item["id"], None)
                    self.latencies.append(now - scheduled)
                    self.seen_at.append(now)
                    future = self._waiters.pop(item["id"], None)
                    if future is not None and not future.done():
                        future.set_result(now - scheduled)
                cursor = page.get("next")
                if older or not cursor or not self.pending:
                    break
            await asyncio.sleep(self._interval)

    async def wait_all(self, seconds: float) -> int:
        """Wait until nothing is pending (or ``seconds``); the number still missing."""
        deadline = time.perf_counter() + seconds
        while self.pending and time.perf_counter() < deadline:  # noqa: ASYNC110 — polled state
            await asyncio.sleep(0.02)
        missing = len(self.pending)
        self.pending.clear()
        self._sent_wall.clear()
        return missing


async def _officer_token(dev: Service, internal: int) -> str:
    """Create an HQ officer (no second factor needed for that role) and sign it in."""
    password = secrets.token_urlsafe(18)
    completed = await asyncio.to_thread(
        subprocess.run, _python("-m", "hotline.cli", "officer", "add", "bench-reader",
                                "--unit", "HQ", "--role", "officer", "--password-stdin"),
        input=password + "\n", env=dev.env, capture_output=True, text=True, timeout=60,
        check=False)
    if completed.returncode != 0:
        raise BenchError(f"hotline officer add failed: {completed.stdout}{completed.stderr}")
    conn = Connection(HOST, internal)
    try:
        status, body = await conn.request(build_request(
            "POST", "/api/v1/auth/login",
            json.dumps({"username": "bench-reader", "password": password}).encode()))
    finally:
        conn.close()
    if status != 200:
        raise BenchError(f"casework login answered {status}: {body[:200]!r}")
    return str(json.loads(body)["token"])


async def _rss_sampler(service: Service, samples: list[tuple[float, int]],
                       interval: float) -> None:
    start = time.perf_counter()
    while True:
        samples.append((time.perf_counter() - start, service.rss()))
        await asyncio.sleep(interval)


async def _open_phase(dev: Service, visibility: _Visibility, public: int, requests: list[bytes],
                      rate: float, seconds: float, items: int,
                      rss: list[tuple[float, int]] | None = None,
                      rss_interval: float = 1.0) -> Round:
    visibility.reset()
    cpu0 = dev.cpu_seconds()
    sampler = (asyncio.create_task(_rss_sampler(dev, rss, rss_interval))
               if rss is not None else None)
    try:
        result = await open_loop(HOST, public, requests, rate=rate, seconds=seconds,
                                 max_items=items, on_accepted=visibility.expect)
        missing = await visibility.wait_all(30)
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    cpu = dev.cpu_seconds() - cpu0
    result.ok -= missing
    for _ in range(missing):
        result.error("not_visible_in_30s")
    return Round(result, cpu, dev.peak_rss(), latencies=visibility.latencies)


def _growth(samples: list[tuple[float, int]], after: float) -> dict[str, Any]:
    later = [rss for t, rss in samples if t >= after]
    if len(later) < 2:
        return {"from_mb": None, "to_mb": None, "growth_pct": None}
    first, last = later[0], statistics.median(later[-3:])
    return {"from_s": after, "from_mb": round(first / MB, 1), "to_mb": round(last / MB, 1),
            "max_mb": round(max(later) / MB, 1),
            "growth_pct": round((last - first) / first * 100, 2)}


async def scenario_e2e(plan: Plan) -> dict[str, Any]:
    """POST to case visible in casework's API on ``hotline dev``, at 10/50/90 % of max."""
    doc: dict[str, Any] = {"rows": [], "notes": [], "targets": [], "memory": {}}
    with _workdir("e2e") as tmp:
        stack = _Stack()
        public, internal = free_port(), free_port()
        env = hotline_env(tmp / "data", HOTLINE_MAX_BODY_BYTES=str(32 * MB))
        dev = stack.service(Service("hotline dev", _python(
            "-m", "hotline.cli", "dev", "--public-port", str(public), "--internal-port",
            str(internal), "--smtp-port", str(free_port())), env, tmp / "dev.log"))
        visibility: _Visibility | None = None
        try:
            await asyncio.sleep(1.0 if plan.short else 3.0)
            doc["memory"]["idle_rss_mb"] = round(dev.rss() / MB, 1)
            token = await _officer_token(dev, internal)
            key_doc = await _get_json(public, "/api/v1/intake/key")
            requests = _envelope_requests(key_doc, 64 if plan.short else 1024)
            visibility = _Visibility(internal, token)
            visibility.start()
            # Maximum end-to-end rate: a closed loop in which each client posts its next
            # report only once its last one is visible as a case (no backlog builds up).
            cpu0 = dev.cpu_seconds()
            burst = await _closed_e2e(visibility, public, requests, plan)
            burst_cpu = dev.cpu_seconds() - cpu0
            max_rate = burst.ok / burst.seconds if burst.seconds > 0 else 0.0
            if not max_rate:
                raise BenchError("no case became visible during the maximum-rate run")
            doc["max_rate_per_s"] = round(max_rate, 1)
            doc["rows"].append(row(f"e2e max (closed loop, {plan.concurrency} clients)",
                                   [Round(burst, burst_cpu, dev.peak_rss())], kind="max_rate"))
            idle_after = None
            for fraction in (0.1, 0.5, 0.9):
                rate = max_rate * fraction
                samples: list[tuple[float, int]] = []
                measured = await _open_phase(dev, visibility, public, requests, rate,
                                             plan.e2e_seconds, plan.round_items * 2,
                                             rss=samples, rss_interval=0.5)
                extra: dict[str, Any] = {"offered_rate_per_s": round(rate, 1),
                                         "visibility_polls": visibility.polls}
                if fraction == 0.5:
                    doc["memory"]["rss_under_50pct_load"] = _growth(
                        samples, after=plan.e2e_seconds / 5)
                doc["rows"].append(row(f"e2e @ {int(fraction * 100)}% = {rate:.0f}/s",
                                       [measured], kind="load_point", **extra))
            await asyncio.sleep(1.0)
            idle_after = dev.rss()
            doc["memory"]["idle_rss_after_load_mb"] = round(idle_after / MB, 1)
            if plan.soak_seconds > 0:
                samples = []
                measured = await _open_phase(
                    dev, visibility, public, requests, max_rate / 2, plan.soak_seconds,
                    int(max_rate * plan.soak_seconds) + 1, rss=samples, rss_interval=1.0)
                doc["rows"].append(row(f"soak @ 50% for {plan.soak_seconds:.0f}s",
                                       [measured], kind="soak"))
                doc["memory"]["soak_rss"] = _growth(samples, after=min(
                    60.0, plan.soak_seconds / 5))
            if plan.short:
                doc["notes"].append("the 10 MB payload check runs only without --short")
            else:
                doc["memory"]["payload_10mb"] = await _payload_check(dev, public, key_doc,
                                                                     visibility)
        finally:
            if visibility is not None:
                await visibility.stop()
            stack.close()
    doc["notes"].append("latency = scheduled POST to first sight in GET /api/v1/cases, polled "
                        "every 10 ms while cases are awaited (adds ~5 ms on average), 20 "
                        "newest cases per page, further pages until a case seen before")
    half = next((r for r in doc["rows"] if r["name"].startswith("e2e @ 50%")), None)
    if half is not None:
        doc["targets"].append(target("e2e p50 <= 50 ms at 50 %", half["latency_ms"]["p50"], 50,
                                     at_least=False, unit="ms"))
        doc["targets"].append(target("e2e p99 <= 250 ms at 50 %", half["latency_ms"]["p99"],
                                     250, at_least=False, unit="ms"))
    doc["targets"].append(target("hotline dev idle RSS <= 150 MB",
                                 doc["memory"].get("idle_rss_mb"), 150, at_least=False,
                                 unit="MB"))
    soak = doc["memory"].get("soak_rss") or doc["memory"].get("rss_under_50pct_load") or {}
    doc["targets"].append(target(
        "RSS growth under 50 % load <= 10 %" + ("" if "soak_rss" in doc["memory"]
                                                else " (short phase; use --soak 600)"),
        soak.get("growth_pct"), 10, at_least=False, unit="%"))
    copies = doc["memory"].get("payload_10mb", {}).get("copies")
    doc["targets"].append(target("one 10 MB report held <= a few (4) copies", copies, 4,
                                 at_least=False, unit="copies"))
    return doc


async def _payload_check(dev: Service, public: int, key_doc: dict[str, Any],
                         visibility: _Visibility, *, size_mb: int = 10,
                         wait_seconds: float = 60.0) -> dict[str, Any]:
    """Peak RSS above idle while one large report goes from POST to visible case."""
    size = size_mb * MB
    request = _envelope_requests(key_doc, 1, size=size)[0]
    await asyncio.sleep(0.5)
    before = dev.rss()
    dev.reset_peak()
    conn = Connection(HOST, public)
    try:
        sent = time.perf_counter()
        status, body = await conn.request(request)
    finally:
        conn.close()
    if status != 202:
        return {"error": f"POST of a {size_mb} MB report answered {status}", "copies": None}
    visibility.reset()
    visibility.expect(sent, body)
    missing = await visibility.wait_all(wait_seconds)
    await asyncio.sleep(0.3)
    peak = dev.peak_rss()
    return {"payload_mb": size_mb, "request_mb": round(len(request) / MB, 1),
            "rss_before_mb": round(before / MB, 1), "peak_rss_mb": round(peak / MB, 1),
            "copies": round((peak - before) / size, 2), "visible": not missing,
            "seconds_to_visible": (round(visibility.latencies[0], 3)
                                   if visibility.latencies else None)}


# -- mail -------------------------------------------------------------------------------

_MAIL = (b"From: =?utf-8?b?5byg5YWI55Sf?= <customer@example.net>\r\n"
         b"To: complaints-gd@hotline.localhost\r\n"
         b"Subject: =?utf-8?b?5pa95bel6LSo6YeP5oqV6K+J?=\r\n"
         b"Message-ID: <bench-<<ID>>@example.net>\r\n"
         b"Date: Wed, 25 Nov 2026 10:00:00 +0800\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n\r\n") + "\r\n".join(
    [_DESCRIPTION[i:i + 60] for i in range(0, len(_DESCRIPTION), 60)]).encode()


async def scenario_mail(plan: Plan) -> dict[str, Any]:
    """Complaint mail through intake's SMTP receiver to the queue vs a bare aiosmtpd."""
    doc: dict[str, Any] = {"rows": [], "notes": [], "targets": [], "memory": {}}
    if importlib.util.find_spec("intake.mail_receiver") is None:
        doc.update(available=False,
                   reason="not available: no SMTP receiver in this build")
        return doc
    with _workdir("mail") as tmp:
        stack = _Stack()
        try:
            bus_url = f"sqlite:///{tmp / 'queue.sqlite3'}"
            smtp_port, base_port = free_port(), free_port()
            env = hotline_env(tmp / "data", HOTLINE_BUS_URL=bus_url,
                              HOTLINE_SMTP_PORT=str(smtp_port))
            run_hotline(["keys", "rotate"], env)
            subject = stack.service(Service(
                "hotline intake (smtp)", _python("-m", "hotline.cli", "intake", "--port",
                                                 str(free_port())), env, tmp / "intake.log"))
            baseline = stack.service(Service(
                "baseline smtp", _python("-m", "bench._baseline", "smtp", "--bus", bus_url,
                                         "--port", str(base_port)), env, tmp / "smtp.log"))
            mails = [_MAIL]
            systems = [("A", subject, smtp_port), ("B", baseline, base_port)]
            concurrency = max(4, plan.concurrency // 4)
            for _, _, p in systems:
                await closed_loop(HOST, p, mails, concurrency=4, max_items=100, max_seconds=5,
                                  ok_status=250, connect=SmtpConnection)
            rounds: dict[str, list[Round]] = {"A": [], "B": []}
            for _ in range(plan.rounds):
                for name, service, p in systems:
                    await _clear_queue(bus_url)
                    rounds[name].append(await _measure(service, None, lambda p=p: closed_loop(  # type: ignore[misc]
                        HOST, p, mails, concurrency=concurrency, max_items=plan.round_items,
                        max_seconds=plan.round_seconds, ok_status=250,
                        connect=SmtpConnection)))
            base_row = row(f"baseline aiosmtpd+sqlite (max, {concurrency} c)",
                           rounds["B"], kind="baseline")
            subj_row = row(f"mail smtp->queue (max, {concurrency} c)", rounds["A"],
                           baseline=base_row)
            rate = max(1.0, subj_row["throughput_per_s"] / 2)
            half: dict[str, list[Round]] = {"A": [], "B": []}
            for _ in range(plan.rounds):
                for name, service, p in systems:
                    await _clear_queue(bus_url)
                    half[name].append(await _measure(service, None, lambda p=p: open_loop(  # type: ignore[misc]
                        HOST, p, mails, rate=rate, seconds=plan.round_seconds,
                        max_items=plan.round_items, ok_status=250, connect=SmtpConnection)))
            base_half = row(f"baseline smtp @ {rate:.0f}/s", half["B"], kind="baseline",
                            offered_rate_per_s=round(rate, 1))
            subj_half = row(f"mail smtp @ 50% = {rate:.0f}/s", half["A"], baseline=base_half,
                            kind="half_rate", offered_rate_per_s=round(rate, 1))
            doc["rows"] = [subj_row, base_row, subj_half, base_half]
            subject.stop()
            baseline.stop()
            idle_row = None
            if dovecot_binary() is None:
                doc["notes"].append("IDLE-to-case not measured: dovecot is not installed")
            else:
                idle_row = await _idle_to_case(plan, tmp, stack)
                doc["rows"].append(idle_row)
            if not plan.short:
                # One 10 MB mail (a base64 attachment) to a fresh intake: its peak RSS.
                from bench._mail_memory import measure_once  # imports this module

                doc["memory"]["mail_10mb"] = await measure_once(
                    tmp, env, tmp / "queue.sqlite3", size_mb=10, kind="attachment",
                    label="10mb")
        finally:
            stack.close()
    if plan.short:
        doc["notes"].append("the 10 MB mail check runs only without --short "
                            "(or: python -m bench._mail_memory)")
    copies = doc["memory"].get("mail_10mb", {}).get("copies")
    doc["targets"].append(target("one 10 MB mail (attachment) held <= a few (4) copies",
                                 copies, 4, at_least=False, unit="copies"))
    doc["notes"].append("mail latency = MAIL FROM to the 250 after DATA (durably queued), "
                        "one SMTP session per connection, a distinct Message-ID per mail")
    half_row = doc["rows"][2]
    doc["targets"].append(target("mail: SMTP to queued <= 20 ms p50 at 50 %",
                                 half_row["latency_ms"]["p50"], 20, at_least=False, unit="ms"))
    idle_p50 = None if idle_row is None else idle_row["latency_ms"]["p50"]
    doc["targets"].append(target("mail: IDLE to case <= 1.5 s p50",
                                 None if idle_p50 is None else idle_p50 / 1000, 1.5,
                                 at_least=False, unit="s"))
    return doc


async def _idle_to_case(plan: Plan, tmp: Path, stack: _Stack) -> dict[str, Any]:
    """Mails dropped one by one into a Dovecot Maildir, to the case in casework's list."""
    user, password = "complaints-gd", secrets.token_urlsafe(12)
    server = stack.dovecot(Dovecot(tmp / "dovecot", user, password))
    secret = tmp / "imap-password"
    secret.write_text(password)
    book = tmp / "mailboxes.toml"
    book.write_text(f"""[[mailbox]]
address = "complaints-gd@hotline.localhost"
unit = "GD"
language = "zh-Hans"
[mailbox.imap]
host = "127.0.0.1"
port = {server.port}
tls = "none"
user = "{user}"
password_file = "{secret}"
idle = true
poll_seconds = 60
""")
    public, internal = free_port(), free_port()
    dev = stack.service(Service("hotline dev (imap)", _python(
        "-m", "hotline.cli", "dev", "--public-port", str(public), "--internal-port",
        str(internal), "--smtp-port", str(free_port())),
        hotline_env(tmp / "data-imap", HOTLINE_MAILBOXES_FILE=str(book)), tmp / "dev-imap.log"))
    token = await _officer_token(dev, internal)
    await asyncio.sleep(1.0)  # the IMAP ingester signs in and enters IDLE
    conn = Connection(HOST, internal)
    auth = {"Authorization": f"Bearer {token}"}
    known: set[str] = set()
    result = LoadResult()
    cpu0 = dev.cpu_seconds()
    started = time.perf_counter()
    try:
        for _ in range(2 if plan.short else 12):
            dropped = time.perf_counter()
            server.deliver(_MAIL.replace(b"<<ID>>", secrets.token_hex(8).encode()))
            seen = None
            while seen is None and time.perf_counter() - dropped < 20:
                await asyncio.sleep(0.02)
                status, body = await conn.request(build_request(
                    "GET", "/api/v1/cases?limit=20", headers=auth))
                if status != 200:
                    continue
                fresh = [item["id"] for item in json.loads(body)["items"]
                         if item.get("channel") == "email" and item["id"] not in known]
                if fresh:
                    known.update(fresh)
                    seen = time.perf_counter()
            if seen is None:
                result.error("no_case_in_20s")
            else:
                result.ok += 1
                result.latencies.append(seen - dropped)
    finally:
        conn.close()
    result.seconds = time.perf_counter() - started
    measured = Round(result, dev.cpu_seconds() - cpu0, dev.peak_rss())
    dev.stop()
    return row("mail IMAP IDLE -> case (sequential)", [measured], kind="idle_to_case")


SCENARIOS: dict[str, Callable[[Plan], Awaitable[dict[str, Any]]]] = {
    "intake": scenario_intake,
    "router": scenario_router,
    "e2e": scenario_e2e,
    "mail": scenario_mail,
}
