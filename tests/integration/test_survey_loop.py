"""The satisfaction survey loop on the embedded stack: casework sends the link, the
complainant answers on intake's public page, the router records it once; unknown,
repeated and expired tokens; expiry from the clock runner; nothing secret in the logs."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps
from casework.app import create_app as casework_app
from hotline.contract import Submission
from hotline.crypto import open_sealed, receipt_reply_private_key, receipt_reply_public_key, seal
from hotline.ports import Message
from hotline.services import add_account, load_keyring, verify_audit
from hotline.surveys import SURVEY_KIND, token_hash
from intake.app import IntakeDeps
from intake.app import create_app as intake_app
from router.survey import SurveyDesk
from router.worker import Router
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
BASE = "https://hotline.example.cn"
RECEIPT = "7KQ2MABCDEFGHJKMNPQR"
COMMENT = "COMMENT-MARKER 退款很快，谢谢"
LINK = re.compile(re.escape(BASE) + r"/survey/([A-Za-z0-9_-]{43})\?lang=([A-Za-z-]+)")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path, HOTLINE_PUBLIC_BASE_URL=BASE + "/") as instance:
        for name, role in (("gd-officer", "officer"), ("gd-super", "supervisor")):
            await add_account(instance.store, instance.org, name, unit="GD", role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
def router(env: Embedded) -> Router:
    return Router(store=env.store, bus=RecordingBus(env.bus), org=env.org, master=env.master)


@pytest.fixture
async def casework(env: Embedded, router: Router, aiohttp_client: ClientFactory
                   ) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(casework_app(CaseworkDeps(env.settings, env.store, router.bus,
                                                          env.org, env.master)))


@pytest.fixture
async def intake(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(intake_app(IntakeDeps(env.settings, env.store, env.bus, env.org,
                                                      env.receipts)))


async def file_complaint(env: Embedded, router: Router, *, receipt: str | None = RECEIPT,
                         locale: str = "zh-Hans") -> str:
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    payload = {"name": "陈女士", "email": "chen@example.cn", "subject": "账单重复扣费",
               "description": "同一笔服务费扣了两次"}
    if receipt is None:  # taken by phone: no receipt, no address
        del payload["email"]
    sub = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                     correlation_id="corr-survey", kind="complaint",
                     channel="web" if receipt else "phone",
                     sealed=seal(json.dumps(payload, ensure_ascii=False).encode(), public,
                                 kid=kid, purpose="complaint"),
                     sealed_by="intake", category="billing", unit="GD", locale=locale,
                     receipt_hash=None if receipt is None else env.receipts.receipt_hash(receipt),
                     reply_key=None if receipt is None else receipt_reply_public_key(receipt))
    await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
    case = await env.store.cases.by_submission(sub.id)
    assert case is not None
    return case.id


async def act(client: TestClient, headers: dict[str, str], case_id: str,  # type: ignore[type-arg]
              action: str, **fields: Any) -> dict[str, Any]:
    resp = await client.post(f"/api/v1/cases/{case_id}/actions",
                             json={"action": action, **fields}, headers=headers)
    body: dict[str, Any] = await resp.json()
    assert 200 == resp.status, body
    return body


async def work_to_survey(casework: TestClient, case_id: str) -> dict[str, str]:  # type: ignore[type-arg]
    """Officer and supervisor take the complaint to survey_sent; the officer's headers."""
    officer = await officer_headers(casework, "gd-officer", PASSWORD)
    chief = await officer_headers(casework, "gd-super", PASSWORD)
    view = await (await casework.get(f"/api/v1/cases/{case_id}", headers=officer)).json()
    if "acknowledge" in view["workflow"]["actions"]:
        await act(casework, officer, case_id, "acknowledge")
    await act(casework, officer, case_id, "send_written_notice", notice_sent=True)
    await act(casework, officer, case_id, "accept_complaint")
    await act(casework, officer, case_id, "record_resolution", root_cause="billing ran twice",
              root_cause_category="billing_error",
              corrective_action={"owner": "billing team", "due": "2026-12-31"})
    await act(casework, chief, case_id, "verify_remediation", verified=True)
    await act(casework, officer, case_id, "send_response", response_sent=True)
    assert "survey_sent" == (await act(casework, officer, case_id, "send_survey",
                                       survey_sent=True))["status"]
    return officer


async def link_from_receipt(env: Embedded, case_id: str, receipt: str = RECEIPT
                            ) -> tuple[str, str]:
    """The survey link as the complainant reads it on the follow-up page (sealed to them)."""
    key = receipt_reply_private_key(receipt)
    for message in await env.store.cases.messages(case_id):
        if message.sealed_for_reporter is not None:
            text = open_sealed(message.sealed_for_reporter, key, purpose="message").decode()
            match = LINK.search(text)
            if match:
                return match.group(1), match.group(2)
    raise AssertionError("no survey link sealed for the receipt")


