"""Issue 5's remaining workspace: sealed case notes, the one-time password that must be
changed, account administration and manual intake pages (with a follow-up receipt), and
the queue's channel and assigned-to-me filters — through the API and the pages."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.adapters.sqlite_store import SqliteStore
from hotline.clock import utcnow
from hotline.domain.case import CaseQuery
from hotline.services import add_account, audit_trail
from router.worker import Router
from tests.support.casework_cases import sealed_case
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
NOTE = "约谈了项目经理，他否认收取回扣"
LETTER = "仓库主管把报废材料私自变卖"


@dataclass
class World:
    env: Embedded
    bus: RecordingBus
    client: TestClient  # type: ignore[type-arg]
    aiohttp_client: ClientFactory


@pytest.fixture
async def world(tmp_path: Path, aiohttp_client: ClientFactory) -> AsyncIterator[World]:
    async with embedded(tmp_path) as env:
        for name, unit, role in (("gd-officer", "GD", "officer"), ("gd-clerk", "GD", "clerk"),
                                 ("sc-officer", "SC", "officer"),
                                 ("gd-auditor", "GD", "auditor")):
            await add_account(env.store, env.org, name, unit=unit, role=role, password=PASSWORD)
        bus = RecordingBus(env.bus)
        client = await aiohttp_client(create_app(CaseworkDeps(
            env.settings, env.store, bus, env.org, env.master, env.receipts)))
        yield World(env, bus, client, aiohttp_client)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


async def ui_sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:  # type: ignore[type-arg]
    """Sign in on the page; where the sign-in sends the browser."""
    resp = await client.post("/ui/login", data={"username": username, "password": password},
                             allow_redirects=False)
    assert 303 == resp.status, await resp.text()
    return resp.headers["Location"]


# --- case notes --------------------------------------------------------------------------


async def test_notes_are_sealed_listed_in_order_and_every_open_is_audited(world: World) -> None:
    """A note is stored sealed (not in clear), opens for readers, and each step is audited."""
    case = await sealed_case(world.env, "noted")
    headers = await officer_headers(world.client, "gd-officer", PASSWORD)
    with capture_logs() as logs:
        for body in (NOTE, "second note"):
            resp = await world.client.post(f"/api/v1/cases/{case.id}/notes",
                                           json={"body": body}, headers=headers)
            assert 201 == resp.status, await resp.text()
        listed = await world.client.get(f"/api/v1/cases/{case.id}/notes?reason=review",
                                        headers=headers)
    assert 200 == listed.status
    items = (await listed.json())["items"]
    assert [(NOTE, "gd-officer"), ("second note", "gd-officer")] == [
        (n["body"], n["author"]) for n in items]
    records = await world.env.store.records.list(f"case_note:{case.id}")
    assert 2 == len(records)
    stored = json.dumps([r.doc for r in records], ensure_ascii=False)
    assert NOTE not in stored
    assert NOTE not in json.dumps(logs, ensure_ascii=False, default=str)
    events = await world.env.store.audit.events(case.id)
    assert ["note.added", "note.added", "notes.opened"] == [
        e.type for e in events if e.type.startswith("note")]
    assert ({"notes": 2}, {"reason": "review"}) == (
        {"notes": events[-1].data["notes"]},
        (await audit_trail(world.env.store, case.id))[-1]["texts"])
    assert [] == await world.env.store.cases.messages(case.id)  # never to the reporter


async def test_notes_follow_the_case_access_and_validate_input(world: World) -> None:
    """Other units and recused officers get 404; clerks 403; an empty note 400."""
    case = await sealed_case(world.env, "scoped")
    recused = await sealed_case(world.env, "recused", excluded=("user:gd-officer",))
    sc = await officer_headers(world.client, "sc-officer", PASSWORD)
    gd = await officer_headers(world.client, "gd-officer", PASSWORD)
    clerk = await officer_headers(world.client, "gd-clerk", PASSWORD)
    path = f"/api/v1/cases/{case.id}/notes"
    assert 404 == (await world.client.post(path, json={"body": "x"}, headers=sc)).status
    assert 404 == (await world.client.post(f"/api/v1/cases/{recused.id}/notes",
                                           json={"body": "x"}, headers=gd)).status
    assert 403 == (await world.client.get(path, headers=clerk)).status
    for body in ({}, {"body": "  "}, {"body": 5}, {"body": "x", "extra": 1},
                 {"body": "x" * 20_001}):
        assert (body, 400) == (body, (await world.client.post(path, json=body,
                                                              headers=gd)).status)


async def test_notes_on_the_case_page(world: World) -> None:
    """The page's form adds a note (CSRF), and opening the content shows the notes."""
    case = await sealed_case(world.env, "page")
    await ui_sign_in(world.client, "gd-officer")
    page = await (await world.client.get(f"/ui/cases/{case.id}")).text()
    assert 'action="/ui/cases/' + case.id + '/notes"' in page
    forged = await world.client.post(f"/ui/cases/{case.id}/notes",
                                     data={"csrf": "forged", "body": NOTE},
                                     allow_redirects=False)
    assert 403 == forged.status
    added = await world.client.post(f"/ui/cases/{case.id}/notes",
                                    data={"csrf": csrf_of(page), "body": NOTE},
                                    allow_redirects=False)
    assert (303, "Note+added") == (added.status, added.headers["Location"].split("flash=")[1])
    assert NOTE not in await (await world.client.get(f"/ui/cases/{case.id}")).text()
    opened = await (await world.client.get(f"/ui/cases/{case.id}?reason=interview")).text()
    assert NOTE in opened


