"""``hotline bench <scenario> [--short] [--soak SECONDS] [--out FILE]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._infra import BenchError, machine
from bench._report import format_table
from bench._scenarios import SCENARIOS, Plan

__all__ = ["main"]

ORDER = ("intake", "router", "e2e", "mail")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline bench",
        description="Capacity benchmarks: each scenario starts what it needs on loopback, "
                    "measures it against a bare baseline in interleaved rounds, stops "
                    "everything it started, prints a table and writes JSON.")
    parser.add_argument("scenario", choices=[*ORDER, "all"])
    parser.add_argument("--short", action="store_true",
                        help="a few seconds per scenario (CI): numbers, no thresholds")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="e2e: also hold 50 %% of the maximum rate this long and report "
                             "RSS growth after the first minute (issue 7 asks for 600)")
    parser.add_argument("--out", type=Path,
                        help="JSON file (default bench-results/<scenario>.json)")
    return parser


def _terminate(_signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every scenario's finally stops its processes.
    raise KeyboardInterrupt


async def _run(names: Sequence[str], plan: Plan) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.perf_counter()
        doc: dict[str, Any] = {"scenario": name, "short": plan.short, "available": True,
                               "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine()}
        doc.update(await SCENARIOS[name](plan))
        doc["wall_seconds"] = round(time.perf_counter() - started, 1)
        # Other work on the machine shows here: compare with the number of cores.
        doc["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        print(format_table(doc), flush=True)
        docs[name] = doc
    return docs


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {path}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark named in ``argv``; 0 on success, 1 on a set-up failure."""
    args = _parser().parse_args(argv)
    plan = Plan.make(short=args.short, soak_seconds=args.soak)
    names = ORDER if args.scenario == "all" else (args.scenario,)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        docs = asyncio.run(_run(names, plan))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench interrupted; everything it started was stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.scenario == "all":
        for name, doc in docs.items():
            _write(Path("bench-results") / f"{name}.json", doc)
        _write(args.out or Path("bench-results") / "all.json",
               {"scenario": "all", "short": plan.short, "scenarios": docs})
    else:
        _write(args.out or Path("bench-results") / f"{args.scenario}.json", docs[args.scenario])
    return 0
