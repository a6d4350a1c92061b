"""The supervisors' dashboard (DOMAIN.md) and its quarterly CSV export.

Figures are computed from the cases the caller may see — the same scoped, exclusion-aware
store query as the queue — so a count never reveals a case the caller could not open.
Filters: period (``from``/``to`` on the opening date) × unit (and its subtree) × unit
level × channel × category × severity × kind.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from casework.app import ACCOUNT, DEPS, _scope
from hotline.casefile import is_sealed_value
from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.domain.case import SEVERITIES, Case, CaseQuery, identities
from hotline.org import LEVELS, OrgTree
from hotline.ports import Store
from hotline.web import ApiError

__all__ = ["DashboardFilter", "add_dashboard_routes", "figures", "quarter_figures",
           "quarter_filter"]

_READERS = frozenset({"supervisor", "admin", "auditor"})
_CHANNELS = ("web", "email", "post", "phone", "visit")
_OPEN_END = ("closed", "archived")
_AGE_BUCKETS = ((0, 15, "0-15"), (16, 30, "16-30"), (31, 60, "31-60"), (61, 90, "61-90"),
                (91, 10**6, ">90"))
SUPPLY_CHAIN = frozenset({"wage_arrears", "child_labour", "forced_labour", "environment",
                          "labour_rights"})
_PAGE = 500


@dataclass(frozen=True)
class DashboardFilter:
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    unit: str | None = None
    level: str | None = None
    channel: str | None = None
    category: str | None = None
    severity: str | None = None
    kind: str | None = None


def _day(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be a date (YYYY-MM-DD)") from None


def _one_of(request: web.Request, name: str, choices: Iterable[str]) -> str | None:
    value = request.query.get(name) or None
    allowed = tuple(choices)
    if value is not None and value not in allowed:
        raise ApiError(400, "invalid_request", f"{name} must be one of {', '.join(allowed)}")
    return value


def parse_filter(request: web.Request, org: OrgTree) -> DashboardFilter:
    unit = request.query.get("unit") or None
    if unit is not None and unit not in org:
        raise ApiError(400, "invalid_request", "unit is not an organisation unit")
    category = request.query.get("category") or None
    if category is not None and (len(category) > 64 or not category.replace("_", "").isalnum()):
        raise ApiError(400, "invalid_request", "category is a plain word")
    start, end = _day(request.query.get("from"), "from"), _day(request.query.get("to"), "to")
    if start and end and end < start:
        raise ApiError(400, "invalid_request", "to is before from")
    return DashboardFilter(
        start=start, end=None if end is None else end + timedelta(days=1), unit=unit,
        level=_one_of(request, "level", LEVELS), channel=_one_of(request, "channel", _CHANNELS),
        category=category, severity=_one_of(request, "severity", SEVERITIES),
        kind=_one_of(request, "kind", ("report", "complaint")))


async def scoped_cases(store: Store, org: OrgTree, scope: frozenset[str],
                       viewer: tuple[str, ...], wanted: DashboardFilter) -> list[Case]:
    """Every case in scope matching the filter (newest first), page by page."""
    units = scope if wanted.unit is None else scope & org.subtree(wanted.unit)
    if wanted.level is not None:
        units = frozenset(u for u in units if org.get(u).level == wanted.level)
    found: list[Case] = []
    after: tuple[datetime, str] | None = None
    while True:
        page = await store.cases.query(CaseQuery(
            units=units, kind=wanted.kind, severity=wanted.severity, viewer=viewer,
            after=after, limit=_PAGE))
        for case in page:
            if wanted.end is not None and case.opened_at >= wanted.end:
                continue
            if wanted.start is not None and case.opened_at < wanted.start:
                return found
            if wanted.channel not in (None, case.channel) or wanted.category not in (
                    None, case.category):
                continue
            found.append(case)
        if len(page) < _PAGE:
            return found
        after = (page[-1].opened_at, page[-1].id)


def _records(case: Case) -> Mapping[str, Mapping[str, Any]]:
    state = case.workflow.get("state") or {}
    record = state.get("record") or {}
    return record if isinstance(record, Mapping) else {}


def _values(case: Case, field: str) -> list[Any]:
    return [r[field] for r in _records(case).values() if isinstance(r, Mapping) and r.get(field)]


def _closed_at(case: Case) -> datetime | None:
    history = (case.workflow.get("state") or {}).get("history") or []
    for entry in reversed(history):
        if entry.get("to_state") == "closed":
            at = entry.get("at")
            return at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    return None


def _rate(good: int, total: int) -> float | None:
    return None if total == 0 else round(good / total, 4)


def _spread(days: list[float]) -> dict[str, float | int | None]:
    if not days:
        return {"n": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(days)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"n": len(days), "mean": round(statistics.fmean(days), 2),
            "median": round(statistics.median(days), 2), "p90": round(p90, 2)}


def figures(cases: list[Case], now: datetime, *, negative_list_changes: int = 0,
            disclosures: Counter[str] | None = None) -> dict[str, Any]:
    """DOMAIN.md's dashboard figures over ``cases``."""
    fingerprints = Counter(c.fingerprint for c in cases if c.fingerprint)
    deadlines: dict[str, Counter[str]] = {}
    backlog: Counter[str] = Counter()
    resolve_days: list[float] = []
    complaints_closed = reviewed = remediation_due = remediation_on_time = 0
    for case in cases:
        for deadline in case.workflow.get("deadlines", []):
            tally = deadlines.setdefault(str(deadline.get("clock") or deadline.get("name")),
                                         Counter())
            due = datetime.fromisoformat(str(deadline["due_at"]))
            met_at = deadline.get("met_at")
            if met_at:
                tally["met_on_time" if datetime.fromisoformat(str(met_at)) <= due
                      else "met_late"] += 1
            elif due < now and case.status not in _OPEN_END:
                tally["overdue"] += 1
            else:
                tally["running"] += 1
        if case.status not in _OPEN_END:
            age = (now - case.opened_at).days
            backlog[next(label for low, high, label in _AGE_BUCKETS if low <= age <= high)] += 1
        if case.kind == "complaint":
            closed_at = _closed_at(case)
            if closed_at is not None:
                complaints_closed += 1
                resolve_days.append((closed_at - case.opened_at).total_seconds() / 86400)
            reviewed += bool(_values(case, "review_decision"))
            for action in _values(case, "corrective_action"):
                due_text = action.get("due") if isinstance(action, Mapping) else None
                if due_text:
                    remediation_due += 1
                    verified = _records(case).get("verify_remediation", {}).get("at")
                    if verified and str(verified)[:10] <= str(due_text)[:10]:
                        remediation_on_time += 1
    satisfaction = Counter(v for c in cases for v in _values(c, "survey_result"))
    answered = sum(n for k, n in satisfaction.items() if k != "expired")
    return {
        "volume": {
            "total": len(cases),
            "by_kind": dict(Counter(c.kind for c in cases)),
            "by_channel": dict(Counter(c.channel for c in cases)),
            "by_category": dict(Counter(c.category for c in cases)),
            "by_unit": dict(Counter(c.unit for c in cases)),
            "by_severity": dict(Counter(c.severity for c in cases)),
            "real_name": sum(1 for c in cases if c.triage.get("real_name")),
        },
        "repeat_rate": _rate(sum(n for n in fingerprints.values() if n > 1), len(cases)),
        "on_time": {name: {**dict(t), "rate": _rate(t["met_on_time"], t["met_on_time"] +
                                                    t["met_late"] + t["overdue"])}
                    for name, t in sorted(deadlines.items())},
        "backlog_by_age_days": {label: backlog[label] for _, _, label in _AGE_BUCKETS},
        "dispositions": dict(Counter(v for c in cases for v in _values(c, "disposition"))),
        "outcomes": dict(Counter(v for c in cases for v in _values(c, "outcome"))),
        "recusals": sum(1 for c in cases if any(e.startswith("user:") for e in c.excluded)),
        "identity_disclosures": dict(disclosures or {}),
        "complaints": {
            "time_to_resolve_days": _spread(resolve_days),
            "closed": complaints_closed,
            "review_rate": _rate(reviewed, complaints_closed),
            "satisfaction": dict(satisfaction),
            "satisfied_rate": _rate(satisfaction["satisfied"], answered),
            # 1–5 answers from the public survey page (router/survey.py)
            "rating_mean": _spread([float(v) for c in cases
                                    for v in _values(c, "survey_rating")
                                    if isinstance(v, int)])["mean"],
            # The category recorded with each root cause (workflows.toml); the free-text
            # root_cause itself is sealed at rest (hotline/casefile.py) and not counted.
            "top_root_causes": Counter(
                str(v) for c in cases for v in _values(c, "root_cause_category")
                if not is_sealed_value(v)).most_common(5),
            "remediation_on_time_rate": _rate(remediation_on_time, remediation_due),
        },
        "supply_chain": {"reports": sum(1 for c in cases if c.category in SUPPLY_CHAIN),
                         "negative_list_changes": negative_list_changes},
        # archived cases whose retention ended and that the purge has not reached yet
        "past_retention_not_purged": sum(
            1 for c in cases if c.retention_until is not None and c.retention_until <= now
            and c.status != "purged"),
    }