async def answer(intake: TestClient, token: str, rating: str, comment: str = "",  # type: ignore[type-arg]
                 lang: str = "zh-Hans") -> aiohttp.ClientResponse:
    html = await (await intake.get(f"/survey/{token}?lang={lang}")).text()
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    data = aiohttp.FormData()
    for name, value in (("csrf", match.group(1)), ("lang", lang), ("rating", rating),
                        ("comment", comment)):
        data.add_field(name, value)
    return await intake.post(f"/survey/{token}", data=data)


async def queued_answers(env: Embedded) -> list[Message]:
    """Take the survey submissions off the embedded queue (the router's input)."""
    async with env.store.transaction() as db:
        rows = await (await db.execute(
            "SELECT routing_key, message_id, body FROM bus_messages WHERE routing_key = "
            "'submission.survey' ORDER BY seq")).fetchall()
        await db.execute("DELETE FROM bus_messages WHERE routing_key = 'submission.survey'")
    return [Message(r[0], r[1], r[2]) for r in rows]


def record_of(case: Any) -> dict[str, Any]:
    return dict(case.workflow["state"]["record"].get("record_survey") or {})


async def test_complainant_answers_and_the_router_records_it_once(
        env: Embedded, router: Router, casework: TestClient, intake: TestClient,  # type: ignore[type-arg]
        ) -> None:
    """Link by receipt and e-mail, answer on the page, recorded once, comment sealed, no
    token or comment in any log line, dashboard mean rating."""
    with structlog.testing.capture_logs() as logs:
        case_id = await file_complaint(env, router)
        officer = await work_to_survey(casework, case_id)
        token, lang = await link_from_receipt(env, case_id)
        assert "zh-Hans" == lang
        assert ["mail.outbound"] == [m.routing_key for m in router.bus.published  # type: ignore[attr-defined]
                                     if m.routing_key == "mail.outbound"]
        stored = await env.store.records.get(SURVEY_KIND, token_hash(token))
        assert stored is not None
        assert case_id == stored.doc["case_id"]
        assert token not in json.dumps(dict(stored.doc))

        page = await answer(intake, token, "4", COMMENT)
        assert 200 == page.status, [e for e in logs if e.get("log_level") == "error"]
        assert "谢谢" in await page.text()
        [delivery] = await queued_answers(env)
        assert token not in delivery.body.decode()
        assert "COMMENT-MARKER" not in \
            delivery.body.decode()
        await router.handle(delivery)
        await router.handle(delivery)  # redelivered: no second answer

        case = await env.store.cases.get(case_id)
        assert case is not None
        assert ("satisfied", 4, "router") == (record_of(case)["survey_result"],
                                              record_of(case)["survey_rating"],
                                              record_of(case)["actor"])
        events = [e for e in await env.store.audit.events(case_id) if e.type.startswith("survey")]
        assert ["survey.sent", "survey.answered"] == [e.type for e in events]
        assert "COMMENT" not in json.dumps([dict(e.data) for e in events])
        view = await casework.get(f"/api/v1/cases/{case_id}?reason=check", headers=officer)
        bodies = [m["body"] for m in (await view.json())["messages"]]
        assert any(COMMENT in (b or "") for b in bodies)
        assert not any(token in (b or "") for b in bodies)  # officers never see the link

        # a second answer to the same link changes nothing
        again = await answer(intake, token, "1", "second try")
        assert 200 == again.status
        for delivery in await queued_answers(env):
            await router.handle(delivery)
        case = await env.store.cases.get(case_id)
        assert case is not None
        assert 4 == record_of(case)["survey_rating"]
        assert "closed" == (await act(casework, officer, case_id, "close"))["status"]
        chief = await officer_headers(casework, "gd-super", PASSWORD)
        dashboard = await (await casework.get("/api/v1/dashboard", headers=chief)).json()
        assert 4.0 == dashboard["complaints"]["rating_mean"]
    assert (await verify_audit(env.store)).ok
    logged = json.dumps(logs, default=str, ensure_ascii=False)
    assert token not in logged
    assert "COMMENT-MARKER" not in logged
    assert "second try" not in logged
    assert any(e.get("event") == "survey.answer_ignored" and e.get("outcome") ==
               "already_answered" for e in logs)


