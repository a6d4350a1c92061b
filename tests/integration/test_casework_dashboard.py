"""Dashboard figures: scoped like the queue, filterable, and a quarterly CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps, create_app
from hotline.services import add_account
from tests.support.casework_cases import sealed_case
from tests.support.embedded import embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
Q1 = datetime(2026, 2, 10, 9, tzinfo=UTC)


def deadline(clock: str, due: datetime, met: datetime | None) -> dict[str, Any]:
    return {"name": clock, "clock": clock, "due_at": due.isoformat(),
            "met_at": None if met is None else met.isoformat()}


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: ClientFactory) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with embedded(tmp_path) as env:
        for name, unit, role in (("gd-super", "GD", "supervisor"), ("gd-officer", "GD", "officer"),
                                 ("hq-super", "HQ", "supervisor")):
            await add_account(env.store, env.org, name, unit=unit, role=role, password=PASSWORD,
                              employee_id="E-gd-super" if name == "gd-super" else None)
        on_time = {"deadlines": [deadline("acknowledge", Q1 + timedelta(days=1), Q1)]}
        late = {"deadlines": [deadline("acknowledge", Q1, Q1 + timedelta(days=2))]}
        await sealed_case(env, "gd-web", opened=Q1, workflow=on_time)
        await sealed_case(env, "gd-post", channel="post", opened=Q1 + timedelta(hours=1),
                          workflow=late, severity="major")
        await sealed_case(env, "gd-design", unit="GD-DESIGN", channel="phone",
                          opened=Q1 + timedelta(hours=2), category="wage_arrears")
        await sealed_case(env, "gd-later", opened=Q1 + timedelta(days=90))
        await sealed_case(env, "sc-web", unit="SC", opened=Q1)
        await sealed_case(env, "about-gd-super", opened=Q1, excluded=("E-gd-super",))
        yield await aiohttp_client(create_app(CaseworkDeps(
            env.settings, env.store, env.bus, env.org, env.master)))


async def dashboard(client: TestClient, who: str, query: str = "") -> tuple[int, Any]:  # type: ignore[type-arg]
    resp = await client.get(f"/api/v1/dashboard{query}",
                            headers=await officer_headers(client, who, PASSWORD))
    return resp.status, await resp.json()


async def test_figures_count_only_what_the_caller_may_see(client: TestClient) -> None:  # type: ignore[type-arg]
    """GD's supervisor counts GD's subtree minus the case about them; HQ counts all."""
    status, gd = await dashboard(client, "gd-super")
    assert (200, 4) == (status, gd["volume"]["total"])
    assert {"GD": 3, "GD-DESIGN": 1} == gd["volume"]["by_unit"]
    assert {"met_on_time": 1, "met_late": 1, "rate": 0.5} == gd["on_time"]["acknowledge"]
    assert 1 == gd["supply_chain"]["reports"]
    _, hq = await dashboard(client, "hq-super")
    assert 6 == hq["volume"]["total"]
    assert 403 == (await dashboard(client, "gd-officer"))[0]


async def test_filters_narrow_the_figures(client: TestClient) -> None:  # type: ignore[type-arg]
    """Period, channel, severity, unit and level each narrow the counts; bad values are 400."""
    cases = [("?from=2026-02-01&to=2026-03-31", 3), ("?channel=post", 1), ("?severity=major", 1),
             ("?unit=GD-DESIGN", 1), ("?level=subsidiary", 1), ("?category=wage_arrears", 1)]
    for query, expected in cases:
        _, body = await dashboard(client, "gd-super", query)
        assert (query, expected) == (query, body["volume"]["total"])
    for query in ("?channel=pigeon", "?from=yesterday", "?unit=MARS", "?level=galaxy",
                  "?category=%24gt"):
        assert (query, 400) == (query, (await dashboard(client, "gd-super", query))[0])


async def test_quarterly_csv_export(client: TestClient) -> None:  # type: ignore[type-arg]
    """One quarter's figures as CSV rows: period, metric, dimension, value."""
    resp = await client.get("/api/v1/dashboard/quarterly.csv?year=2026&quarter=1",
                            headers=await officer_headers(client, "hq-super", PASSWORD))
    assert ("text/csv", 200) == (resp.content_type, resp.status)
    rows = list(csv.reader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert ["period", "metric", "dimension", "value"] == rows[0]
    assert ["2026-Q1", "volume", "total", "5"] in rows
    assert ["2026-Q1", "volume.by_channel", "post", "1"] in rows
    bad = await client.get("/api/v1/dashboard/quarterly.csv?year=2026&quarter=5",
                           headers=await officer_headers(client, "hq-super", PASSWORD))
    assert 400 == bad.status
