"""After an approved identity disclosure the reporter is told through their receipt, in the
case's language, unless the approver withholds the notice with a recorded reason."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.clock import utcnow
from hotline.crypto import generate_receipt, normalise_receipt, receipt_reply_public_key, seal
from hotline.domain.audit import next_event
from hotline.domain.case import Case, ReceiptRecord, case_id_for
from hotline.services import add_account, audit_trail, load_keyring
from intake.app import IntakeDeps
from intake.app import create_app as create_intake_app
from tests.support.embedded import Embedded, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
IDENTITY = {"name": "王小明", "employee_id": "E-77821", "phone": "+86 138 0000 0000"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, role in (("gd-officer", "officer"), ("gd-super", "supervisor")):
            await add_account(instance.store, instance.org, name, unit="GD", role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
async def casework(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


@pytest.fixture
async def intake(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_intake_app(IntakeDeps(env.settings, env.store, env.bus,
                                                             env.org, env.receipts)))


async def named_case(env: Embedded, name: str, locale: str | None) -> tuple[Case, str]:
    """A real-name report with a receipt (as the router opens one); the case and receipt."""
    receipt = generate_receipt()
    canonical = normalise_receipt(receipt)
    assert canonical is not None
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    payload = json.dumps({"description": "the site manager takes cash",
                          "identity": IDENTITY}).encode()
    opened = utcnow() - timedelta(minutes=5)
    receipt_hash = env.receipts.receipt_hash(canonical)
    case = Case(id=case_id_for(f"sub-{name}"), submission_id=f"sub-{name}", reference="",
                kind="report", category="corruption", severity="general", status="new",
                unit="GD", channel="web", opened_at=opened, received_at=opened,
                content=seal(payload, public, kid=kid, purpose="report"), sealed_by="client",
                locale=locale, receipt_hash=receipt_hash,
                reply_key=receipt_reply_public_key(canonical))
    stored, _ = await env.store.cases.open(
        case, [next_event(case.id, None, at=opened, actor="router", type_="case.opened")],
        ReceiptRecord(receipt_hash, case.id, case.submission_id), reference_prefix="R-2026")
    return stored, receipt


async def call(client: TestClient, method: str, path: str, who: str,  # type: ignore[type-arg]
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = await officer_headers(client, who, PASSWORD)
    resp = await client.request(method, path, json=body, headers=headers)
    return resp.status, await resp.json()


async def followup_messages(intake: TestClient, receipt: str) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    resp = await intake.post("/api/v1/followup/login", json={"receipt": receipt})
    assert 200 == resp.status
    token = (await resp.json())["token"]
    resp = await intake.get("/api/v1/followup", headers={"Authorization": f"Bearer {token}"})
    assert 200 == resp.status
    messages: list[dict[str, Any]] = (await resp.json())["messages"]
    return messages


async def ask_and_decide(casework: TestClient, case: Case, decision: dict[str, Any]  # type: ignore[type-arg]
                         ) -> tuple[int, Any]:
    base = f"/api/v1/cases/{case.id}/disclosures"
    status, asked = await call(casework, "POST", base, "gd-officer",
                               {"reason": "the witness must be interviewed"})
    assert 201 == status
    return await call(casework, "POST", f"{base}/{asked['id']}/decision", "gd-super", decision)


@pytest.mark.parametrize(("locale", "expected"), [("zh-TW", "您的身分資料已於"),
                                                  ("zh-Hans", "您的身份信息已于"),
                                                  ("en-GB", "your identity was disclosed on")])
async def test_approval_tells_the_reporter_in_their_language(
        env: Embedded, casework: TestClient, intake: TestClient,  # type: ignore[type-arg]
        locale: str, expected: str) -> None:
    """The follow-up view of the receipt shows the notice; logs never carry the identity."""
    case, receipt = await named_case(env, "told", locale)
    with capture_logs() as logs:
        status, decided = await ask_and_decide(casework, case, {"decision": "approve"})
        messages = await followup_messages(intake, receipt)
    assert (200, "approved", "sent") == (status, decided["status"], decided["notice"])
    assert 1 == len(messages)
    assert ("officer", True) == (messages[0]["from"], expected in messages[0]["body"])
    for secret in IDENTITY.values():
        assert secret not in messages[0]["body"]
        assert secret not in json.dumps(logs, ensure_ascii=False, default=str)
    events = {e.type: e.data for e in await env.store.audit.events(case.id)}
    assert "sent" == events["identity.disclosure_approved"]["notice"]
    assert "identity_disclosure" == events["message.sent"]["about"]


async def test_withheld_notice_sends_nothing_and_records_why(
        env: Embedded, casework: TestClient, intake: TestClient) -> None:  # type: ignore[type-arg]
    """withhold_notice with a reason: no message to the receipt, the reason in the audit."""
    case, receipt = await named_case(env, "withheld", "zh-Hans")
    status, _ = await ask_and_decide(casework, case, {"decision": "approve",
                                                      "withhold_notice": True})
    assert 422 == status  # a withheld notice needs its reason
    _, pending = await call(casework, "GET", "/api/v1/disclosures", "gd-super")
    request_id = pending["items"][0]["id"]
    decide = f"/api/v1/cases/{case.id}/disclosures/{request_id}/decision"
    assert 422 == (await call(casework, "POST", decide, "gd-super",
                              {"decision": "deny", "withhold_notice": True,
                               "withhold_reason": "x"}))[0]
    with capture_logs() as logs:
        status, decided = await call(casework, "POST", decide, "gd-super", {
            "decision": "approve", "withhold_notice": True,
            "withhold_reason": "the subject would learn of the inquiry"})
    assert (200, "withheld") == (status, decided["notice"])
    assert [] == await followup_messages(intake, receipt)
    events = await audit_trail(env.store, case.id)
    approved = [e for e in events if e["type"] == "identity.disclosure_approved"]
    assert [("withheld", "the subject would learn of the inquiry")] == [
        (e["data"]["notice"], e["texts"]["withhold_reason"]) for e in approved]
    assert not [e for e in events if e["type"] == "message.sent"]
    assert IDENTITY["name"] not in json.dumps(logs, ensure_ascii=False, default=str)
