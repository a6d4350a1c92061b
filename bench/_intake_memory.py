"""How many copies of one large report ``hotline intake`` holds: ``python -m bench._intake_memory``.

Starts ``hotline intake`` on the embedded queue (SQLite) in a temporary directory, posts
one sealed report whose description is ``--mb`` MB, and prints the process's peak RSS
above its idle RSS (the kernel's ``VmHWM``, reset just before the POST) in multiples of
the payload — the measure of issue 7's "a few copies" target, for intake alone (the
e2e scenario measures ``hotline dev``, router included).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bench._infra import Service, free_port, hotline_env, run_hotline
from bench._load import Connection
from bench._report import MB
from bench._scenarios import HOST, _envelope_requests, _get_json

__all__ = ["main"]


async def _measure(size_mb: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-memory-") as tmp:
        data = Path(tmp) / "data"
        env = hotline_env(data, HOTLINE_MAX_BODY_BYTES=str(32 * MB),
                          HOTLINE_BUS_URL=f"sqlite:///{Path(tmp) / 'queue.sqlite3'}")
        run_hotline(["keys", "rotate"], env)
        request = b""
        for attempt in range(1, repeat + 1):
            # A fresh process each time: freed memory stays in the allocator's arenas and
            # would hide the copies of a second large request in the same process.
            port = free_port()
            service = Service("hotline intake", [sys.executable, "-m", "hotline.cli", "intake",
                                                 "--port", str(port)], env,
                              Path(tmp) / "intake.log")
            service.start()
            try:
                if not request:
                    key = await _get_json(port, "/api/v1/intake/key")
                    request = _envelope_requests(key, 1, size=size_mb * MB)[0]
                await asyncio.sleep(0.5)
                before = service.rss()
                service.reset_peak()
                conn = Connection(HOST, port)
                try:
                    status, _ = await conn.request(request)
                finally:
                    conn.close()
                peak = service.peak_rss()
                print(f"attempt {attempt}: status {status}, request {len(request) / MB:.1f} MB, "
                      f"RSS before {before / MB:.1f} MB, peak {peak / MB:.1f} MB, "
                      f"copies of the {size_mb} MB payload: {(peak - before) / (size_mb * MB):.2f}",
                      flush=True)
            finally:
                service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._intake_memory")
    parser.add_argument("--mb", type=int, default=10, help="payload size in MB (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="posts, one at a time (default 3)")
    args = parser.parse_args(argv)
    asyncio.run(_measure(args.mb, args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