# --- must_change_password ------------------------------------------------------------------


async def test_one_time_password_must_be_changed_before_anything_else(world: World) -> None:
    """An admin-created account gets 403 password_change_required until it changes it."""
    admin = await officer_headers(world.client, "admin", world.env.admin_password)
    created = await (await world.client.post("/api/v1/accounts", headers=admin, json={
        "username": "new-officer", "role": "officer", "unit": "GD"})).json()
    one_time = created["one_time_password"]
    login = await (await world.client.post("/api/v1/auth/login", json={
        "username": "new-officer", "password": one_time})).json()
    assert login["password_change_required"] is True
    headers = {"Authorization": f"Bearer {login['token']}"}
    for method, path in (("GET", "/api/v1/cases"), ("GET", "/api/v1/dashboard"),
                         ("POST", "/api/v1/intake/manual")):
        resp = await world.client.request(method, path, headers=headers, json={})
        body = await resp.json()
        assert (path, 403, "password_change_required") == (path, resp.status,
                                                          body["error"]["code"])
    changed = await world.client.post("/api/v1/auth/password", headers=headers,
                                      json={"current": one_time, "new": PASSWORD + "!"})
    assert 200 == changed.status
    login = await (await world.client.post("/api/v1/auth/login", json={
        "username": "new-officer", "password": PASSWORD + "!"})).json()
    assert "password_change_required" not in login
    assert 200 == (await world.client.get("/api/v1/cases", headers={
        "Authorization": f"Bearer {login['token']}"})).status
    # A reset sets it again.
    reset = await (await world.client.post("/api/v1/accounts/new-officer/reset",
                                           headers=admin, json={})).json()
    login = await (await world.client.post("/api/v1/auth/login", json={
        "username": "new-officer", "password": reset["one_time_password"]})).json()
    again = await world.client.get("/api/v1/cases", headers={
        "Authorization": f"Bearer {login['token']}"})
    assert 403 == again.status


async def test_pages_send_a_one_time_password_to_the_password_page(world: World) -> None:
    """Every page redirects to /ui/password; sign-out still works; after the change, on."""
    _, one_time = await add_account(world.env.store, world.env.org, "temp-clerk", unit="GD",
                                    role="clerk")
    assert one_time is not None
    assert "/ui/queue" == await ui_sign_in(world.client, "temp-clerk", one_time)
    for path in ("/ui/queue", "/ui/intake", "/ui/negative-list"):
        resp = await world.client.get(path, allow_redirects=False)
        assert (path, 303, "/ui/password") == (path, resp.status, resp.headers["Location"])
    page = await (await world.client.get("/ui/password")).text()
    assert 'id="password-required"' in page
    mismatch = await world.client.post("/ui/password", data={
        "csrf": csrf_of(page), "current": one_time, "new": PASSWORD, "repeat": PASSWORD + "x"})
    assert 422 == mismatch.status
    wrong = await world.client.post("/ui/password", data={
        "csrf": csrf_of(page), "current": "not the password", "new": PASSWORD,
        "repeat": PASSWORD})
    assert 403 == wrong.status
    done = await world.client.post("/ui/password", allow_redirects=False, data={
        "csrf": csrf_of(page), "current": one_time, "new": PASSWORD, "repeat": PASSWORD})
    assert (303, "/ui/queue?flash=Password+changed") == (done.status, done.headers["Location"])
    assert 200 == (await world.client.get("/ui/intake", allow_redirects=False)).status
    account = await world.env.store.accounts.get("temp-clerk")
    assert account is not None
    assert not account.must_change_password
    # Sign-out is allowed with a pending change, too.
    _, other = await add_account(world.env.store, world.env.org, "temp-2", unit="GD",
                                 role="officer")
    assert other is not None
    world.client.session.cookie_jar.clear()
    await ui_sign_in(world.client, "temp-2", other)
    page = await (await world.client.get("/ui/password")).text()
    out = await world.client.post("/ui/logout", data={"csrf": csrf_of(page)},
                                  allow_redirects=False)
    assert (303, "/ui/login?flash=Signed+out") == (out.status, out.headers["Location"])


