"""The officers' pages without a browser: session cookie flags, CSRF, sign-out, scope."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.casefile import apply_workflow
from hotline.clock import utcnow
from hotline.domain.case import Case
from hotline.services import add_account
from hotline.workflow import Actor, WorkflowEngine
from tests.support.casework_cases import sealed_case
from tests.support.embedded import embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
FACTS = "仓库管理员虚报加班费"


@pytest.fixture
async def world(tmp_path: Path, aiohttp_client: ClientFactory
                ) -> AsyncIterator[tuple[TestClient, Case, Case]]:  # type: ignore[type-arg]
    async with embedded(tmp_path) as env:
        await add_account(env.store, env.org, "gd-officer", unit="GD", role="officer",
                          password=PASSWORD)
        await add_account(env.store, env.org, "gd-super", unit="GD", role="supervisor",
                          password=PASSWORD)
        mine = await sealed_case(env, "gd", payload={"description": FACTS})
        foreign = await sealed_case(env, "sc", unit="SC")
        client = await aiohttp_client(create_app(CaseworkDeps(
            env.settings, env.store, env.bus, env.org, env.master)))
        yield client, mine, foreign


async def sign_in(client: TestClient, username: str) -> str:  # type: ignore[type-arg]
    resp = await client.post("/ui/login", data={"username": username, "password": PASSWORD},
                             allow_redirects=False)
    assert 303 == resp.status
    cookie = resp.headers["Set-Cookie"]
    assert ("HttpOnly", "SameSite=Strict", "Path=/ui") == tuple(
        flag for flag in ("HttpOnly", "SameSite=Strict", "Path=/ui") if flag in cookie)
    return resp.headers["Location"]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


async def test_pages_need_a_session_and_forms_need_its_csrf_token(world: tuple[
        TestClient, Case, Case]) -> None:  # type: ignore[type-arg]
    """No cookie: to sign-in; a form without the session's token is 403 and changes nothing."""
    client, mine, _ = world
    resp = await client.get("/ui/queue", allow_redirects=False)
    assert (303, "/ui/login") == (resp.status, resp.headers["Location"])
    assert "/ui/queue" == await sign_in(client, "gd-officer")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/ui/"))["hotline_session"]
    as_bearer = await client.get("/api/v1/cases",
                                 headers={"Authorization": f"Bearer {cookie.value}"})
    assert 401 == as_bearer.status  # a page session is not an API token
    page = await (await client.get(f"/ui/cases/{mine.id}")).text()
    assert FACTS not in page  # content only on demand, with a reason
    forged = await client.post(f"/ui/cases/{mine.id}/disclosures",
                               data={"csrf": "forged", "reason": "x"}, allow_redirects=False)
    assert 403 == forged.status
    ok = await client.post(f"/ui/cases/{mine.id}/actions", allow_redirects=False, data={
        "csrf": csrf_of(page), "action": "declare_recusal", "f.ground": "witness"})
    assert 303 == ok.status
    assert 404 == (await client.get(f"/ui/cases/{mine.id}")).status  # recused: gone


async def test_scope_and_audited_open_apply_to_pages(world: tuple[TestClient, Case, Case]) -> None:  # type: ignore[type-arg]
    """Another unit's case is 404 on the page too; opening with a reason shows the content."""
    client, mine, foreign = world
    await sign_in(client, "gd-officer")
    assert 404 == (await client.get(f"/ui/cases/{foreign.id}")).status
    with capture_logs() as logs:
        page = await (await client.get(f"/ui/cases/{mine.id}?reason=triage")).text()
    assert FACTS in page
    assert "content.opened" in page  # the history shows the open just made
    assert FACTS not in str(logs)
    queue = await (await client.get("/ui/queue")).text()
    assert (mine.reference in queue, foreign.reference in queue) == (True, False)


