"""casework's API: sign-in, unit scope in the query, audited opens, strict query parameters."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.contract import Submission
from hotline.crypto import seal
from hotline.domain.case import CaseQuery
from hotline.ports import Message
from hotline.services import add_account, load_keyring
from hotline.workflow import WorkflowEngine
from router.worker import Router
from tests.support.embedded import Embedded, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
SECRET_TEXT = "仓库管理员虚报加班费"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        org = instance.org
        for name, unit, role in (("gd-officer", "GD", "officer"), ("sc-officer", "SC", "officer"),
                                 ("hq-super", "HQ", "supervisor"), ("auditor", "HQ", "auditor"),
                                 ("clerk", "GD-DESIGN", "clerk")):
            await add_account(instance.store, org, name, unit=unit, role=role, password=PASSWORD)
        router = Router(store=instance.store, bus=instance.bus, org=org, master=instance.master)
        ring = await load_keyring(instance.store, instance.master)
        kid, public = ring.active_public_key()
        for index, unit in enumerate(["GD", "GD-DESIGN", "SC", "HQ"] * 3):
            body = json.dumps({"description": f"{SECRET_TEXT} #{index}"}).encode()
            sub = Submission(id=f"sub-{index:04d}-{secrets.token_hex(4)}",
                             occurred_at=datetime.now(UTC), correlation_id="corr-casework",
                             kind="report", channel="web",
                             sealed=seal(body, public, kid=kid, purpose="report"),
                             sealed_by="client", category="corruption", unit=unit,
                             receipt_hash=secrets.token_hex(32), reply_key=bytes(32))
            await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
            await asyncio.sleep(0.002)  # distinct opened_at for a stable order
        yield instance


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:  # type: ignore[type-arg]
    return await officer_headers(client, username, password)


async def cases(client: TestClient, headers: dict[str, str], query: str = "") -> Any:  # type: ignore[type-arg]
    resp = await client.get(f"/api/v1/cases{query}", headers=headers)
    return resp.status, await resp.json()


async def test_login_refuses_wrong_password_unknown_user_and_bad_types(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """Wrong credentials are 401 alike; non-string fields are 400; no token without a login."""
    for body in ({"username": "gd-officer", "password": "wrong"},
                 {"username": "nobody", "password": PASSWORD}):
        assert 401 == (await client.post("/api/v1/auth/login", json=body)).status
    bad = await client.post("/api/v1/auth/login", json={"username": {"$gt": ""},
                                                        "password": PASSWORD})
    assert 400 == bad.status
    assert 401 == (await client.get("/api/v1/cases")).status
    assert 401 == (await client.get("/api/v1/cases", headers={
        "Authorization": "Bearer forged"})).status


async def stored_ids(env: Embedded, units: frozenset[str] | None) -> set[str]:
    return {c.id for c in await env.store.cases.query(CaseQuery(units=units, limit=500))}


async def test_unit_scope_is_applied_in_the_query(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """An officer sees their unit and those below it; HQ sees all; others' cases are 404."""
    gd = await login(client, "gd-officer")
    status, page = await cases(client, gd)
    assert 200 == status
    assert await stored_ids(env, env.org.subtree("GD")) == {c["id"] for c in page["items"]}
    assert page["items"]
    sc = await login(client, "sc-officer")
    _, sc_page = await cases(client, sc)
    assert await stored_ids(env, frozenset({"SC"})) == {c["id"] for c in sc_page["items"]}
    foreign = page["items"][0]["id"]
    assert 404 == (await client.get(f"/api/v1/cases/{foreign}", headers=sc)).status
    assert 404 == (await client.get(f"/api/v1/cases/{foreign}/audit", headers=sc)).status
    hq = await login(client, "hq-super")
    _, hq_page = await cases(client, hq, "?limit=200")
    assert 12 == len(hq_page["items"])


async def test_filters_and_pagination_visit_every_case_once(client: TestClient) -> None:  # type: ignore[type-arg]
    """Cursor pages of 5 list all 12 cases newest first without repeats."""
    hq = await login(client, "hq-super")
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await cases(client, hq, f"?limit=5{'&cursor=' + cursor if cursor else ''}")
        assert 200 == status
        seen += [c["id"] for c in page["items"]]
        if not page["next"]:
            break
        cursor = page["next"]
    assert 12 == len(seen) == len(set(seen))
    _, sc_only = await cases(client, hq, "?unit=SC&kind=report&severity=general")
    assert {"SC"} == {c["unit"] for c in sc_only["items"]}


@pytest.mark.parametrize("query", ["?kind[$ne]=x", "?kind=%7B%22%24gt%22%3A%22%22%7D",
                                   "?severity=urgent", "?unit=ATLANTIS", "?cursor=garbage",
                                   "?limit=100000", "?overdue=maybe", "?status[$gt]="])
