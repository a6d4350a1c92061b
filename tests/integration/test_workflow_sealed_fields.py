"""Free-text workflow fields (findings, collective-review record …) are sealed at rest and
opened only with an audited content open; choices stay clear for the dashboard."""

from __future__ import annotations

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
from hotline.crypto import receipt_reply_public_key, seal
from hotline.ports import Message
from hotline.services import add_account, audit_trail, load_keyring
from router.worker import Router
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
FINDINGS = "MARKER-findings-5c1e9 the clerk forged overtime sheets"
REVIEW = "MARKER-review-77ab meeting 2026-11 no. 7"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, role in (("hq-officer", "officer"), ("hq-super", "supervisor")):
            await add_account(instance.store, instance.org, name, unit="HQ", role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def file_report(env: Embedded) -> str:
    """An anonymous general report through the real router (workflow started)."""
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    receipt = "ABCDEFGHJKMNPQRSTVWX"
    sub = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                     correlation_id="corr-sealed", kind="report", channel="web",
                     sealed=seal(json.dumps({"description": "仓库管理员虚报加班费约三千元。"},
                                            ensure_ascii=False).encode(), public,
                                 kid=kid, purpose="report"),
                     sealed_by="client", category="corruption", unit="HQ",
                     receipt_hash=env.receipts.receipt_hash(receipt),
                     reply_key=receipt_reply_public_key(receipt))
    router = Router(store=env.store, bus=RecordingBus(env.bus), org=env.org, master=env.master)
    await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
    case = await env.store.cases.by_submission(sub.id)
    assert case is not None
    return case.id


def files_with(data_dir: Path, needle: bytes) -> list[str]:
    """The store's database file name, then every file under ``data_dir`` holding ``needle``."""
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    database = next(p.name for p in files if p.name == "hotline.sqlite3")
    return [database, *(p.name for p in files if needle in p.read_bytes())]


async def act(client: TestClient, who: str, case_id: str, action: str,  # type: ignore[type-arg]
              **fields: Any) -> tuple[int, str]:
    resp = await client.post(f"/api/v1/cases/{case_id}/actions", json={"action": action, **fields},
                             headers=await officer_headers(client, who, PASSWORD))
    return resp.status, await resp.text()


async def test_text_fields_are_sealed_at_rest_and_opened_only_with_an_audited_open(
        client: TestClient, env: Embedded, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """Findings and the collective-review record never appear in clear in the database,
    the list, action answers or logs; the audited content open shows them; choices stay
    clear and closure still works."""
    case_id = await file_report(env)
    answers = []
    with capture_logs() as logs:
        for who, action, fields in (
                ("hq-officer", "accept", {}),
                ("hq-officer", "propose_disposition",
                 {"disposition": "初步核實", "collective_review": REVIEW}),
                ("hq-super", "approve_disposition", {}),
                ("hq-officer", "conclude", {"outcome": "錯告", "findings": FINDINGS}),
                ("hq-officer", "send_feedback", {"feedback_sent": True})):
            status, answer = await act(client, who, case_id, action, **fields)
            assert (action, 200) == (action, status), answer
            answers.append(answer)
        status, _ = await act(client, "hq-super", case_id, "close")
        assert 200 == status
    headers = await officer_headers(client, "hq-officer", PASSWORD)
    listing = await (await client.get("/api/v1/cases?status=closed", headers=headers)).text()
    assert case_id in listing
    for text in (*answers, listing, json.dumps(logs, ensure_ascii=False, default=str)):
        assert "MARKER" not in text
    last = json.loads(answers[-1])["workflow"]["record"]
    assert {"sealed": True} == last["conclude"]["findings"]
    assert "錯告" == last["conclude"]["outcome"]  # choices stay clear (dashboard, routes)
    stored = await env.store.cases.get(case_id)
    assert stored is not None
    record = stored.workflow["state"]["record"]
    assert {"kid", "enc", "ciphertext"} == set(record["conclude"]["findings"]["sealed"])
    assert "初步核實" == record["propose_disposition"]["disposition"]
    # Every byte the store wrote (database, WAL, journal) is free of the typed text.
    written = files_with(tmp_path, b"MARKER")
    assert ("hotline.sqlite3", []) == (written[0], written[1:])
    opened = await (await client.get(f"/api/v1/cases/{case_id}?reason=review+findings",
                                     headers=headers)).json()
    assert FINDINGS == opened["workflow"]["record"]["conclude"]["findings"]
    assert REVIEW == opened["workflow"]["record"]["propose_disposition"]["collective_review"]
    opens = [e["texts"] for e in await audit_trail(env.store, case_id)
             if e["type"] == "content.opened"]
    assert [{"reason": "review findings"}] == opens


async def test_case_page_shows_sealed_fields_until_the_content_is_opened(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """The page marks sealed values; after an open with a reason it shows the text."""
    case_id = await file_report(env)
    for who, action, fields in (("hq-officer", "accept", {}), (
            "hq-officer", "propose_disposition",
            {"disposition": "初步核實", "collective_review": REVIEW})):
        assert 200 == (await act(client, who, case_id, action, **fields))[0]
    resp = await client.post("/ui/login", data={"username": "hq-officer", "password": PASSWORD},
                             allow_redirects=False)
    assert 303 == resp.status
    page = await (await client.get(f"/ui/cases/{case_id}")).text()
    assert "sealed — open content to read" in page
    assert "MARKER" not in page
    assert "初步核實" in page
    page = await (await client.get(f"/ui/cases/{case_id}?reason=check")).text()
    assert REVIEW in page
    assert "sealed — open content to read" not in page
