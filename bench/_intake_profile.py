"""CPU per sealed report of intake vs its bare baseline, with an optional py-spy profile.

``python -m bench._intake_profile [--items 3000] [--rounds 5] [--compare DIR] [--profile]``
(not part of ``hotline bench``): starts a server process that builds the app with
``intake.app.create_app`` and the deps ``hotline intake`` gives it (embedded SQLite
queue, JSON logs at info, proof of work off, no mail) and ``python -m bench._baseline
intake`` on a queue file of its own, then drives them with the bench's lean client (the
≈ 2 KB sealed envelopes of ``hotline bench intake``) in interleaved rounds A B A B …,
and prints each server's CPU (psutil user+system) per accepted report, the medians and
the baseline/intake ratio of CPU per report (on a CPU-bound machine, the throughput
ratio issue 7 asks to be ≥ 0.7). CPU per report is the figure to judge a change by on
a shared machine; throughput is printed but moves with the neighbours.

``--compare DIR``: a third server, intake as built from another checkout (e.g. a copy
of the tree before a change), in the same interleaved rounds.

``--profile``: one more round of intake, then of the baseline, under ``py-spy record``
(all threads, idle samples dropped): the event loop thread's busy samples per component
(inclusive: a sample counts for every component on its stack), as a share and as µs
per report; the collapsed stacks (py-spy's raw format, for speedscope or
``flamegraph.pl``) are written next to ``--out``.
py-spy samples wall time, so the SQLite thread's fsync waits count as busy there: read
the main-thread shares, and CPU per report for the totals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench._infra import Service, free_port, hotline_env, run_hotline
from bench._load import closed_loop
from bench._scenarios import HOST, _clear_queue, _envelope_requests, _get_json, _workdir

__all__ = ["main"]

# (label, substring of a py-spy frame "function (path)"), in the order printed.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("aiohttp request handling (all of it)", "_handle_request (aiohttp/web_protocol.py)"),
    ("  error_middleware (metrics, timing) and below", "middleware (hotline/web.py)"),
    ("  security_headers_middleware and below", "security_headers_middleware ("),
    ("  post_report (the handler) and below", "post_report (intake/app.py)"),
    ("    read_json (body, json.loads, key checks)", "read_json (hotline/web.py)"),
    ("    Sealed.from_wire (base64 checks)", "from_wire (hotline/crypto/_sealing.py)"),
    ("    generate_receipt / new_receipt", "_receipt ("),
    ("    normalise_receipt", "normalise_receipt ("),
    ("    receipt_hash (HMAC)", "receipt_hash ("),
    ("    receipt_reply_public_key (HKDF + X25519)", "receipt_reply_public_key ("),
    ("    _new_id (ids)", "_new_id (intake/app.py)"),
    ("    Submission.to_bytes", "to_bytes (hotline/contract.py)"),
    ("    _accepted (the 202)", "_accepted (intake/app.py)"),
    ("    _publish_message (bus, metrics, log)", "_publish_message (intake/app.py)"),
    ("  response writing", "finish_response (aiohttp/web_protocol.py)"),
    ("socket reads and HTTP parsing", "_read_ready (asyncio/selector_events.py)"),
    ("SqliteBus._flush (event loop side)", "_flush (hotline/adapters/sqlite_bus.py)"),
    ("prometheus_client", "prometheus_client/"),
    ("structlog", "structlog/"),
)
_LINE = re.compile(r":\d+\)")
_ROOT = Path(__file__).resolve().parents[1]  # the checkout this file belongs to


@dataclass
class _System:
    name: str
    service: Service
    port: int
    bus_url: str
    requests: list[bytes] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


async def _serve(data: Path, port: int) -> None:
    """The intake app as ``hotline intake`` builds it (no mail), until SIGTERM."""
    from aiohttp import web

    from hotline.bootstrap import make_bus, make_store
    from hotline.cli import _release_large_buffers_when_freed
    from hotline.crypto import ReceiptKeys
    from hotline.logging import configure_logging
    from hotline.org import load_org
    from hotline.settings import load_settings
    from intake.app import IntakeDeps, create_app

    settings = load_settings(data_dir=data)
    configure_logging(settings.log_format, settings.log_level)
    _release_large_buffers_when_freed()
    store, bus = make_store(settings), make_bus(settings)
    await store.open()
    await bus.open()
    app = create_app(IntakeDeps(settings, store, bus, load_org(),
                                ReceiptKeys.load(settings.receipt_key_file)))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("Ready.", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await bus.close()
        await store.close()


def _intake(name: str, tree: Path, tmp: Path) -> tuple[Service, int, str]:
    """An intake server whose Hotline code comes from ``tree``, with its own data."""
    data, bus_url = tmp / f"data-{name}", f"sqlite:///{tmp / f'queue-{name}.sqlite3'}"
    env = hotline_env(data, HOTLINE_BUS_URL=bus_url, PYTHONPATH=str(tree))
    run_hotline(["keys", "rotate"], env)
    port = free_port()
    # Run as a script, so the packages are imported from PYTHONPATH (= tree), not the cwd.
    argv = [sys.executable, str(_ROOT / "bench" / "_intake_profile.py"), "serve", "--data",
            str(data), "--port", str(port)]
    return Service(name, argv, env, tmp / f"{name}.log"), port, bus_url


def _summarise(collapsed: Path, rate: int, reports: int) -> list[str]:
    totals: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # The event loop's thread only, and not while it waits in epoll.
        if not count.isdigit() or "MainThread" not in frames[0] or frames[-1].startswith(
                "EpollSelector.select"):
            continue
        samples += int(count)
        stack = _LINE.sub(")", stack)
        for label, needle in COMPONENTS:
            if needle in stack:
                totals[label] += int(count)
    per_report = 1e6 / rate / max(reports, 1)  # µs of one sample, spread over the reports
    lines = [f"py-spy: {samples} busy samples of the event loop's thread, "
             f"≈ {samples * per_report:.0f} µs per report"]
    lines += [f"{100 * totals[label] / max(samples, 1):6.1f} %  "
              f"{totals[label] * per_report:5.0f} µs  {label}"
              for label, _ in COMPONENTS if totals[label]]
    return lines


def _start_py_spy(pid: int, rate: int, raw: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", str(rate),  # noqa: S603 — fixed arguments
                             "--threads", "--format", "raw", "--output", str(raw),
                             "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _profile(args: argparse.Namespace, system: _System, tmp: Path) -> None:
    raw = tmp / f"{system.name}.collapsed"
    spy = _start_py_spy(system.service.pid, args.rate, raw)
    try:
        await asyncio.sleep(1.0)  # py-spy attaches
        result = await closed_loop(HOST, system.port, system.requests,
                                   concurrency=args.concurrency, max_items=args.items * 2,
                                   max_seconds=60)
        await asyncio.sleep(0.5)
    finally:
        spy.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=30)
        if spy.poll() is None:
            spy.kill()
    if not raw.exists():
        print("py-spy wrote no profile (is ptrace permitted?)")
        return
    summary = [f"{system.name}:", *_summarise(raw, args.rate, result.ok)]
    print("\n".join(summary))
    out = args.out.with_name(f"{args.out.stem}-{system.name}{args.out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(raw, out.with_suffix(".collapsed"))
    out.write_text("\n".join(summary) + "\n")
    print(f"written: {out} and {out.with_suffix('.collapsed')}")


async def _run(args: argparse.Namespace) -> int:
    with _workdir("intake-profile") as tmp:
        base_bus, base_port = f"sqlite:///{tmp / 'queue-baseline.sqlite3'}", free_port()
        baseline = Service("baseline", [sys.executable, "-m", "bench._baseline", "intake",
                                        "--bus", base_bus, "--port", str(base_port)],
                           hotline_env(tmp / "data-baseline"), tmp / "baseline.log")
        systems = [_System("intake", *_intake("intake", _ROOT, tmp))]
        if args.compare is not None:
            systems.append(_System("compare", *_intake("compare", args.compare, tmp)))
        systems.append(_System("baseline", baseline, base_port, base_bus))
        started: list[Service] = []
        try:
            for system in systems:
                started.append(system.service.start())
            for system in systems:
                key_port = systems[0].port if system.name == "baseline" else system.port
                system.requests = _envelope_requests(
                    await _get_json(key_port, "/api/v1/intake/key"), 64)
                await closed_loop(HOST, system.port, system.requests, concurrency=8,
                                  max_items=300, max_seconds=10)  # warm-up
            for index in range(args.rounds):
                for s in systems:
                    await _clear_queue(s.bus_url)
                    cpu0 = s.service.cpu_seconds()
                    result = await closed_loop(HOST, s.port, s.requests,
                                               concurrency=args.concurrency,
                                               max_items=args.items, max_seconds=60)
                    s.cpu_us.append((s.service.cpu_seconds() - cpu0) / max(result.ok, 1) * 1e6)
                    print(f"round {index + 1} {s.name:8}: {result.ok} ok, {result.errors} "
                          f"errors, {result.ok / result.seconds:6.0f}/s, "
                          f"{s.cpu_us[-1]:5.0f} µs CPU each", flush=True)
            medians = {s.name: statistics.median(s.cpu_us) for s in systems}
            print("median CPU per report: " + ", ".join(
                f"{name} {value:.0f} µs" for name, value in medians.items()))
            for s in systems[:-1]:
                print(f"baseline/{s.name} CPU per report: "
                      f"{medians['baseline'] / medians[s.name]:.2f}")
            if args.profile:
                for system in (systems[0], systems[-1]):
                    await _clear_queue(system.bus_url)
                    await _profile(args, system, tmp)
        finally:
            for service in reversed(started):
                service.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._intake_profile",
                                     description="CPU per sealed report: intake vs baseline")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="(internal) run the intake app built here")
    serve.add_argument("--data", type=Path, required=True)
    serve.add_argument("--port", type=int, required=True)
    parser.add_argument("--items", type=int, default=3000, help="reports per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--compare", type=Path, help="also intake from this checkout")
    parser.add_argument("--profile", action="store_true", help="py-spy one more intake round")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path("bench-results/intake-profile.txt"))
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve(args.data, args.port))
        return 0
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
