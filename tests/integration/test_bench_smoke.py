"""`hotline bench all --short` runs end to end and writes the documented JSON (no thresholds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROW_KEYS = {"name", "kind", "items", "errors", "seconds", "throughput_per_s", "latency_ms",
            "cpu_s_per_item", "peak_rss_mb", "baseline", "ratio_to_baseline"}
LATENCY_KEYS = {"p50", "p90", "p99", "max"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One short run of every scenario, in a directory of its own."""
    workdir = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    completed = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "bench", "all", "--short", "--out",
         str(workdir / "all.json")], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=600, check=False)
    assert 0 == completed.returncode, completed.stdout + completed.stderr
    assert "== intake (short)" in completed.stdout
    doc: dict[str, Any] = json.loads((workdir / "all.json").read_text("utf-8"))
    for name in ("intake", "router", "e2e", "mail"):
        assert (workdir / "bench-results" / f"{name}.json").exists()
    return doc


def test_every_scenario_is_reported(results: dict[str, Any]) -> None:
    """The combined document holds the four scenarios, each marked short."""
    assert {"intake", "router", "e2e", "mail"} == set(results["scenarios"])
    for doc in results["scenarios"].values():
        assert doc["short"] is True
        assert {"machine", "rows", "targets", "memory", "notes", "available"} <= set(doc)


@pytest.mark.parametrize("scenario", ["intake", "router", "e2e", "mail"])
def test_rows_carry_numbers(results: dict[str, Any], scenario: str) -> None:
    """Each measured row has throughput, CPU per item, peak RSS and latency keys."""
    doc = results["scenarios"][scenario]
    if scenario == "mail" and not doc["available"]:
        pytest.skip(doc["reason"])
    assert doc["available"] is True
    assert doc["rows"]
    for row in doc["rows"]:
        assert ROW_KEYS <= set(row), row["name"]
        assert LATENCY_KEYS == set(row["latency_ms"])
        assert _number(row["items"]), row
        assert row["items"] > 0, row
        assert _number(row["throughput_per_s"]), row
        assert _number(row["peak_rss_mb"]), row
        assert _number(row["cpu_s_per_item"]), row
        if scenario != "router":  # a drain of a pre-filled queue has no per-item latency
            assert all(_number(row["latency_ms"][k]) for k in LATENCY_KEYS), row


@pytest.mark.parametrize("scenario", ["intake", "router", "mail"])
def test_subjects_are_compared_with_their_baseline(results: dict[str, Any],
                                                   scenario: str) -> None:
    """Every subject row names its baseline and carries a numeric throughput ratio."""
    doc = results["scenarios"][scenario]
    if scenario == "mail" and not doc["available"]:
        pytest.skip(doc["reason"])
    subjects = [r for r in doc["rows"] if r["kind"] == "subject"]
    assert subjects
    for row in subjects:
        assert isinstance(row["baseline"], str)
        assert _number(row["ratio_to_baseline"]), row


def test_e2e_reports_memory_and_load_points(results: dict[str, Any]) -> None:
    """e2e has the idle RSS, the RSS growth under load and the 10/50/90 % load points."""
    doc = results["scenarios"]["e2e"]
    assert _number(doc["max_rate_per_s"])
    assert _number(doc["memory"]["idle_rss_mb"])
    assert _number(doc["memory"]["rss_under_50pct_load"]["growth_pct"])
    points = [r["name"] for r in doc["rows"] if r["kind"] == "load_point"]
    assert 3 == len(points)


def test_mail_says_whether_it_ran(results: dict[str, Any]) -> None:
    """The mail scenario either has rows or says plainly why it is not available."""
    doc = results["scenarios"]["mail"]
    assert doc["rows"] if doc["available"] else "not available" in doc["reason"]


def test_targets_are_listed_not_asserted(results: dict[str, Any]) -> None:
    """Targets of issue 7 appear with a value and a met flag (which may be False)."""
    targets = [t for d in results["scenarios"].values() for t in d["targets"]]
    assert targets
    for item in targets:
        assert {"target", "value", "limit", "met"} <= set(item)
