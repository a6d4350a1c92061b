"""Crash safety of the embedded mode: SIGKILL during a burst loses and doubles nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import start_dev
from tests.e2e.test_embedded import PAYLOAD, wait_for_reference
from tests.support.client import Reporter
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e

BURST = 60


async def burst(reporter: Reporter, accepted: list[dict[str, str]], started: asyncio.Event) -> None:
    async def one(index: int) -> None:
        try:
            status, doc = await reporter.report({**PAYLOAD, "title": f"burst {index}"})
        except (TimeoutError, aiohttp.ClientError):
            return  # the process died under this request: not accepted, nothing promised
        if status == 202:
            accepted.append(doc)
            if len(accepted) >= 10:
                started.set()

    await asyncio.gather(*(one(i) for i in range(BURST)))
    started.set()


async def test_sigkill_mid_burst_then_restart(tmp_path: Path) -> None:
    """Every 202 becomes exactly one case after a SIGKILL and a restart."""
    data = tmp_path / "data"
    public, internal = free_port(), free_port()
    process = start_dev(data, public, internal)
    accepted: list[dict[str, str]] = []
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=16),
                timeout=aiohttp.ClientTimeout(total=20)) as session:
            reporter = Reporter(session, f"http://127.0.0.1:{public}")
            started = asyncio.Event()
            task = asyncio.create_task(burst(reporter, accepted, started))
            await started.wait()
            process.kill()  # SIGKILL: no clean shutdown, leases and WAL as they are
            await task
        assert 10 <= len(accepted) < BURST, "the kill should land inside the burst"

        process = start_dev(data, public, internal)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            reporter = Reporter(session, f"http://127.0.0.1:{public}")
            references = [(await wait_for_reference(reporter, doc["receipt"], wait=60))[
                "reference"] for doc in accepted]
        assert len(accepted) == len(set(references))
        db = sqlite3.connect(data / "hotline.sqlite3")
        rows = db.execute("SELECT submission_id FROM cases").fetchall()
        db.close()
        stored = [row[0] for row in rows]
        assert len(stored) == len(set(stored))
        assert {doc["submission_id"] for doc in accepted} <= set(stored)
    finally:
        process.stop()