# --- account administration page ----------------------------------------------------------


async def test_admin_manages_accounts_on_the_page(world: World) -> None:
    """Create (one-time password shown once), change unit and role, disable, reset."""
    await officer_headers(world.client, "admin", world.env.admin_password)  # enrols TOTP
    authenticator = _authenticator(world)
    password = authenticator.changed["admin"][1]
    resp = await world.client.post("/ui/login", allow_redirects=False, data={
        "username": "admin", "password": password, "totp": authenticator.code("admin")})
    assert 303 == resp.status
    page = await (await world.client.get("/ui/accounts")).text()
    assert 'id="account-gd-officer"' in page
    csrf = csrf_of(page)
    created = await world.client.post("/ui/accounts", data={
        "csrf": csrf, "username": "ui-clerk", "role": "clerk", "unit": "GD",
        "employee_id": "E-77"})
    html = await created.text()
    assert 201 == created.status
    match = re.search(r'id="one-time-password">([^<]+)<', html)
    assert match is not None
    assert "no-store" == created.headers["Cache-Control"]
    listing = await (await world.client.get("/ui/accounts")).text()
    assert match.group(1) not in listing
    assert "E-77" in listing
    moved = await world.client.post("/ui/accounts/ui-clerk", allow_redirects=False, data={
        "csrf": csrf, "role": "officer", "unit": "SC"})
    assert "Saved" in moved.headers["Location"]
    await world.client.post("/ui/accounts/ui-clerk", data={"csrf": csrf, "disabled": "true"})
    account = await world.env.store.accounts.get("ui-clerk")
    assert account is not None
    assert ("officer", "SC", True, "E-77") == (account.role, account.unit, account.disabled,
                                               account.employee_id)
    reset = await world.client.post("/ui/accounts/gd-officer/reset", data={"csrf": csrf})
    assert 'id="one-time-password"' in await reset.text()
    reset_account = await world.env.store.accounts.get("gd-officer")
    assert reset_account is not None
    assert reset_account.must_change_password
    forged = await world.client.post("/ui/accounts", data={
        "csrf": "forged", "username": "x-1", "role": "clerk", "unit": "GD"})
    assert 403 == forged.status
    events = [(e.type, e.actor) for e in await world.env.store.audit.events("_system")
              if e.type in ("account.created", "account.changed", "account.reset")]
    assert [("account.created", "admin"), ("account.changed", "admin"),
            ("account.changed", "admin"), ("account.reset", "admin")] == events
    world.client.session.cookie_jar.clear()
    await ui_sign_in(world.client, "gd-clerk")
    refused = await world.client.get("/ui/accounts")
    assert 403 == refused.status


def _authenticator(world: World) -> Any:
    from tests.support.officer_login import authenticator_of

    return authenticator_of(world.client)


# --- manual intake page, with a receipt the reporter follows up with ------------------------