async def test_hostile_query_parameters_are_400(client: TestClient, query: str) -> None:  # type: ignore[type-arg]
    """Unknown values and operator-looking parameters never reach the store."""
    hq = await login(client, "hq-super")
    status, body = await cases(client, hq, query)
    if query.startswith(("?kind[", "?status[")):
        # Unknown parameter names are ignored; the filter they imitate is not applied.
        assert 200 == status
        assert 12 == len((await cases(client, hq, "?limit=200"))[1]["items"])
    else:
        assert 400 == status
        assert "error" in body


async def test_status_filter_takes_the_statuses_cases_have(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """status= accepts every workflow state, new, archived and purged, and filters by it;
    a value no case can have (in_progress is what a reporter is told) is a clear 400."""
    hq = await login(client, "hq-super")
    engine = WorkflowEngine.load()
    accepted = {*engine.states, "new", "archived", "purged"}
    spec = await (await client.get("/api/v1/openapi.json")).json()
    (status_param,) = [p for p in spec["paths"]["/api/v1/cases"]["get"]["parameters"]
                       if p["name"] == "status"]
    assert accepted == set(status_param["schema"]["enum"])
    _, everything = await cases(client, hq, "?limit=200")
    for value in sorted(accepted):
        status, page = await cases(client, hq, f"?limit=200&status={value}")
        assert 200 == status, value
        expected = {c["id"] for c in everything["items"] if c["status"] == value}
        assert expected == {c["id"] for c in page["items"]}, value
    assert {"acknowledged"} == {c["status"] for c in everything["items"]}  # receipt = ack
    for value in ("in_progress", "answered", "archive", "CLOSED"):
        status, body = await cases(client, hq, f"?status={value}")
        assert 400 == status, value
        assert "invalid_request" == body["error"]["code"]
        assert body["error"]["message"].startswith("status must be one of ")
        assert "registered" in body["error"]["message"]


async def test_opening_content_is_audited_with_reason(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Reading a case decrypts it and appends content.opened with who and why."""
    gd = await login(client, "gd-officer")
    _, page = await cases(client, gd)
    case_id = page["items"][0]["id"]
    resp = await client.get(f"/api/v1/cases/{case_id}?reason=initial%20review", headers=gd)
    assert 200 == resp.status
    case = await resp.json()
    assert case["content"]["description"].startswith(SECRET_TEXT)
    assert "no-store" == resp.headers["Cache-Control"]
    events = (await (await client.get(f"/api/v1/cases/{case_id}/audit",
                                      headers=gd)).json())["events"]
    assert ("content.opened", "gd-officer", {"reason": "initial review"}) == (
        events[-1]["type"], events[-1]["actor"], events[-1]["texts"])
    # The chain holds a reference and a digest, not the text (the purge deletes the text).
    assert {"text_ref", "sha256"} == set(events[-1]["data"]["reason"])
    assert "initial review" not in json.dumps(events[-1]["data"])


async def test_roles_limit_what_each_can_do(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Auditors verify but do not list cases; officers do not run verification."""
    auditor = await login(client, "auditor")
    assert 403 == (await client.get("/api/v1/cases", headers=auditor)).status
    verify = await client.get("/api/v1/audit/verify", headers=auditor)
    assert 200 == verify.status
    # 12 cases of 2 events, plus the system chain: the auditor's TOTP enrolment (2 events).
    assert {"ok": True, "cases": 13, "events": 26, "first_broken": None} == {
        k: v for k, v in (await verify.json()).items() if k != "checkpoints"}
    officer = await login(client, "gd-officer")
    assert 403 == (await client.get("/api/v1/audit/verify", headers=officer)).status
    clerk = await login(client, "clerk")
    _, page = await cases(client, clerk)
    assert await stored_ids(env, frozenset({"GD-DESIGN"})) == {c["id"] for c in page["items"]}


async def test_logs_never_carry_content_or_passwords(client: TestClient) -> None:  # type: ignore[type-arg]
    """Sign-in, listing and opening log no password, token or case content."""
    with capture_logs() as logs:
        headers = await login(client, "gd-officer")
        await client.post("/api/v1/auth/login", json={"username": "gd-officer",
                                                      "password": "guess-guess-guess"})
        _, page = await cases(client, headers)
        await client.get(f"/api/v1/cases/{page['items'][0]['id']}", headers=headers)
    flat = json.dumps(logs, ensure_ascii=False, default=str)
    assert logs
    for secret in (PASSWORD, "guess-guess-guess", SECRET_TEXT, headers["Authorization"][7:]):
        assert secret not in flat


async def test_openapi_lists_the_contract_paths(client: TestClient) -> None:  # type: ignore[type-arg]
    """The served OpenAPI document covers CONTRACT §3's implemented endpoints."""
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/auth/login", "/api/v1/cases", "/api/v1/cases/{case_id}",
            "/api/v1/cases/{case_id}/audit", "/api/v1/audit/verify"} <= set(spec["paths"])
