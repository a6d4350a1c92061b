"""Triage, routing and the workflow engine through the real router and casework API."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps, create_app
from hotline.adapters.sqlite_store import SqliteStore
from hotline.contract import Submission
from hotline.crypto import receipt_reply_public_key, seal
from hotline.ports import Message
from hotline.services import add_account, load_keyring, verify_audit
from router.clocks import ClockRunner
from router.worker import Router
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, unit, role, employee in (
                ("hq-officer", "HQ", "officer", None), ("hq-super", "HQ", "supervisor", None),
                ("hq-super2", "HQ", "supervisor", None),
                ("gd-officer", "GD", "officer", None),
                # The GD general manager also has an account (e.g. as a GD supervisor).
                ("gd-gm", "GD", "supervisor", "GD0001")):
            await add_account(instance.store, instance.org, name, unit=unit, role=role,
                              password=PASSWORD, employee_id=employee)
        yield instance


@pytest.fixture
def router(env: Embedded) -> Router:
    return Router(store=env.store, bus=RecordingBus(env.bus), org=env.org, master=env.master)


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def file_report(env: Embedded, router: Router, payload: dict[str, Any], *,
                      unit: str | None = None, category: str = "corruption",
                      receipt: str = "ABCDEFGHJKMNPQRSTVWX") -> str:
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    sub = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                     correlation_id="corr-workflow", kind="report", channel="web",
                     sealed=seal(json.dumps(payload, ensure_ascii=False).encode(), public,
                                 kid=kid, purpose="report"),
                     sealed_by="client", category=category, unit=unit,
                     receipt_hash=env.receipts.receipt_hash(receipt),
                     reply_key=receipt_reply_public_key(receipt))
    await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
    case = await env.store.cases.by_submission(sub.id)
    assert case is not None
    return case.id


async def login(client: TestClient, username: str) -> dict[str, str]:  # type: ignore[type-arg]
    return await officer_headers(client, username, PASSWORD)


async def act(client: TestClient, headers: dict[str, str], case_id: str, action: str,  # type: ignore[type-arg]
              **fields: Any) -> tuple[int, Any]:
    resp = await client.post(f"/api/v1/cases/{case_id}/actions",
                             json={"action": action, **fields}, headers=headers)
    return resp.status, await resp.json()


LEADER_REPORT = {"description": "广东公司总经理陈国强收受供应商贿赂人民币1500万元，"
                                "并安排亲属公司中标。",
                 "subjects": [{"name": "陈国强", "unit": "GD", "position": "总经理"}]}


async def test_report_about_a_leader_goes_up_and_hides_from_him(
        client: TestClient, env: Embedded, router: Router) -> None:  # type: ignore[type-arg]
    """A provincial leader as subject: major, routed to HQ, never visible to him."""
    case_id = await file_report(env, router, LEADER_REPORT, unit="GD")
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert ("major", "HQ", "serious") == (case.severity, case.unit, case.triage["flow"])
    assert "GD0001" in case.excluded
    hq = await login(client, "hq-officer")
    view = await (await client.get(f"/api/v1/cases/{case_id}", headers=hq)).json()
    assert {"major"} == {view["severity"]}
    assert view["triage"]["explanation"]
    gm = await login(client, "gd-gm")
    assert 404 == (await client.get(f"/api/v1/cases/{case_id}", headers=gm)).status
    listed = await (await client.get("/api/v1/cases", headers=gm)).json()
    assert case_id not in {c["id"] for c in listed["items"]}
    assert [] == (await (await client.get("/api/v1/stubs", headers=gm)).json())["items"]
    # The provincial unit keeps a stub only: reference and where it went, no content.
    gd = await login(client, "gd-officer")
    assert 404 == (await client.get(f"/api/v1/cases/{case_id}", headers=gd)).status
    stubs = (await (await client.get("/api/v1/stubs", headers=gd)).json())["items"]
    assert [(case_id, "GD", "HQ")] == [(s["id"], s["from_unit"], s["forwarded_to"])
                                       for s in stubs]
    assert {"id", "reference", "kind", "stub", "from_unit", "forwarded_to",
            "forwarded_at"} == set(stubs[0])
    # Nobody can assign the named manager, even though his unit and role would allow it.
    supervisor = await login(client, "hq-super")
    assert 422 == (await act(client, supervisor, case_id, "assign", assignee="gd-gm"))[0]
    assert 200 == (await act(client, supervisor, case_id, "assign",
                             assignee="hq-officer"))[0]


async def test_workflow_actions_enforce_state_role_fields_and_four_eyes(
        client: TestClient, env: Embedded, router: Router) -> None:  # type: ignore[type-arg]
    """Actions follow the definition: 409 wrong state, 403 wrong role, 422 missing fields,
    no approving one's own proposal, and closure only when its conditions hold."""
    case_id = await file_report(env, router, {"description": "仓库管理员虚报加班费约三千元。"},
                                unit="HQ")
    officer, supervisor = await login(client, "hq-officer"), await login(client, "hq-super")
    view = await (await client.get(f"/api/v1/cases/{case_id}", headers=officer)).json()
    assert "acknowledged" == view["workflow"]["state"]
    assert "accept" in view["workflow"]["actions"]
    assert 409 == (await act(client, officer, case_id, "close"))[0]
    assert 409 == (await act(client, supervisor, case_id, "approve_disposition"))[0]
    status, body = await act(client, officer, case_id, "accept")
    assert 200 == status, body
    assert 422 == (await act(client, officer, case_id, "propose_disposition"))[0]
    status, body = await act(client, officer, case_id, "propose_disposition",
                             disposition="初步核實", collective_review="2026-11 紀檢會議 第7號")
    assert 200 == status, body
    assert "disposition_proposed" == body["status"]
    assert 403 == (await act(client, officer, case_id, "approve_disposition"))[0]
    # A supervisor approves; the officer who proposed cannot (wrong role anyway) and a
    # stale write is refused.
    status, body = await act(client, supervisor, case_id, "approve_disposition")
    assert 200 == status, body
    events = (await (await client.get(f"/api/v1/cases/{case_id}/audit",
                                      headers=officer)).json())["events"]
    assert {"workflow.accept", "workflow.propose_disposition",
            "workflow.approve_disposition"} <= {e["type"] for e in events}
    assert (await verify_audit(env.store)).ok