async def test_manual_intake_page_gives_a_receipt_that_opens_the_follow_up(
        world: World) -> None:
    """A clerk registers a visit with a scanned letter; the receipt, shown once, logs the
    reporter in to the public follow-up, where an officer's reply arrives."""
    from intake.app import IntakeDeps
    from intake.app import create_app as create_intake

    await ui_sign_in(world.client, "gd-clerk")
    form_page = await (await world.client.get("/ui/intake")).text()
    assert 'name="transcript_confirmed"' in form_page

    def intake_form(page: str, *extra: tuple[str, str]) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form_id = re.search(r'name="form_id" value="([^"]+)"', page)
        assert form_id is not None
        for key, value in (("csrf", csrf_of(page)), ("form_id", form_id.group(1)),
                           ("channel", "visit"), ("received_on", "2026-03-02"),
                           ("kind", "report"), ("report_category", "fraud"),
                           ("complaint_category", "billing"), ("unit", "GD"),
                           ("description", LETTER), ("identity_name", "李四"), *extra):
            form.add_field(key, value)
        form.add_field("letter", b"%PDF-1.4 scanned", filename="letter.pdf",
                       content_type="application/pdf")
        return form

    unconfirmed = await world.client.post("/ui/intake", data=intake_form(form_page))
    assert 422 == unconfirmed.status
    retry_page = await unconfirmed.text()
    assert LETTER in retry_page  # the clerk's text is kept for the retry
    assert [] == [m for m in world.bus.published if m.routing_key.startswith("submission.")]
    with capture_logs() as logs:
        done = await world.client.post("/ui/intake", data=intake_form(
            retry_page, ("transcript_confirmed", "on")))
        html = await done.text()
    # Reloading the receipt page re-posts the form: refused, nothing registered twice.
    again = await world.client.post("/ui/intake", data=intake_form(
        retry_page, ("transcript_confirmed", "on")))
    assert 409 == again.status
    assert 1 == len([m for m in world.bus.published if m.routing_key == "submission.report"])
    assert 201 == done.status, html
    match = re.search(r'id="receipt">([0-9A-Z-]{23})<', html)
    assert match is not None
    receipt = match.group(1)
    assert "no-store" == done.headers["Cache-Control"]
    flat = json.dumps(logs, ensure_ascii=False, default=str)
    assert receipt not in flat
    assert LETTER not in flat
    [message] = [m for m in world.bus.published if m.routing_key == "submission.report"]
    assert LETTER not in message.body.decode()
    assert receipt not in message.body.decode()
    await Router(store=world.env.store, bus=world.env.bus, org=world.env.org,
                 master=world.env.master).handle(message)
    [case] = await world.env.store.cases.query(CaseQuery(units=None, channel="visit"))
    assert case.receipt_hash is not None
    assert case.reply_key is not None
    assert receipt not in json.dumps(await world.env.store.audit.events("_system"),
                                     default=str)

    # The officer sees the letter as a sealed attachment and writes to the reporter.
    officer = await officer_headers(world.client, "gd-officer", PASSWORD)
    view = await (await world.client.get(f"/api/v1/cases/{case.id}?reason=check",
                                         headers=officer)).json()
    [attachment] = view["content"]["attachments"]
    assert ("letter.pdf", "fraud", True) == (attachment["name"], case.category,
                                             view["content"]["transcript_confirmed_by_reporter"])
    download = await world.client.get(
        f"/api/v1/cases/{case.id}/attachments/{attachment['blob']}", headers=officer)
    assert b"%PDF-1.4 scanned" == await download.read()
    await ui_sign_in(world.client, "gd-officer")
    page = await (await world.client.get(f"/ui/cases/{case.id}?reason=check")).text()
    link = f'/ui/cases/{case.id}/attachments/{attachment["blob"]}?reason=check'
    assert link in page
    assert b"%PDF-1.4 scanned" == await (await world.client.get(link)).read()
    sent = await world.client.post(f"/api/v1/cases/{case.id}/messages", headers=officer,
                                   json={"body": "请补充变卖的时间"})
    assert 201 == sent.status

    public = await world.aiohttp_client(create_intake(IntakeDeps(
        world.env.settings, world.env.store, world.env.bus, world.env.org, world.env.receipts)))
    login = await public.post("/api/v1/followup/login",
                              json={"receipt": receipt.lower().replace("-", " ")})
    assert 200 == login.status
    token = (await login.json())["token"]
    followup = await (await public.get("/api/v1/followup", headers={
        "Authorization": f"Bearer {token}"})).json()
    assert (case.reference, ["请补充变卖的时间"]) == (
        followup["reference"], [m["body"] for m in followup["messages"]])


async def test_manual_intake_without_the_receipt_key_gives_no_receipt(world: World) -> None:
    """A casework service without intake's receipt key registers, but hands out no receipt."""
    client = await world.aiohttp_client(create_app(CaseworkDeps(
        world.env.settings, world.env.store, world.bus, world.env.org, world.env.master)))
    resp = await client.post("/api/v1/intake/manual", headers=await officer_headers(
        client, "gd-clerk", PASSWORD), json={
        "kind": "complaint", "channel": "post", "received_on": "2026-03-02",
        "category": "billing", "description": "charged twice"})
    assert (202, None) == (resp.status, (await resp.json())["receipt"])


