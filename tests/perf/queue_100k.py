"""The officers' queue with 100,000 cases in SQLite: time per page through the real API.

``python -m tests.perf.queue_100k [--cases 100000] [--out bench-results/casework-queue]``
writes ``.json`` (figures) and ``.svg`` (a bar chart of p50/p95 per scenario). The cases
are written straight into the store's table (same row format as the adapter) so that
building them takes seconds; the requests go through ``casework.app`` over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from casework.app import CaseworkDeps, create_app
from hotline.adapters.sqlite_store import _row  # the adapter's own row format
from hotline.crypto import Sealed
from hotline.domain.case import Case, case_id_for
from hotline.services import add_account
from tests.support.embedded import embedded

PASSWORD = "benchmark passphrase"
UNITS = ["HQ", "GD", "GD-DESIGN", "SC", "BJ", "SH", "ZJ", "JS", "HK", "OVERSEAS"]
STATUSES = ["new", "acknowledged", "investigating", "resolved", "closed", "archived"]
SEVERITIES = ["major", "high", "general", "general", "low"]
CHANNELS = ["web", "web", "email", "post", "phone", "visit"]
SCENARIOS = [
    ("HQ, first page", "hq-officer", "?limit=50"),
    ("HQ, page 100 (cursor)", "hq-officer", None),
    ("GD subtree, first page", "gd-officer", "?limit=50"),
    ("complaints, major", "hq-officer", "?kind=complaint&severity=major&limit=50"),
    ("overdue", "hq-officer", "?overdue=true&limit=50"),
    ("SC, closed", "hq-officer", "?unit=SC&status=closed&limit=50"),
    ("rare: OVERSEAS new low complaints", "hq-officer",
     "?unit=OVERSEAS&status=new&severity=low&kind=complaint&limit=50"),
    ("channel: post", "hq-officer", "?channel=post&limit=50"),
    ("channel: visit, GD subtree", "gd-officer", "?channel=visit&limit=50"),
    ("assigned to me (1 %)", "hq-officer", "?assigned=me&limit=50"),
    ("assigned to me, phone, open overdue", "hq-officer",
     "?assigned=me&channel=phone&overdue=true&limit=50"),
    ("assigned to me, none assigned", "gd-officer", "?assigned=me&limit=50"),
]
ASSIGNEES = ["hq-officer"] + [f"officer-{n}" for n in range(99)]  # 1 % each


def make_cases(count: int, now: datetime) -> list[Case]:
    rng = random.Random(5)
    assigning = random.Random(7)  # its own stream: the other columns stay as before
    cases = []
    for n in range(count):
        opened = now - timedelta(minutes=5 * (count - n))
        kind = "report" if rng.random() < 0.6 else "complaint"
        status = rng.choice(STATUSES)
        submission = f"bench-{n:07d}"
        excluded = (f"E{rng.randrange(10**5):05d}",) if rng.random() < 0.1 else ()
        case = Case(
            id=case_id_for(submission), submission_id=submission,
            reference=f"{'R' if kind == 'report' else 'C'}-2026-{n + 1:06d}",
            kind=kind, category="corruption" if kind == "report" else "billing",  # type: ignore[arg-type]
            severity=rng.choice(SEVERITIES), status=status, unit=rng.choice(UNITS),
            channel=rng.choice(CHANNELS), opened_at=opened, received_at=opened,
            content=Sealed("kid", b"e" * 32, b"c" * 256), sealed_by="client",
            due_at=opened + timedelta(days=rng.choice([1, 15, 30, 60])),
            triage={"rules": ["r1"]}, excluded=excluded,
            workflow={"name": "bench", "assignee": assigning.choice(ASSIGNEES)}
            if assigning.random() < 0.7 else {"name": "bench"})
        cases.append(case)
    return cases


async def fill(store: Any, cases: list[Case]) -> None:
    async with store.transaction() as db:
        await db.executemany(
            "INSERT INTO cases (id, submission_id, reference, receipt_hash, kind, severity,"
            " status, unit, opened_at, due_at, version, doc, fingerprint, excluded, stub_unit)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.id, c.submission_id, c.reference, *_row(replace(c))) for c in cases])
    async with store.transaction() as db:
        await db.execute("ANALYZE")


async def timed(client: TestClient, path: str, headers: dict[str, str]) -> tuple[float, Any]:  # type: ignore[type-arg]
    start = time.perf_counter()
    resp = await client.get(path, headers=headers)
    body = await resp.json()
    elapsed = (time.perf_counter() - start) * 1000
    assert resp.status == 200, body
    return elapsed, body


async def run(count: int, repeat: int, out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with embedded(Path(tmp)) as env:
            for name, unit in (("hq-officer", "HQ"), ("gd-officer", "GD")):
                await add_account(env.store, env.org, name, unit=unit, role="officer",
                                  password=PASSWORD, employee_id="E00042")
            build = time.perf_counter()
            await fill(env.store, make_cases(count, datetime.now(UTC)))
            build_s = time.perf_counter() - build
            app = create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org, env.master))
            async with TestClient(TestServer(app)) as client:
                headers = {}
                for name in ("hq-officer", "gd-officer"):
                    resp = await client.post("/api/v1/auth/login",
                                             json={"username": name, "password": PASSWORD})
                    headers[name] = {"Authorization": f"Bearer {(await resp.json())['token']}"}
                # the cursor of page 100
                cursor, path = None, "?limit=50"
                for _ in range(99):
                    _, body = await timed(client, "/api/v1/cases" + path, headers["hq-officer"])
                    cursor = body["next"]
                    path = f"?limit=50&cursor={cursor}"
                results: list[dict[str, Any]] = []
                for label, who, query in SCENARIOS:
                    query = query or path
                    times, items = [], 0
                    for _ in range(repeat):
                        elapsed, body = await timed(client, "/api/v1/cases" + query,
                                                    headers[who])
                        times.append(elapsed)
                        items = len(body["items"])
                    times.sort()
                    results.append({
                        "scenario": label, "query": query[:60], "items": items,
                        "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                        "max_ms": round(times[-1], 1)})
    report = {"cases": count, "build_seconds": round(build_s, 1), "repeat": repeat,
              "budget_ms": 200, "results": results,
              "all_under_budget": all(r["p95_ms"] < 200 for r in results),
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".svg").write_text(svg(report))
    return report


def svg(report: dict[str, Any]) -> str:
    """A plain bar chart (p50 and p95 per scenario, the 200 ms budget as a line)."""
    rows = report["results"]
    width, bar_h, left, top = 720, 16, 220, 40
    scale = (width - left - 40) / max(200.0, *(r["max_ms"] for r in rows))
    height = top + len(rows) * (2 * bar_h + 14) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14">Queue page time, {report["cases"]:,} cases '
             '(SQLite), ms — p50 dark, p95 light</text>']
    y = top
    for row in rows:
        parts.append(f'<text x="10" y="{y + bar_h + 4}">{row["scenario"]}</text>')
        for key, colour in (("p50_ms", "#2b5797"), ("p95_ms", "#9fb8e0")):
            w = max(1.0, row[key] * scale)
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{colour}"/><text x="{left + w + 4:.1f}" y="{y + 12}">'
                         f'{row[key]}</text>')
            y += bar_h
        y += 14
    budget = left + 200 * scale
    parts.append(f'<line x1="{budget:.1f}" y1="{top - 8}" x2="{budget:.1f}" y2="{y}" '
                 'stroke="#c00" stroke-dasharray="4 3"/>'
                 f'<text x="{budget - 4:.1f}" y="{top - 10}" fill="#c00" '
                 'text-anchor="end">200 ms budget</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench-results/casework-queue"))
    args = parser.parse_args()
    report = asyncio.run(run(args.cases, args.repeat, args.out))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
