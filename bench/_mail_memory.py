"""Copies of one large complaint mail in ``hotline intake``: ``python -m bench._mail_memory``.

Usage: ``python -m bench._mail_memory [--mb 10] [--repeat 3] [--kind attachment|body]``.

Starts ``hotline intake`` with the SMTP/LMTP receiver (``HOTLINE_SMTP_PORT``) on the
embedded queue (SQLite) in a temporary directory, sends one complaint mail to
``complaints-gd@hotline.localhost`` over SMTP — carrying a ``--mb`` MB attachment
(base64, ``--kind attachment``, the default) or a ``--mb`` MB UTF-8 text body (``--kind
body``) — checks that it was answered ``250`` and is in the queue, and prints the
process's peak RSS above its idle RSS (the kernel's ``VmHWM``, reset just before the
mail is sent, after a small mail of the same shape has warmed the process up) in
multiples of the payload: issue 7's "a few copies" target for complaint mail. Each
attempt runs in a fresh process. The receiver takes mail up to 25 MiB (``552`` above),
i.e. an attachment of up to ≈ 18 MB once base64-encoded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._infra import Service, free_port, hotline_env, run_hotline
from bench._load import SmtpConnection
from bench._report import MB
from bench._scenarios import _DESCRIPTION, HOST

__all__ = ["build_mail", "main"]

_HEAD = (b"From: =?utf-8?b?5byg5YWI55Sf?= <customer@example.net>\r\n"
         b"To: complaints-gd@hotline.localhost\r\n"
         b"Subject: =?utf-8?b?5pa95bel6LSo6YeP5oqV6K+J?=\r\n"
         b"Message-ID: <bench-memory-<<ID>>@example.net>\r\n"
         b"Date: Wed, 25 Nov 2026 10:00:00 +0800\r\n"
         b"MIME-Version: 1.0\r\n")


def _lines(text: bytes, width: int) -> bytes:
    return b"\r\n".join(text[i:i + width] for i in range(0, len(text), width))


def build_mail(size: int, kind: str) -> bytes:
    """One complaint mail carrying ``size`` bytes of attachment or of text body."""
    if kind == "body":
        # The bench's mixed Chinese/English complaint text repeated to ``size`` bytes of
        # UTF-8, in lines of 60 characters (≈ 120 bytes) as a mail client writes them.
        sample = _DESCRIPTION.replace("\n", " ")
        text = sample * (size // len(sample.encode()) + 1)
        body = "\r\n".join(text[i:i + 60] for i in range(0, len(text), 60)).encode()
        return (_HEAD + b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)
    attachment = os.urandom(size)
    return (_HEAD + b"Content-Type: multipart/mixed; boundary=\"bench-boundary\"\r\n\r\n"
            b"--bench-boundary\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + _DESCRIPTION.encode() + b"\r\n"
            b"--bench-boundary\r\n"
            b"Content-Type: application/pdf; name=\"evidence.pdf\"\r\n"
            b"Content-Disposition: attachment; filename=\"evidence.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + _lines(base64.b64encode(attachment), 76) + b"\r\n"
            b"--bench-boundary--\r\n")


def _queued(queue_file: Path) -> int:
    """Messages waiting in the embedded queue (no router runs, so nothing leaves it)."""
    with contextlib.closing(sqlite3.connect(queue_file, timeout=30)) as db:
        (count,) = db.execute("SELECT count(*) FROM bus_messages").fetchone()
        return int(count)


async def measure_once(tmp: Path, env: dict[str, str], queue_file: Path, *, size_mb: int,
                       kind: str, label: str) -> dict[str, Any]:
    """One mail of ``size_mb`` MB to a fresh ``hotline intake``; its figures (copies …).

    A fresh process each time: freed memory stays in the allocator's arenas and would hide
    the copies of a second large mail in the same process.
    """
    mail = build_mail(size_mb * MB, kind)
    # Dot-stuffing (RFC 5321 §4.5.2): the receiver removes it again.
    data = mail.replace(b"\r\n.", b"\r\n..")
    warm_up = build_mail(4096, kind).replace(b"\r\n.", b"\r\n..")
    smtp_port = free_port()
    service = Service("hotline intake (smtp)",
                      [sys.executable, "-m", "hotline.cli", "intake", "--port", str(free_port())],
                      {**env, "HOTLINE_SMTP_PORT": str(smtp_port)}, tmp / f"intake-{label}.log")
    service.start()
    try:
        conn = SmtpConnection(HOST, smtp_port)
        try:
            # A small mail of the same shape first: what the first mail loads once (the
            # Chinese conversion tables, codecs …) is not a copy of the payload.
            await conn.request(warm_up)
            queued_before = _queued(queue_file)
            await asyncio.sleep(0.5)
            before = service.rss()
            service.reset_peak()
            code, reply = await conn.request(data)
        finally:
            conn.close()
        peak = service.peak_rss()
        queued = _queued(queue_file) - queued_before
        return {"kind": kind, "payload_mb": size_mb, "mail_mb": round(len(mail) / MB, 1),
                "reply": code, "queued": queued, "ok": code == 250 and queued == 1,
                "rss_before_mb": round(before / MB, 1), "peak_rss_mb": round(peak / MB, 1),
                "copies": round((peak - before) / (size_mb * MB), 2),
                "detail": None if code == 250 and queued == 1
                else f"{reply!r}\n{service.log_tail(10)}"}
    finally:
        service.stop()


async def _measure(size_mb: int, repeat: int, kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-mail-memory-") as tmp:
        queue_file = Path(tmp) / "queue.sqlite3"
        env = hotline_env(Path(tmp) / "data", HOTLINE_BUS_URL=f"sqlite:///{queue_file}")
        run_hotline(["keys", "rotate"], env)
        for attempt in range(1, repeat + 1):
            got = await measure_once(Path(tmp), env, queue_file, size_mb=size_mb, kind=kind,
                                     label=str(attempt))
            print(f"attempt {attempt} ({kind}): {'ok' if got['ok'] else 'FAILED'}: reply "
                  f"{got['reply']}, queued {got['queued']}, mail {got['mail_mb']:.1f} MB, RSS "
                  f"before {got['rss_before_mb']:.1f} MB, peak {got['peak_rss_mb']:.1f} MB, "
                  f"copies of the {size_mb} MB payload: {got['copies']:.2f}", flush=True)
            if got["detail"]:
                print(f"  reply: {got['detail']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._mail_memory")
    parser.add_argument("--mb", type=int, default=10, help="payload size in MB (default 10)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="mails, each to a fresh process (default 3)")
    parser.add_argument("--kind", choices=("attachment", "body"), default="attachment",
                        help="a base64 attachment of that size, or a UTF-8 text body")
    args = parser.parse_args(argv)
    asyncio.run(_measure(args.mb, args.repeat, args.kind))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
