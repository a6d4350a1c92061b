"""How many copies of one large report ``hotline dev`` holds: ``python -m bench._dev_memory``.

Starts ``hotline dev`` (intake, router and casework in one process; SQLite store with the
embedded queue in the same file) in a temporary directory, posts one sealed report whose
description is ``--mb`` MB, waits until its case shows in casework's ``GET
/api/v1/cases``, and prints the process's peak RSS above its idle RSS (the kernel's
``VmHWM``, reset just before the POST) in multiples of the payload — issue 7's "a few
copies" target for the whole path, as the e2e scenario's 10 MB check measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bench._infra import Service, free_port, hotline_env
from bench._report import MB
from bench._scenarios import _get_json, _officer_token, _payload_check, _Visibility

__all__ = ["main"]


async def _attempt(tmp: Path, attempt: int, size_mb: int, wait_seconds: float) -> None:
    # A fresh process and data directory each time: freed memory stays in the
    # allocator's arenas and would hide the copies of a second large report.
    public, internal = free_port(), free_port()
    env = hotline_env(tmp / f"data-{attempt}", HOTLINE_MAX_BODY_BYTES=str(32 * MB))
    dev = Service("hotline dev", [sys.executable, "-m", "hotline.cli", "dev",
                                  "--public-port", str(public), "--internal-port", str(internal),
                                  "--smtp-port", str(free_port())], env,
                  tmp / f"dev-{attempt}.log")
    dev.start()
    visibility: _Visibility | None = None
    try:
        token = await _officer_token(dev, internal)
        key_doc = await _get_json(public, "/api/v1/intake/key")
        visibility = _Visibility(internal, token)
        visibility.start()
        await asyncio.sleep(0.5)
        got = await _payload_check(dev, public, key_doc, visibility, size_mb=size_mb,
                                   wait_seconds=wait_seconds)
        if got.get("error"):
            print(f"attempt {attempt}: {got['error']}", flush=True)
            return
        seen = (f"visible after {got['seconds_to_visible']:.1f} s" if got["visible"]
                else f"NOT visible after {wait_seconds:.0f} s")
        print(f"attempt {attempt}: request {got['request_mb']:.1f} MB, {seen}, "
              f"RSS before {got['rss_before_mb']:.1f} MB, peak {got['peak_rss_mb']:.1f} MB, "
              f"copies of the {size_mb} MB payload: {got['copies']:.2f}", flush=True)
    finally:
        if visibility is not None:
            await visibility.stop()
        dev.stop()


async def _measure(size_mb: int, repeat: int, wait_seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-dev-memory-") as tmp:
        for attempt in range(1, repeat + 1):
            await _attempt(Path(tmp), attempt, size_mb, wait_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._dev_memory")
    parser.add_argument("--mb", type=int, default=10, help="payload size in MB (default 10)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="reports, each in a fresh process (default 3)")
    parser.add_argument("--wait", type=float, default=600.0,
                        help="seconds to wait for the case to show (default 600)")
    args = parser.parse_args(argv)
    asyncio.run(_measure(args.mb, args.repeat, args.wait))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
