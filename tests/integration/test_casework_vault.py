"""Identity vault: pseudonymised case view; disclosure asked, decided by another
supervisor, shown only to the requester after approval; every step audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.services import add_account, audit_trail
from tests.support.casework_cases import sealed_case
from tests.support.embedded import Embedded, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
IDENTITY = {"name": "王小明", "phone": "+86 138 0000 0000"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, unit, role in (("gd-officer", "GD", "officer"), ("gd-officer2", "GD", "officer"),
                                 ("gd-super", "GD", "supervisor"),
                                 ("sc-super", "SC", "supervisor"),
                                 ("hq-super", "HQ", "supervisor")):
            await add_account(instance.store, instance.org, name, unit=unit, role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def call(client: TestClient, method: str, path: str, who: str,  # type: ignore[type-arg]
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = await officer_headers(client, who, PASSWORD)
    resp = await client.request(method, path, json=body, headers=headers)
    return resp.status, await resp.json()


async def test_case_view_is_pseudonymised(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """GET /cases/{id} shows the facts and that an identity is sealed, not the identity."""
    case = await sealed_case(env, "named", payload={"description": "facts", "identity": IDENTITY})
    status, view = await call(client, "GET", f"/api/v1/cases/{case.id}", "gd-officer")
    assert (200, {"description": "facts"}, {"sealed": True}) == (
        status, view["content"], view["identity"])
    assert IDENTITY["name"] not in json.dumps(view, ensure_ascii=False)


async def test_disclosure_denied_then_approved_then_shown_to_the_requester_only(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Four eyes: the requester cannot decide; after approval only they see the identity."""
    case = await sealed_case(env, "named", payload={"description": "facts", "identity": IDENTITY})
    base = f"/api/v1/cases/{case.id}"
    assert 422 == (await call(client, "POST", f"{base}/disclosures", "gd-officer", {}))[0]
    status, first = await call(client, "POST", f"{base}/disclosures", "gd-officer",
                               {"reason": "need to interview the witness"})
    assert (201, "requested") == (status, first["status"])
    assert 409 == (await call(client, "POST", f"{base}/disclosures", "gd-officer",
                              {"reason": "again"}))[0]
    _, pending = await call(client, "GET", "/api/v1/disclosures", "gd-super")
    assert [first["id"]] == [p["id"] for p in pending["items"]]
    _, sc_pending = await call(client, "GET", "/api/v1/disclosures", "sc-super")
    assert [] == sc_pending["items"]  # not their unit: not even the request shows
    decide = f"{base}/disclosures/{first['id']}/decision"
    assert 403 == (await call(client, "POST", decide, "gd-officer", {"decision": "approve"}))[0]
    assert 404 == (await call(client, "POST", decide, "sc-super", {"decision": "approve"}))[0]
    status, denied = await call(client, "POST", decide, "gd-super",
                                {"decision": "deny", "note": "not yet"})
    assert (200, "denied", "gd-super") == (status, denied["status"], denied["decided_by"])
    assert 409 == (await call(client, "POST", decide, "hq-super", {"decision": "approve"}))[0]
    assert 403 == (await call(client, "GET", f"{base}/identity?request={first['id']}",
                              "gd-officer"))[0]
    # A supervisor's own request needs another supervisor.
    _, own = await call(client, "POST", f"{base}/disclosures", "gd-super",
                        {"reason": "protective measures"})
    assert 403 == (await call(client, "POST", f"{base}/disclosures/{own['id']}/decision",
                              "gd-super", {"decision": "approve"}))[0]
    _, second = await call(client, "POST", f"{base}/disclosures", "gd-officer",
                           {"reason": "the interview is scheduled"})
    status, approved = await call(client, "POST", f"{base}/disclosures/{second['id']}/decision",
                                  "hq-super", {"decision": "approve"})
    assert (200, "approved") == (status, approved["status"])
    with capture_logs() as logs:
        status, shown = await call(client, "GET", f"{base}/identity?request={second['id']}",
                                   "gd-officer")
    assert (200, IDENTITY) == (status, shown["identity"])
    assert IDENTITY["name"] not in json.dumps(logs, ensure_ascii=False, default=str)
    for other in ("gd-officer2", "hq-super", "gd-super"):
        assert 403 == (await call(client, "GET", f"{base}/identity?request={second['id']}",
                                  other))[0]
    events = [(e.actor, e.type) for e in await env.store.audit.events(case.id)
              if e.type.startswith("identity.")]
    assert [("gd-officer", "identity.disclosure_requested"),
            ("gd-super", "identity.disclosure_denied"),
            ("gd-super", "identity.disclosure_requested"),
            ("gd-officer", "identity.disclosure_requested"),
            ("hq-super", "identity.disclosure_approved"),
            ("gd-officer", "identity.opened")] == events
    reasons = [e["texts"].get("reason") for e in await audit_trail(env.store, case.id)
               if e["type"] == "identity.opened"]
    assert ["the interview is scheduled"] == reasons


async def test_recusal_after_approval_takes_the_identity_away(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """A requester who declares a conflict loses the case, the identity with it."""
    case = await sealed_case(env, "named", payload={"description": "facts", "identity": IDENTITY})
    base = f"/api/v1/cases/{case.id}"
    _, asked = await call(client, "POST", f"{base}/disclosures", "gd-officer", {"reason": "why"})
    await call(client, "POST", f"{base}/disclosures/{asked['id']}/decision", "gd-super",
               {"decision": "approve"})
    assert 200 == (await call(client, "POST", f"{base}/actions", "gd-officer",
                              {"action": "declare_recusal", "ground": "relative"}))[0]
    assert 404 == (await call(client, "GET", f"{base}/identity?request={asked['id']}",
                              "gd-officer"))[0]


async def test_anonymous_reports_have_nothing_to_disclose(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """A disclosure request on an anonymous report is 409 and leaves no request."""
    case = await sealed_case(env, "anonymous")
    status, _ = await call(client, "POST", f"/api/v1/cases/{case.id}/disclosures", "gd-officer",
                           {"reason": "who?"})
    assert 409 == status
    assert [] == await env.store.records.list("disclosure")