async def _compute(request: web.Request, wanted: DashboardFilter) -> dict[str, Any]:
    account = request[ACCOUNT]
    if account.role not in _READERS:
        raise ApiError(403, "forbidden", "the dashboard is for supervisors, auditors and admins")
    deps = request.app[DEPS]
    cases = await scoped_cases(deps.store, deps.org, _scope(request), identities(account),
                               wanted)
    ids = {c.id for c in cases}
    disclosures = Counter(str(r.doc.get("status")) for r in
                          await deps.store.records.list("disclosure")
                          if r.doc.get("case_id") in ids)
    changes = 0
    for record in await deps.store.records.list("negative_list"):
        for change in record.doc.get("history", []):
            at = datetime.fromisoformat(str(change.get("at")))
            if (wanted.start is None or at >= wanted.start) and (
                    wanted.end is None or at < wanted.end):
                changes += 1
    return figures(cases, utcnow(), negative_list_changes=changes, disclosures=disclosures)


async def dashboard(request: web.Request) -> web.Response:
    wanted = parse_filter(request, request.app[DEPS].org)
    body = await _compute(request, wanted)
    return web.json_response({
        "filter": {k: (format_time(v) if isinstance(v, datetime) else v)
                   for k, v in wanted.__dict__.items()},
        **body})


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, str, Any]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(inner, Mapping | list):
                yield from _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
            else:
                yield (prefix or str(key), str(key) if prefix else "", inner)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, tuple | list) and len(item) == 2:
                yield (prefix, str(item[0]), item[1])


