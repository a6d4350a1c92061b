"""Supplier negative list: supervisors list and remove with scope, reason and case link;
each change is published on the bus and audited; anyone in casework can search it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps, create_app
from hotline.services import add_account, verify_audit
from tests.support.casework_cases import sealed_case
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, unit, role in (("gd-super", "GD", "supervisor"), ("sc-super", "SC", "supervisor"),
                                 ("gd-officer", "GD", "officer"), ("sc-officer", "SC", "officer")):
            await add_account(instance.store, instance.org, name, unit=unit, role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
async def bus(env: Embedded) -> RecordingBus:
    return RecordingBus(env.bus)


@pytest.fixture
async def client(env: Embedded, bus: RecordingBus, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, bus,
                                                        env.org, env.master)))


async def call(client: TestClient, method: str, path: str, who: str,  # type: ignore[type-arg]
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    resp = await client.request(method, path, json=body,
                                headers=await officer_headers(client, who, PASSWORD))
    return resp.status, await resp.json()


async def test_list_search_and_remove_are_published_and_audited(
        client: TestClient, env: Embedded, bus: RecordingBus) -> None:  # type: ignore[type-arg]
    """A listing names its case to those who see it; removal needs a reason; both announced."""
    case = await sealed_case(env, "wages", category="wage_arrears")
    status, entry = await call(client, "POST", "/api/v1/negative-list", "gd-super", {
        "supplier": "Acme Scaffolding Ltd", "scope": "GD", "reason": "wage arrears, 40 workers",
        "case": case.reference})
    assert (201, "listed", case.reference) == (status, entry["status"], entry["case_reference"])
    assert 409 == (await call(client, "POST", "/api/v1/negative-list", "gd-super", {
        "supplier": "ACME scaffolding ltd", "scope": "GD", "reason": "again",
        "case": case.reference}))[0]
    _, found = await call(client, "GET", "/api/v1/negative-list?q=scaffold", "sc-officer")
    assert [(entry["id"], None)] == [(e["id"], e["case_reference"]) for e in found["items"]]
    _, found = await call(client, "GET", "/api/v1/negative-list?q=acme", "gd-officer")
    assert [case.reference] == [e["case_reference"] for e in found["items"]]
    path = f"/api/v1/negative-list/{entry['id']}/remove"
    assert 403 == (await call(client, "POST", path, "sc-super", {"reason": "paid"}))[0]
    assert 422 == (await call(client, "POST", path, "gd-super", {}))[0]
    status, removed = await call(client, "POST", path, "gd-super", {"reason": "arrears paid"})
    assert (200, "removed") == (status, removed["status"])
    _, listed = await call(client, "GET", "/api/v1/negative-list?q=acme", "gd-officer")
    assert [] == listed["items"]
    published = [json.loads(m.body) for m in bus.published
                 if m.routing_key == "supplier.negative_list"]
    assert [("listed", "GD", "Acme Scaffolding Ltd"), ("removed", "GD", "Acme Scaffolding Ltd")
            ] == [(m["action"], m["scope"], m["supplier"]) for m in published]
    assert all("reason" not in m for m in published)
    assert "negative_list.listed" in [e.type for e in await env.store.audit.events(case.id)]
    assert (await verify_audit(env.store)).ok


async def test_refusals(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Officers cannot list; scope must be HQ/province in reach; the case must be visible."""
    gd_case = await sealed_case(env, "gd")
    sc_case = await sealed_case(env, "sc", unit="SC")
    body = {"supplier": "Beta", "scope": "GD", "reason": "child labour", "case": gd_case.reference}
    assert 403 == (await call(client, "POST", "/api/v1/negative-list", "gd-officer", body))[0]
    for change in ({"scope": "HQ"}, {"scope": "GD-DESIGN"}, {"case": sc_case.reference},
                   {"supplier": ""}, {"extra": 1}):
        status, _ = await call(client, "POST", "/api/v1/negative-list", "gd-super",
                               {**body, **change})
        assert (change, 422) == (change, status)
    assert [] == await env.store.records.list("negative_list")