async def test_intake_page_is_for_clerks(world: World) -> None:
    """Officers get 403 on the intake page."""
    await ui_sign_in(world.client, "gd-officer")
    assert 403 == (await world.client.get("/ui/intake")).status


# --- queue filters: channel and assigned to me -----------------------------------------------


async def test_queue_filters_by_channel_and_assignee(world: World) -> None:
    """channel=… and assigned=me narrow the caller's queue; unknown values are 400."""
    post = await sealed_case(world.env, "post", channel="post")
    phone = await sealed_case(world.env, "phone", channel="phone")
    await sealed_case(world.env, "web")
    for case, who in ((post, "gd-officer"), (phone, "someone-else")):
        await world.env.store.cases.update(replace(case, workflow={"assignee": who}),
                                           expected_version=case.version)
    headers = await officer_headers(world.client, "gd-officer", PASSWORD)

    async def ids(query: str) -> list[str]:
        resp = await world.client.get("/api/v1/cases" + query, headers=headers)
        assert 200 == resp.status, await resp.text()
        return [c["id"] for c in (await resp.json())["items"]]

    assert [post.id] == await ids("?channel=post")
    assert [post.id] == await ids("?assigned=me")
    assert [] == await ids("?assigned=me&channel=phone")
    assert [phone.id, post.id] == sorted(await ids("?channel=phone"), reverse=True) + \
        await ids("?channel=post")
    for bad in ("?channel=fax", "?assigned=you", "?channel=%7B%22%24ne%22%3A%22x%22%7D",
                "?assigned=ME"):
        resp = await world.client.get("/api/v1/cases" + bad, headers=headers)
        assert (bad, 400) == (bad, resp.status)
    await ui_sign_in(world.client, "gd-officer")
    page = await (await world.client.get("/ui/queue?channel=post&assigned=me")).text()
    assert post.reference in page
    assert phone.reference not in page
    assert 'name="channel"' in page
    assert 'name="assigned" value="me" checked' in page


async def test_status_archived_lists_the_closed_and_archived_cases(world: World) -> None:
    """Archived is a flag on a closed case: status=archived lists closed cases that carry it,
    status=closed every closed case; both show the status closed."""
    archived, legacy = (await sealed_case(world.env, "archived"),
                        await sealed_case(world.env, "closed-before-archiving"))
    await sealed_case(world.env, "open")
    now = utcnow()
    for case, archived_at in ((archived, now), (legacy, None)):
        await world.env.store.cases.update(replace(
            case, status="closed", archived_at=archived_at,
            retention_until=None if archived_at is None else now + timedelta(days=1827)),
            expected_version=case.version)
    headers = await officer_headers(world.client, "gd-officer", PASSWORD)

    async def listed(status: str) -> list[tuple[str, str]]:
        resp = await world.client.get(f"/api/v1/cases?status={status}", headers=headers)
        assert 200 == resp.status, await resp.text()
        return sorted((c["id"], c["status"]) for c in (await resp.json())["items"])

    assert [(archived.id, "closed")] == await listed("archived")
    assert sorted([(archived.id, "closed"), (legacy.id, "closed")]) == await listed("closed")


async def test_an_older_database_gains_the_filter_columns(tmp_path: Path) -> None:
    """A cases table from before the channel/assignee columns is migrated on open."""
    async with embedded(tmp_path) as env:
        case = await sealed_case(env, "old", channel="phone",
                                 workflow={"assignee": "gd-officer"})
        async with env.store.transaction() as db:
            for statement in ("DROP INDEX cases_by_channel", "DROP INDEX cases_by_assignee",
                              "ALTER TABLE cases DROP COLUMN channel",
                              "ALTER TABLE cases DROP COLUMN assignee"):
                await db.execute(statement)
    reopened = SqliteStore(tmp_path / "hotline.sqlite3")
    await reopened.open()
    try:
        found = await reopened.cases.query(CaseQuery(units=None, channel="phone",
                                                     assignee="gd-officer"))
        assert [case.id] == [c.id for c in found]
        async with reopened.transaction() as db:
            cursor = await db.execute(
                "EXPLAIN QUERY PLAN SELECT doc FROM cases WHERE assignee = ? "
                "ORDER BY opened_at DESC, id DESC LIMIT 50", ("gd-officer",))
            plan = " ".join(str(row[-1]) for row in await cursor.fetchall())
        assert "cases_by_assignee" in plan
    finally:
        await reopened.close()
