"""Result rows, the printed table and the JSON document of a benchmark run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench._load import LoadResult, percentiles

__all__ = ["Round", "format_table", "row", "target"]

MB = 2**20


class Round:
    """One measured round of one system: load result plus server CPU and memory."""

    def __init__(self, result: LoadResult, cpu_seconds: float, peak_rss: int,
                 broker_cpu_seconds: float | None = None,
                 latencies: Sequence[float] | None = None) -> None:
        self.result = result
        self.cpu_seconds = cpu_seconds
        self.peak_rss = peak_rss
        self.broker_cpu_seconds = broker_cpu_seconds
        self.latencies = list(result.latencies if latencies is None else latencies)

    @property
    def throughput(self) -> float:
        return self.result.ok / self.result.seconds if self.result.seconds > 0 else 0.0


def _ms(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v * 1000, 2) for k, v in values.items()}


def row(name: str, rounds: Sequence[Round], *, kind: str = "subject",
        baseline: dict[str, Any] | None = None, with_latency: bool = True,
        **extra: Any) -> dict[str, Any]:
    """The JSON row of a system measured in ``rounds`` (median throughput over rounds)."""
    items = sum(r.result.ok for r in rounds)
    errors = sum(r.result.errors for r in rounds)
    cpu = sum(r.cpu_seconds for r in rounds)
    throughputs = [r.throughput for r in rounds]
    latencies = [x for r in rounds for x in r.latencies]
    kinds: dict[str, int] = {}
    for r in rounds:
        for key, count in r.result.error_kinds.items():
            kinds[key] = kinds.get(key, 0) + count
    doc: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "items": items,
        "errors": errors,
        "error_kinds": kinds,
        "seconds": round(sum(r.result.seconds for r in rounds), 3),
        "throughput_per_s": round(statistics.median(throughputs), 1) if throughputs else 0.0,
        "round_throughputs_per_s": [round(t, 1) for t in throughputs],
        "latency_ms": (_ms(percentiles(latencies)) if with_latency
                       else {"p50": None, "p90": None, "p99": None, "max": None}),
        "cpu_s_per_item": round(cpu / items, 6) if items else None,
        "peak_rss_mb": round(max((r.peak_rss for r in rounds), default=0) / MB, 1),
        "baseline": None,
        "ratio_to_baseline": None,
    }
    brokers = [r.broker_cpu_seconds for r in rounds if r.broker_cpu_seconds is not None]
    if brokers:
        doc["broker_cpu_s_per_item"] = round(sum(brokers) / items, 6) if items else None
    if baseline is not None:
        doc["baseline"] = baseline["name"]
        if baseline["throughput_per_s"]:
            # Per round, then the median: round i of A is compared with round i of B,
            # which ran right after it, so slow drift of the machine cancels.
            ratios = [a / b for a, b in zip(throughputs, baseline["round_throughputs_per_s"],
                                            strict=False) if b]
            doc["ratio_to_baseline"] = round(statistics.median(ratios), 3) if ratios else None
            doc["round_ratios"] = [round(x, 3) for x in ratios]
        mine, theirs = doc["latency_ms"]["p99"], baseline["latency_ms"]["p99"]
        doc["p99_latency_ratio_to_baseline"] = (round(mine / theirs, 2)
                                                if mine is not None and theirs else None)
    doc.update(extra)
    return doc


def target(text: str, value: float | None, limit: float, *, at_least: bool,
           unit: str = "") -> dict[str, Any]:
    """A target of issue 7 and whether this run met it (None: not measured)."""
    met = None if value is None else (value >= limit if at_least else value <= limit)
    return {"target": text, "value": None if value is None else round(value, 3),
            "limit": limit, "unit": unit, "met": met}


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(doc: dict[str, Any]) -> str:
    """A plain-text table of a scenario's rows, memory figures and targets."""
    lines = [f"== {doc['scenario']}" + (" (short)" if doc.get("short") else "")]
    if not doc.get("available", True):
        lines.append(f"   not available: {doc.get('reason')}")
        return "\n".join(lines)
    header = (f"{'name':<34} {'items':>7} {'err':>5} {'per s':>8} {'p50':>7} {'p90':>7} "
              f"{'p99':>7} {'max':>7} {'cpu ms/it':>9} {'RSS MB':>7} {'ratio':>6}")
    lines += [header, "-" * len(header)]
    for r in doc.get("rows", []):
        lat = r["latency_ms"]
        cpu = None if r["cpu_s_per_item"] is None else r["cpu_s_per_item"] * 1000
        lines.append(
            f"{r['name']:<34} {r['items']:>7} {r['errors']:>5} {_fmt(r['throughput_per_s']):>8} "
            f"{_fmt(lat['p50']):>7} {_fmt(lat['p90']):>7} {_fmt(lat['p99']):>7} "
            f"{_fmt(lat['max']):>7} {_fmt(cpu, 3):>9} {_fmt(r['peak_rss_mb']):>7} "
            f"{_fmt(r['ratio_to_baseline'], 2):>6}")
    lines.append("   (latencies in ms; cpu = server process CPU per accepted item; "
                 "ratio = throughput / baseline's, median of interleaved rounds)")
    for key, value in doc.get("memory", {}).items():
        lines.append(f"   memory {key}: {value}")
    for t in doc.get("targets", []):
        state = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        lines.append(f"   target {t['target']}: {_fmt(t['value'], 2)} {t['unit']} -> {state}")
    for note in doc.get("notes", []):
        lines.append(f"   note: {note}")
    return "\n".join(lines)