async def test_declared_recusal_hides_the_case_at_once(
        client: TestClient, env: Embedded, router: Router) -> None:  # type: ignore[type-arg]
    """An officer who declares a conflict loses access immediately and cannot be assigned."""
    case_id = await file_report(env, router, {"description": "仓库管理员虚报加班费约三千元。"},
                                unit="HQ")
    officer = await login(client, "hq-officer")
    assert 200 == (await client.get(f"/api/v1/cases/{case_id}", headers=officer)).status
    assert 422 == (await act(client, officer, case_id, "declare_recusal", ground="cousin"))[0]
    assert 200 == (await act(client, officer, case_id, "declare_recusal",
                             ground="relative"))[0]
    assert 404 == (await client.get(f"/api/v1/cases/{case_id}", headers=officer)).status
    listed = await (await client.get("/api/v1/cases", headers=officer)).json()
    assert case_id not in {c["id"] for c in listed["items"]}
    supervisor = await login(client, "hq-super")
    assert 422 == (await act(client, supervisor, case_id, "assign",
                             assignee="hq-officer"))[0]


async def test_severity_is_lowered_only_with_a_reason(
        client: TestClient, env: Embedded, router: Router) -> None:  # type: ignore[type-arg]
    """Officers may lower severity only with a reason; it is audited."""
    case_id = await file_report(env, router, LEADER_REPORT, unit="GD")
    officer = await login(client, "hq-officer")
    assert 422 == (await act(client, officer, case_id, "change_severity", severity="low"))[0]
    status, body = await act(client, officer, case_id, "change_severity", severity="high",
                             reason="amount is a rumour; verified as RMB 15,000")
    assert (200, "high") == (status, body["severity"])


async def test_new_information_raises_but_never_lowers(env: Embedded, router: Router) -> None:
    """A follow-up naming an imminent danger raises the case; a calm one does not lower it."""
    receipt = "7KQ2M0000011111ABCDE"
    case_id = await file_report(env, router, {"description": "工地的脚手架有些松动。"},
                                unit="SC", category="safety", receipt=receipt)
    before = await env.store.cases.get(case_id)
    assert before is not None
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    for text in ("补充：脚手架今天已经倒塌，压死3名工人，还有人被困随时可能死亡。",
                 "一切正常了。"):
        sub = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                         correlation_id="corr-followup", kind="followup", channel="web",
                         sealed=seal(text.encode(), public, kid=kid, purpose="message"),
                         sealed_by="intake", receipt_hash=env.receipts.receipt_hash(receipt))
        await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
    after = await env.store.cases.get(case_id)
    assert after is not None
    assert "major" == after.severity
    assert before.severity != after.severity
    types = [e.type for e in await env.store.audit.events(case_id)]
    assert 1 == types.count("triage.raised")
    assert any(m.routing_key == "case.escalated" for m in router.bus.published)  # type: ignore[attr-defined]


