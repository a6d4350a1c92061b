"""Complaint mail through the real ``hotline dev``: SMTP in, cases, acks in the outbox."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiosmtplib
import pytest

from hotline.mail.ingest import mail_submission_id
from tests.support.processes import HotlineProcess, free_port, hotline_env

pytestmark = pytest.mark.e2e

DOMAIN = "hotline.localhost"
GD = f"complaints-gd@{DOMAIN}"
BURST = 600  # large enough that a SIGKILL after the 10th 250 lands inside it


def start(data: Path, smtp_port: int) -> HotlineProcess:
    return HotlineProcess(["dev", "--public-port", str(free_port()), "--internal-port",
                           str(free_port()), "--smtp-port", str(smtp_port)],
                          hotline_env(data)).start()


def complaint(n: int) -> bytes:
    return (f"From: Customer {n} <customer{n}@example.cn>\r\nTo: {GD}\r\n"
            f"Subject: =?UTF-8?B?5a695bim5pat57q/?= #{n}\r\nMessage-ID: <e2e-{n}@example.cn>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"第{n}号客户：宽带断线一周，多次报修无人处理，请尽快解决。\r\n").encode()


def stored_submissions(data: Path) -> list[str]:
    db = sqlite3.connect(data / "hotline.sqlite3")
    try:
        return [row[0] for row in db.execute("SELECT submission_id FROM cases")]
    finally:
        db.close()


async def send(port: int, n: int) -> bool:
    """Deliver mail ``n``; True only when the receiver answered 250."""
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as client:
            errors, _ = await client.sendmail(f"customer{n}@example.cn", [GD], complaint(n))
    except (aiosmtplib.SMTPException, OSError):
        return False
    return not errors


async def test_sigkill_during_an_smtp_burst_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Every mail answered 250 is exactly one case with one acknowledgement after SIGKILL."""
    data, port = tmp_path / "data", free_port()
    process = start(data, port)
    accepted: list[int] = []
    try:
        started = time.perf_counter()
        assert await send(port, 0)
        first_queued = time.perf_counter() - started
        accepted.append(0)

        async def one(n: int) -> None:
            if await send(port, n):
                accepted.append(n)

        tasks = [asyncio.create_task(one(n)) for n in range(1, BURST)]
        for _ in range(5000):
            if len(accepted) >= 10:
                break
            await asyncio.sleep(0.001)
        process.kill()
        await asyncio.gather(*tasks)
        assert 10 <= len(accepted) < BURST, "the kill should land inside the burst"

        process = start(data, port)
        expected = {mail_submission_id(GD, f"<e2e-{n}@example.cn>") for n in accepted}
        outbox = data / "outbox"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = stored_submissions(data)
            if expected <= set(stored) and len(list(outbox.glob("*.eml"))) >= len(stored):
                break
            await asyncio.sleep(0.1)
        stored = stored_submissions(data)
        assert len(stored) == len(set(stored))
        assert expected <= set(stored)
        assert len(stored) == len(list(outbox.glob("*.eml")))
    finally:
        process.stop()
    print(f"SMTP DATA-to-250 (first mail, includes connect): {first_queued * 1000:.0f} ms")
    log = "\n".join(process.output)
    for secret in ("customer1@", "example.cn", "宽带", "e2e-1@"):
        assert secret not in log