_QUARTER = re.compile(r"(\d{4})-?[Qq]([1-4])")
_QUARTER_HELP = "quarter is required: quarter=2026Q3 (or year=2026&quarter=3)"


def quarter_filter(request: web.Request) -> tuple[str, DashboardFilter]:
    """``?quarter=2026Q3`` (or ``?year=2026&quarter=3``) plus the dashboard's other filters.

    The label (``2026-Q3``) and the filter for that quarter's opening dates; 400 otherwise.
    """
    text = request.query.get("quarter", "").strip()
    found = _QUARTER.fullmatch(text)
    if found is not None:
        year, quarter = int(found[1]), int(found[2])
    else:
        try:
            year, quarter = int(request.query.get("year", "")), int(text)
        except ValueError:
            raise ApiError(400, "invalid_request", _QUARTER_HELP) from None
    if not (2000 <= year <= 2100 and 1 <= quarter <= 4):
        raise ApiError(400, "invalid_request", _QUARTER_HELP)
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
    end = datetime(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1, tzinfo=UTC)
    base = parse_filter(request, request.app[DEPS].org)
    return f"{year}-Q{quarter}", DashboardFilter(start, end, base.unit, base.level, base.channel,
                                                 base.category, base.severity, base.kind)


async def quarter_figures(request: web.Request) -> tuple[str, DashboardFilter, dict[str, Any]]:
    """One quarter's figures for the caller (same roles and scope as the dashboard)."""
    period, wanted = quarter_filter(request)
    return period, wanted, await _compute(request, wanted)


async def quarterly_csv(request: web.Request) -> web.Response:
    """``?quarter=2026Q1``: the same figures for one quarter, one row per number."""
    period, _, body = await quarter_figures(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "metric", "dimension", "value"])
    for metric, dimension, value in _flatten("", body):
        writer.writerow([period, metric, dimension, "" if value is None else value])
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="hotline-{period}.csv"',
                 "Cache-Control": "no-store"})


def add_dashboard_routes(app: web.Application) -> None:
    app.add_routes([web.get("/api/v1/dashboard", dashboard),
                    web.get("/api/v1/dashboard/quarterly.csv", quarterly_csv)])
