"""The authorisation matrix: every casework endpoint × every role × own unit, other unit,
recused, subject — allowed or denied as expected, and nothing leaks into lists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps, create_app
from hotline.domain.case import ROLES, Case
from hotline.services import add_account
from tests.support.casework_cases import sealed_case
from tests.support.embedded import Embedded, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
RELATIONS = ("own", "other", "recused", "subject")
HANDLERS = frozenset({"officer", "supervisor"})
READERS = frozenset({"clerk", "officer", "supervisor", "admin"})  # content opens
ALL = frozenset(ROLES)


@dataclass(frozen=True)
class Endpoint:
    """One casework endpoint: who may use it on a case they can see."""

    method: str
    path: str  # {case} and {request} are filled in
    roles: frozenset[str]
    body: dict[str, Any] | None = None
    auditor_any_unit: bool = False  # auditors read every unit's audit trails


# Bodies are chosen so that an allowed call changes nothing (it fails validation with
# 400/409/422 after the authorisation checks), so all combinations share one setup.
ENDPOINTS = (
    Endpoint("GET", "/api/v1/cases/{case}", READERS),
    Endpoint("GET", "/api/v1/cases/{case}/audit", ALL, auditor_any_unit=True),
    Endpoint("GET", "/api/v1/cases/{case}/audit/export", ALL, auditor_any_unit=True),
    Endpoint("POST", "/api/v1/cases/{case}/messages", HANDLERS, {}),
    Endpoint("POST", "/api/v1/cases/{case}/actions", HANDLERS,
             {"action": "change_severity", "severity": "catastrophic"}),
    Endpoint("POST", "/api/v1/cases/{case}/disclosures", HANDLERS, {}),
    Endpoint("GET", "/api/v1/cases/{case}/disclosures", HANDLERS),
    Endpoint("POST", "/api/v1/cases/{case}/disclosures/{request}/decision",
             frozenset({"supervisor"}), {"decision": "maybe"}),
    Endpoint("GET", "/api/v1/cases/{case}/identity?request={request}", frozenset()),
    Endpoint("POST", "/api/v1/cases/{case}/notes", HANDLERS, {}),
    Endpoint("GET", "/api/v1/cases/{case}/notes", HANDLERS | {"admin"}),
)


def username(role: str, relation: str) -> str:
    return f"{role}-{'sc' if relation == 'other' else 'gd'}"


@dataclass
class World:
    env: Embedded
    client: TestClient  # type: ignore[type-arg]
    cases: dict[str, Case]
    request_ids: dict[str, str]


@pytest.fixture
async def world(tmp_path: Path, aiohttp_client: ClientFactory) -> AsyncIterator[World]:
    async with embedded(tmp_path) as env:
        for role in ROLES:
            await add_account(env.store, env.org, f"{role}-gd", unit="GD", role=role,
                              password=PASSWORD, employee_id=f"E-{role}")
            await add_account(env.store, env.org, f"{role}-sc", unit="SC", role=role,
                              password=PASSWORD)
        await add_account(env.store, env.org, "requester", unit="GD", role="officer",
                          password=PASSWORD)
        named = {"description": "facts", "identity": {"name": "王小明"}}
        cases = {
            "own": await sealed_case(env, "plain", payload=named),
            "recused": await sealed_case(env, "recused", payload=named,
                                         excluded=tuple(f"user:{r}-gd" for r in ROLES)),
            "subject": await sealed_case(env, "subject", payload=named,
                                         excluded=tuple(f"E-{r}" for r in ROLES)),
        }
        cases["other"] = cases["own"]
        client = await aiohttp_client(create_app(CaseworkDeps(
            env.settings, env.store, env.bus, env.org, env.master)))
        requests: dict[str, str] = {}
        for relation in ("own", "recused", "subject"):
            # Someone else's request (approved), so the decision and identity endpoints
            # have something to refuse.
            headers = await officer_headers(client, "requester", PASSWORD)
            resp = await client.post(f"/api/v1/cases/{cases[relation].id}/disclosures",
                                     json={"reason": "interview"}, headers=headers)
            assert 201 == resp.status, await resp.text()
            requests[relation] = (await resp.json())["id"]
        requests["other"] = requests["own"]
        yield World(env, client, cases, requests)


def expected_allowed(endpoint: Endpoint, role: str, relation: str) -> bool:
    if relation in ("recused", "subject"):
        return False
    if relation == "other" and not (role == "auditor" and endpoint.auditor_any_unit):
        return False
    return role in endpoint.roles


async def test_every_endpoint_role_and_relation(world: World) -> None:
    """11 case endpoints × 5 roles × 4 relations: allowed calls pass, denied are 403/404."""
    mismatches = []
    for endpoint in ENDPOINTS:
        for role in ROLES:
            for relation in RELATIONS:
                headers = await officer_headers(world.client, username(role, relation),
                                                PASSWORD)
                path = endpoint.path.format(case=world.cases[relation].id,
                                            request=world.request_ids[relation])
                resp = await world.client.request(endpoint.method, path, json=endpoint.body,
                                                  headers=headers)
                allowed = resp.status not in (401, 403, 404)
                if resp.status >= 500 or allowed != expected_allowed(endpoint, role, relation):
                    mismatches.append((endpoint.method, endpoint.path, role, relation,
                                       resp.status))
    assert [] == mismatches


async def test_lists_show_only_visible_cases(world: World) -> None:
    """Lists and pending disclosures never name a recused, subject or foreign case."""
    for role in ROLES:
        for unit in ("gd", "sc"):
            headers = await officer_headers(world.client, f"{role}-{unit}", PASSWORD)
            resp = await world.client.get("/api/v1/cases?limit=200", headers=headers)
            if role == "auditor":
                assert 403 == resp.status
                continue
            ids = {c["id"] for c in (await resp.json())["items"]}
            expected = {world.cases["own"].id} if unit == "gd" else set()
            assert (role, unit, expected) == (role, unit, ids)
            stubs = await world.client.get("/api/v1/stubs", headers=headers)
            assert [] == (await stubs.json())["items"]
    headers = await officer_headers(world.client, "supervisor-gd", PASSWORD)
    pending = await (await world.client.get("/api/v1/disclosures", headers=headers)).json()
    assert [world.cases["own"].id] == [p["case_id"] for p in pending["items"]]


async def test_invisible_and_missing_cases_answer_alike(world: World) -> None:
    """A case the caller may not see is indistinguishable from one that does not exist."""
    headers = await officer_headers(world.client, "officer-gd", PASSWORD)
    answers = []
    for case_id in (world.cases["subject"].id, world.cases["recused"].id, "c_nothing-here"):
        resp = await world.client.get(f"/api/v1/cases/{case_id}", headers=headers)
        answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1] == answers[2]


async def test_admin_only_account_endpoints(world: World) -> None:
    """Account administration is for admins; every other role gets 403."""
    for role in ROLES:
        headers = await officer_headers(world.client, f"{role}-gd", PASSWORD)
        resp = await world.client.get("/api/v1/accounts", headers=headers)
        assert (role, 200 if role == "admin" else 403) == (role, resp.status)
        verify = await world.client.get("/api/v1/audit/verify", headers=headers)
        assert (role, role in ("admin", "auditor", "supervisor")) == (
            role, verify.status == 200)