async def test_a_crash_between_claim_and_record_is_finished_by_the_redelivery(
        env: Embedded, router: Router, casework: TestClient, intake: TestClient,  # type: ignore[type-arg]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer is claimed, the router dies before the workflow write; the redelivered
    message completes the same answer exactly once."""
    case_id = await file_complaint(env, router)
    await work_to_survey(casework, case_id)
    token, _ = await link_from_receipt(env, case_id)
    await answer(intake, token, "2")
    [delivery] = await queued_answers(env)
    original = SurveyDesk._record

    async def crash(*_: Any, **__: Any) -> bool:
        raise RuntimeError("router killed")

    monkeypatch.setattr(SurveyDesk, "_record", crash)
    with pytest.raises(RuntimeError):
        await router.handle(delivery)
    claimed = await env.store.records.get(SURVEY_KIND, token_hash(token))
    assert claimed is not None
    assert (True, False) == (claimed.doc["answered"], claimed.doc["done"])
    monkeypatch.setattr(SurveyDesk, "_record", original)
    await router.handle(delivery)
    await router.handle(delivery)
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert ("dissatisfied", 2) == (record_of(case)["survey_result"],
                                   record_of(case)["survey_rating"])
    events = await env.store.audit.events(case_id)
    assert 1 == sum(e.type == "survey.answered" for e in events)
    assert 1 == sum(e.type == "workflow.record_survey" or e.type == "survey.answered"
                    for e in events)


async def test_unknown_and_malformed_tokens_get_the_same_page_and_no_effect(
        env: Embedded, router: Router, intake: TestClient) -> None:  # type: ignore[type-arg]
    """Intake cannot tell; the router acknowledges an unknown token and counts it."""
    unknown = secrets.token_urlsafe(32)
    pages = [await answer(intake, unknown, "5", "hello"),
             await answer(intake, "not-a-token", "5", "hello")]
    texts = [await p.text() for p in pages]
    assert [200, 200] == [p.status for p in pages]
    assert texts[0].replace(unknown, "X") == texts[1].replace("not-a-token", "X")
    deliveries = await queued_answers(env)
    assert 1 == len(deliveries)  # the malformed one cannot be a link and is not queued
    with structlog.testing.capture_logs() as logs:
        await router.handle(deliveries[0])  # acknowledged: no exception
    assert [("survey.answer_ignored", "unknown")] == [
        (e["event"], e["outcome"]) for e in logs if e["event"].startswith("survey")]
    assert unknown not in json.dumps(logs, default=str)
    assert [] == await env.store.records.list(SURVEY_KIND)


async def test_a_rating_is_required_and_the_page_is_translated(
        intake: TestClient) -> None:  # type: ignore[type-arg]
    """No rating: 422 with the form again; the Chinese pages carry no English."""
    token = secrets.token_urlsafe(32)
    refused = await answer(intake, token, "", "只有意见")
    html = await refused.text()
    assert 422 == refused.status
    assert "只有意见" in html
    for lang in ("zh-Hans", "zh-Hant"):
        page = await (await intake.get(f"/survey/{token}?lang={lang}")).text()
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page,
                                               flags=re.S))
        assert set() == set(re.findall(r"[A-Za-z]{2,}", text)) - {"Hotline", "English",
                                                                   "Cookie", "IP"}
        assert "<script" not in page


async def test_an_unanswered_survey_expires_exactly_once(
        env: Embedded, router: Router, casework: TestClient, intake: TestClient,  # type: ignore[type-arg]
        ) -> None:
    """Past the window the clock runner records "expired" once; a late answer is ignored."""
    case_id = await file_complaint(env, router)
    await work_to_survey(casework, case_id)
    token, _ = await link_from_receipt(env, case_id)
    desk = SurveyDesk.of(env.store, router.workflows, env.master)
    now = datetime.now(UTC)
    assert 0 == await desk.expire(now)
    later = now + timedelta(days=env.settings.survey_days, minutes=1)
    assert 1 == await desk.expire(later)
    assert 0 == await desk.expire(later + timedelta(hours=1))
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert "expired" == record_of(case)["survey_result"]
    assert "survey_rating" not in record_of(case)
    await answer(intake, token, "5")
    for delivery in await queued_answers(env):
        await router.handle(delivery)
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert "expired" == record_of(case)["survey_result"]
    assert 1 == sum(e.type == "survey.expired" for e in await env.store.audit.events(case_id))


async def test_send_survey_refused_without_a_public_base_url(
        tmp_path: Path, aiohttp_client: ClientFactory) -> None:
    """Without HOTLINE_PUBLIC_BASE_URL the link cannot be made: 503, the state unchanged."""
    async with embedded(tmp_path) as env:
        await add_account(env.store, env.org, "gd-officer", unit="GD", role="officer",
                          password=PASSWORD)
        await add_account(env.store, env.org, "gd-super", unit="GD", role="supervisor",
                          password=PASSWORD)
        router = Router(store=env.store, bus=RecordingBus(env.bus), org=env.org,
                        master=env.master)
        client = await aiohttp_client(casework_app(CaseworkDeps(
            env.settings, env.store, env.bus, env.org, env.master)))
        case_id = await file_complaint(env, router)
        with pytest.raises(AssertionError, match="not_configured"):
            await work_to_survey(client, case_id)
        case = await env.store.cases.get(case_id)
        assert case is not None
        assert "response_sent" == case.status


async def test_a_complainant_without_address_or_receipt_is_surveyed_by_hand(
        env: Embedded, router: Router, casework: TestClient) -> None:  # type: ignore[type-arg]
    """No channel to send a link: no survey record waits; the officer records the result."""
    case_id = await file_complaint(env, router, receipt=None)
    officer = await work_to_survey(casework, case_id)
    assert [] == await env.store.records.list(SURVEY_KIND)
    [sent] = [e for e in await env.store.audit.events(case_id) if e.type == "survey.sent"]
    assert [] == sent.data["channels"]
    await act(casework, officer, case_id, "record_survey", survey_result="neutral")
    assert "closed" == (await act(casework, officer, case_id, "close"))["status"]
