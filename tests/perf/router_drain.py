"""The router in one process: drain N sealed reports from the embedded queue.

``python -m tests.perf.router_drain [--cases 1000] [--no-triage] [--profile FILE]``

No subprocess, no HTTP: ``SqliteBus.consume`` → ``Router.handle`` → ``SqliteStore`` on one
file, as ``hotline dev`` runs them. Prints cases/s and CPU ms per case (this process,
both threads). ``--no-triage`` replaces the triage engine's answer by the first report's
(to see what the rest of a case costs); ``--profile`` writes a cProfile file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

from bench._scenarios import _payload  # the same 1 KB report the benchmarks use
from hotline.adapters.sqlite_bus import SqliteBus
from hotline.adapters.sqlite_store import SqliteStore
from hotline.clock import utcnow
from hotline.contract import Submission
from hotline.crypto import KeyRing, MasterKey, seal
from hotline.org import load_org
from hotline.ports import Message
from hotline.services import rotate_keys
from hotline.topology import ROUTER_QUEUE
from hotline.triage import TriageInput, TriageResult
from router.worker import Router


async def drain(cases: int, *, triage: bool, profile: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hotline-drain-") as tmp:
        db = Path(tmp) / "hotline.db"
        store, bus = SqliteStore(db), SqliteBus(db)
        await store.open()
        await bus.open()
        try:
            master = MasterKey.load(Path(tmp) / "master.key", create=True)
            record = await rotate_keys(store, master)
            public = KeyRing([record], master).private_key(record.kid).public_key()
            router = Router(store=store, bus=bus, org=load_org(), master=master)
            if not triage:
                first: dict[str, TriageResult] = {}
                real = router.triage.triage

                def same_answer(request: TriageInput) -> TriageResult:
                    if "r" not in first:  # (setdefault would triage every report anyway)
                        first["r"] = real(request)
                    return first["r"]

                router.triage.triage = same_answer  # type: ignore[method-assign]
            messages = []
            for i in range(cases):
                s = Submission(
                    id=secrets.token_urlsafe(18), occurred_at=utcnow(),
                    correlation_id=secrets.token_urlsafe(18), kind="report", channel="web",
                    sealed=seal(_payload(i), public, kid=record.kid, purpose="report"),
                    sealed_by="client", category="corruption", unit="GD", locale="zh-CN",
                    receipt_hash=secrets.token_hex(32), reply_key=secrets.token_bytes(32))
                messages.append(Message(routing_key=s.routing_key, message_id=s.id,
                                        body=s.to_bytes(), correlation_id=s.correlation_id,
                                        headers={"schema": "hotline.submission/1"}))
            await asyncio.gather(*(bus.publish(m) for m in messages))

            def remaining() -> int:
                with sqlite3.connect(db) as conn:
                    return int(conn.execute("SELECT count(*) FROM bus_messages WHERE queue = ?",
                                            (ROUTER_QUEUE,)).fetchone()[0])

            profiler = cProfile.Profile() if profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            task = asyncio.create_task(bus.consume(ROUTER_QUEUE, router.handle, prefetch=32))
            while remaining():  # noqa: ASYNC110 — the queue is another connection's file
                await asyncio.sleep(0.02)
            if profiler and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return {"cases": cases, "cases_per_s": cases / wall, "cpu_ms_per_case":
                    cpu / cases * 1000}
        finally:
            await bus.close()
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--no-triage", action="store_true")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    result = asyncio.run(drain(args.cases, triage=not args.no_triage, profile=args.profile))
    print(f"{result['cases']} cases: {result['cases_per_s']:.1f} cases/s, "
          f"{result['cpu_ms_per_case']:.2f} ms CPU per case")


if __name__ == "__main__":
    main()