async def test_every_status_the_queue_offers_is_one_the_api_accepts(
        world: tuple[TestClient, Case, Case]) -> None:  # type: ignore[type-arg]
    """The queue's status select offers the workflows' states (not a reporter's
    in_progress/answered), and each option filters the API's case list without a 400."""
    client, mine, _ = world
    await sign_in(client, "gd-officer")
    queue = await (await client.get("/ui/queue")).text()
    select = re.search(r'<select name="status">(.*?)</select>', queue, re.S)
    assert select is not None
    offered = [value if attribute else text for attribute, value, text in re.findall(
        r'<option( value="([^"]*)")?[^>]*>([^<]+)</option>', select.group(1))]
    assert "" == offered.pop(0)  # "any": no filter
    assert {"registered", "investigating", "response_sent", "closed", "archived"} <= set(offered)
    assert not {"in_progress", "answered"} & set(offered)
    headers = await officer_headers(client, "gd-officer", PASSWORD)
    for value in offered:
        resp = await client.get(f"/api/v1/cases?status={value}", headers=headers)
        assert 200 == resp.status, value
    page = await (await client.get(f"/ui/queue?status={mine.status}")).text()
    assert mine.reference in page
    refused = await client.get("/ui/queue?status=in_progress")
    assert 400 == refused.status


async def test_supervisor_must_enrol_and_sign_out_ends_the_session(
        world: tuple[TestClient, Case, Case]) -> None:  # type: ignore[type-arg]
    """A supervisor lands on enrolment and cannot reach the queue; sign-out revokes."""
    client, _, _ = world
    assert "/ui/enrol" == await sign_in(client, "gd-super")
    resp = await client.get("/ui/queue", allow_redirects=False)
    assert (303, "/ui/enrol") == (resp.status, resp.headers["Location"])
    enrol = await (await client.get("/ui/enrol")).text()
    assert 'id="totp-secret"' in enrol
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/ui/"))["hotline_session"]
    out = await client.post("/ui/logout", data={"csrf": csrf_of(enrol)}, allow_redirects=False)
    assert 303 == out.status
    client.session.cookie_jar.update_cookies({"hotline_session": cookie.value},
                                             client.make_url("/ui/"))
    resp = await client.get("/ui/enrol", allow_redirects=False)
    assert (303, "/ui/login") == (resp.status, resp.headers["Location"])  # replay refused


async def test_choice_and_unit_fields_are_selects_to_choose_from(
        tmp_path: Path, aiohttp_client: ClientFactory) -> None:
    """root_cause_category and target_unit are selects starting with an empty "choose…"
    (nothing is picked silently); a unit outside the organisation is refused."""
    async with embedded(tmp_path) as env:
        await add_account(env.store, env.org, "gd-officer", unit="GD", role="officer",
                          password=PASSWORD)
        engine, officer, now = WorkflowEngine.load(), Actor("gd-officer", "officer"), utcnow()
        cases = {}
        for kind, actions in (("complaint", ("acknowledge", "accept_complaint")),
                              ("report", ("acknowledge",))):
            case = await sealed_case(env, kind, kind=kind)
            state = engine.start(engine.definition_for(kind, "general", False), case.opened_at)
            for action in actions:
                state = engine.apply(state, action, officer, {}, now)
            cases[kind] = await env.store.cases.update(apply_workflow(case, state, engine),
                                                       expected_version=case.version)
        client = await aiohttp_client(create_app(CaseworkDeps(
            env.settings, env.store, env.bus, env.org, env.master)))
        await sign_in(client, "gd-officer")

        def select(page: str, name: str) -> str:
            found = re.search(rf'<select name="f\.{name}" required>\s*'
                              r'<option value="">choose…</option>(.*?)</select>', page, re.S)
            assert found is not None, name
            return found[1]

        page = await (await client.get(f"/ui/cases/{cases['complaint'].id}")).text()
        assert 'value="billing_error"' in select(page, "root_cause_category")
        page = await (await client.get(f"/ui/cases/{cases['report'].id}")).text()
        assert '<option value="HQ">HQ · ' in select(page, "target_unit")
        report = cases["report"]
        for unit, status in (("XX", "acknowledged"), ("HQ", "forwarded")):
            resp = await client.post(f"/ui/cases/{report.id}/actions", allow_redirects=False,
                                     data={"csrf": csrf_of(page), "action": "forward",
                                           "f.target_unit": unit, "f.reason": "the GM"})
            assert 303 == resp.status
            stored = await env.store.cases.get(report.id)
            assert stored is not None
            assert (unit, status) == (unit, stored.status)