async def test_follow_up_on_a_case_with_named_subjects_keeps_its_exclusions(
        env: Embedded, router: Router) -> None:
    """Re-triage of a case whose stored triage has exclusions (without names) works and
    keeps the subject excluded."""
    receipt = "7KQ2M0000022222ABCDE"
    case_id = await file_report(env, router, LEADER_REPORT, unit="GD", receipt=receipt)
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    sub = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                     correlation_id="corr-followup", kind="followup", channel="web",
                     sealed=seal("他还威胁要报复举报人。".encode(), public, kid=kid,
                                 purpose="message"),
                     sealed_by="intake", receipt_hash=env.receipts.receipt_hash(receipt))
    await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert ("major", True) == (case.severity, "GD0001" in case.excluded)
    assert "reporter.information_added" in [e.type for e in
                                            await env.store.audit.events(case_id)]


async def test_supplier_on_the_negative_list_is_flagged_within_its_scope(
        env: Embedded, router: Router) -> None:
    """A listed supplier named in a report (in either script) is flagged where the listing
    applies: its province and below, or everywhere for an HQ listing."""
    await env.store.records.put("negative_list", "n_test1", {
        "id": "n_test1", "supplier": "宏達勞務公司", "scope": "GD", "status": "listed",
        "reason": "wage arrears", "case_reference": None}, expected_version=0)
    await env.store.records.put("negative_list", "n_test2", {
        "id": "n_test2", "supplier": "Old Supplier Ltd", "scope": "HQ", "status": "removed",
        "reason": "cleared", "case_reference": None}, expected_version=0)
    text = "宏达劳务公司拖欠农民工工资两个月，Old Supplier Ltd 也参与。"
    in_scope = await env.store.cases.get(await file_report(
        env, router, {"description": text}, unit="GD-CONSTRUCTION", category="wage_arrears"))
    out_of_scope = await env.store.cases.get(await file_report(
        env, router, {"description": text}, unit="SC", category="wage_arrears",
        receipt="7KQ2M0000033333ABCDE"))
    assert in_scope is not None
    assert out_of_scope is not None
    assert [{"entry": "n_test1", "scope": "GD"}] == in_scope.triage["negative_list"]
    assert "supplier.negative-list" in in_scope.triage["rules"]
    assert "negative_list" not in out_of_scope.triage


async def test_clock_crossings_are_announced_exactly_once_by_many_runners(
        env: Embedded, router: Router) -> None:
    """Three runners, each with its own database connection as separate router processes
    have, sweep the same overdue case: each crossing is announced once."""
    case_id = await file_report(env, router, {"description": "仓库管理员虚报加班费约三千元。"},
                                unit="HQ")
    bus = RecordingBus(env.bus)
    stores = [SqliteStore(env.store.path) for _ in range(3)]
    for store in stores:
        await store.open()
    runners = [ClockRunner(store, bus, env.org, router.workflows) for store in stores]
    later = datetime.now(UTC) + timedelta(days=60)
    try:
        counts = await asyncio.gather(*(r.sweep(later) for r in runners))
        again = await asyncio.gather(*(r.sweep(later) for r in runners))
    finally:
        for store in stores:
            await store.close()
    assert 0 == sum(again)
    escalations = [m for m in bus.published if m.routing_key == "case.escalated"]
    assert sum(counts) == len(escalations) == len({m.message_id for m in escalations})
    assert sum(counts) >= 2  # at least one clock overdue and escalated up after 60 days
    events = [e for e in await env.store.audit.events(case_id) if e.type.startswith("clock.")]
    assert sum(counts) == len(events)
    assert {"clock.overdue", "clock.escalated_up"} <= {e.type for e in events}
    assert (await verify_audit(env.store)).ok


async def test_a_sweep_reads_only_cases_that_can_be_due_soon(
        env: Embedded, router: Router) -> None:
    """The sweep's horizon is the workflows' longest reminder (not a week): a case is
    announced due soon as its window opens, and not read by sweeps before that."""
    case_id = await file_report(env, router, {"description": "仓库管理员虚报加班费约三千元。"},
                                unit="HQ")
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert case.due_at is not None
    runner = ClockRunner(env.store, RecordingBus(env.bus), env.org, router.workflows)
    longest = max(spec.remind_days for d in router.workflows.definitions.values()
                  for spec in d.clocks.values())
    read: list[int] = []
    query = env.store.cases.query

    async def counting(q: Any) -> Any:
        found = await query(q)
        read.append(len(found))
        return found

    env.store.cases.query = counting  # type: ignore[method-assign]
    try:
        early = await runner.sweep(case.due_at - runner.lookahead - timedelta(hours=1))
        read_early = sum(read)
        due_soon = await runner.sweep(case.due_at - timedelta(days=longest) + timedelta(hours=1))
    finally:
        env.store.cases.query = query  # type: ignore[method-assign]
    assert (timedelta(days=max(2, longest)), 0, 0) == (runner.lookahead, early, read_early)
    assert due_soon >= 1
