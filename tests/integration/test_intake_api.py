"""intake's public API against real SQLite: status codes, strictness, no partial state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from hotline.contract import Submission
from intake.app import IntakeDeps, create_app
from tests.support import hpke_ref
from tests.support.client import b64d, b64e, solve
from tests.support.embedded import Embedded, embedded, table_counts

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path, HOTLINE_MAX_BODY_BYTES="65536") as instance:
        yield instance


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(IntakeDeps(env.settings, env.store, env.bus, env.org,
                                                      env.receipts)))


async def solved_pow(client: TestClient) -> dict[str, str]:  # type: ignore[type-arg]
    resp = await client.get("/api/v1/intake/pow")
    problem = await resp.json()
    return {"challenge": problem["challenge"],
            "nonce": solve(problem["challenge"], problem["difficulty"])}


async def envelope(client: TestClient, payload: dict[str, Any] | None = None,  # type: ignore[type-arg]
                   **changes: Any) -> dict[str, Any]:
    key = await (await client.get("/api/v1/intake/key")).json()
    enc, ct = hpke_ref.seal_single(b64d(key["public_key"]), b"hotline/1 report", json.dumps(
        payload or {"description": "Safety valve disabled at plant 3."}).encode())
    doc = {"kid": key["kid"], "enc": b64e(enc), "ciphertext": b64e(ct), "category": "safety",
           "pow": await solved_pow(client)}
    doc.update(changes)
    return doc


async def test_key_and_pow_documents_match_the_contract(client: TestClient) -> None:  # type: ignore[type-arg]
    """The key is a 32-byte X25519 key of our suite; the challenge carries its difficulty."""
    key = await (await client.get("/api/v1/intake/key")).json()
    assert "HPKE-base-X25519-SHA256-AES256GCM" == key["suite"]
    assert 32 == len(b64d(key["public_key"]))
    pow_doc = await (await client.get("/api/v1/intake/pow")).json()
    assert 4 == pow_doc["difficulty"]
    assert pow_doc["expires_at"].endswith("Z")


async def test_accepted_report_is_queued_sealed_with_receipt_hash(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """202 means one durable queue row holding only sealed content and a keyed receipt hash."""
    resp = await client.post("/api/v1/reports", json=await envelope(client, unit="GD"))
    assert 202 == resp.status
    accepted = await resp.json()
    assert "no-store" == resp.headers["Cache-Control"]
    assert 23 == len(accepted["receipt"])
    async with env.store.transaction() as db:
        rows = await (await db.execute("SELECT message_id, body FROM bus_messages")).fetchall()
    [(message_id, body)] = rows
    assert accepted["submission_id"] == message_id
    submission = Submission.from_bytes(body)
    assert ("report", "GD", "client") == (submission.kind, submission.unit, submission.sealed_by)
    assert accepted["receipt"] not in body.decode()
    assert b"Safety valve" not in body
    assert 64 == len(submission.receipt_hash or "")


BAD_REQUESTS: list[tuple[str, Callable[[dict[str, Any]], Any], int, str]] = [
    ("not an object", lambda d: [d], 400, "invalid_request"),
    ("unknown field", lambda d: {**d, "ip": "1.2.3.4"}, 400, "invalid_request"),
    ("missing ciphertext", lambda d: {k: v for k, v in d.items() if k != "ciphertext"}, 400,
     "invalid_envelope"),
    ("padded base64", lambda d: {**d, "enc": d["enc"] + "="}, 400, "invalid_envelope"),
    ("short enc", lambda d: {**d, "enc": d["enc"][:20]}, 400, "invalid_envelope"),
    ("operator in kid", lambda d: {**d, "kid": {"$gt": ""}}, 400, "invalid_request"),
    ("operator in category", lambda d: {**d, "category": {"$ne": None}}, 400,
     "invalid_request"),
    ("operator in unit", lambda d: {**d, "unit": {"$regex": ".*"}}, 400, "invalid_request"),
    ("operator key nested in pow", lambda d: {**d, "pow": {"$where": "1"}}, 400,
     "invalid_request"),
    ("operator in nonce", lambda d: {**d, "pow": {**d["pow"], "nonce": {"$gt": ""}}}, 400,
     "invalid_request"),
    ("list as nonce", lambda d: {**d, "pow": {**d["pow"], "nonce": ["1"]}}, 403,
     "proof_of_work"),
    ("unknown kid", lambda d: {**d, "kid": "0000000000000000"}, 422, "unknown_kid"),
    ("unknown category", lambda d: {**d, "category": "gossip"}, 422, "unknown_category"),
    ("unknown unit", lambda d: {**d, "unit": "ATLANTIS"}, 422, "unknown_unit"),
    ("missing pow", lambda d: {k: v for k, v in d.items() if k != "pow"}, 403, "proof_of_work"),
    ("wrong nonce", lambda d: {**d, "pow": {**d["pow"], "nonce": "x1"}}, 403, "proof_of_work"),
    ("forged challenge", lambda d: {**d, "pow": {"challenge": "v1.AAAA.BBBB", "nonce": "1"}},
     403, "proof_of_work"),
]


@pytest.mark.parametrize(("mutate", "status", "code"),
                         [pytest.param(m, s, c, id=name) for name, m, s, c in BAD_REQUESTS])
async def test_bad_report_is_refused_and_leaves_no_trace(
        client: TestClient, env: Embedded, mutate: Callable[[dict[str, Any]], Any],  # type: ignore[type-arg]
        status: int, code: str) -> None:
    """Every malformed or hostile envelope gets a JSON 4xx and changes nothing stored."""
    doc = mutate(await envelope(client))
    before = await table_counts(env.store)
    resp = await client.post("/api/v1/reports", json=doc)
    body = await resp.json()
    assert (status, code) == (resp.status, body["error"]["code"])
    assert before == await table_counts(env.store)


async def test_malformed_json_and_duplicate_keys_are_400(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Bodies that are not strict JSON objects are refused before anything else."""
    for raw in (b"{", b"\xff\xfe", b'{"kid": "a", "kid": "b"}', b"[" * 60_000):
        resp = await client.post("/api/v1/reports", data=raw,
                                 headers={"Content-Type": "application/json"})
        assert 400 == resp.status
        assert "error" in await resp.json()
    assert 0 == (await table_counts(env.store))["bus_messages"]


async def test_oversized_body_is_413_without_trace(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """A body over the configured limit is refused with 413, streamed or declared."""
    doc = await envelope(client, payload={"description": "x" * 70_000})
    resp = await client.post("/api/v1/reports", json=doc)
    assert 413 == resp.status
    assert "too_large" == (await resp.json())["error"]["code"]
    assert 0 == (await table_counts(env.store))["pow_burnt"]


async def test_pow_challenge_is_single_use(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """A solved challenge admits one submission; replaying it is refused."""
    doc = await envelope(client)
    assert 202 == (await client.post("/api/v1/reports", json=doc)).status
    again = await client.post("/api/v1/reports", json=doc)
    assert 429 == again.status
    assert 1 == (await table_counts(env.store))["bus_messages"]


async def test_queue_failure_is_503_not_202(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """If the queue cannot take the submission the client is told to retry, never 202."""
    doc = await envelope(client)
    await env.bus.close()
    resp = await client.post("/api/v1/reports", json=doc)
    assert (503, "queue_unavailable") == (resp.status, (await resp.json())["error"]["code"])


async def test_complaint_validation(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Complaints need name, valid email, subject, description and a known category."""
    good = {"name": "Li", "email": "li@example.cn", "category": "billing",
            "subject": "Double charge", "description": "Charged twice in May."}
    for bad in ({**good, "email": "not-an-email"}, {**good, "name": {"$gt": ""}},
                {k: v for k, v in good.items() if k != "description"},
                {**good, "category": "weather"}, {**good, "extra": 1}):
        resp = await client.post("/api/v1/complaints", json={**bad, "pow": await solved_pow(
            client)})
        assert resp.status in (400, 422)
    assert 0 == (await table_counts(env.store))["bus_messages"]
    resp = await client.post("/api/v1/complaints", json={**good, "pow": await solved_pow(client)})
    assert 202 == resp.status


async def test_wrong_receipts_all_get_the_same_401(client: TestClient) -> None:  # type: ignore[type-arg]
    """Unknown, malformed and hostile receipts are indistinguishable to the caller."""
    answers = set()
    for receipt in ("AAAAA-BBBBB-CCCCC-DDDDD", "nonsense", {"$gt": ""}, "", "Z" * 5000, None,
                    ["AAAAA"]):
        resp = await client.post("/api/v1/followup/login", json={"receipt": receipt})
        answers.add((resp.status, json.dumps(await resp.json())))
    assert 1 == len(answers)
    assert 401 == next(iter(answers))[0]


async def test_health_readiness_metrics_and_openapi(client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Operational endpoints answer; readiness fails when the queue is gone."""
    assert 200 == (await client.get("/healthz")).status
    assert 200 == (await client.get("/readyz")).status
    metrics = await (await client.get("/metrics")).text()
    assert "hotline_http_requests_total" in metrics
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/reports", "/api/v1/complaints", "/api/v1/followup/login",
            "/api/v1/followup", "/api/v1/intake/key", "/api/v1/intake/pow"} <= set(spec["paths"])
    await env.bus.close()
    assert 503 == (await client.get("/readyz")).status


async def test_no_log_line_carries_sensitive_values(client: TestClient) -> None:  # type: ignore[type-arg]
    """Submitting, following up and failing log nothing of text, receipt, IP or user agent."""
    description = "秘密内容：董事长挪用公款三千万元"
    with capture_logs() as logs:
        resp = await client.post(
            "/api/v1/reports", json=await envelope(client, payload={"description": description}),
            headers={"User-Agent": "ReporterBrowser/1.0", "X-Forwarded-For": "203.0.113.9"})
        receipt = (await resp.json())["receipt"]
        await client.post("/api/v1/followup/login", json={"receipt": receipt})
        await client.post("/api/v1/complaints", json={
            "name": "Secret Name", "email": "secret@example.org", "category": "billing",
            "subject": "s", "description": description, "pow": await solved_pow(client)})
        await client.post("/api/v1/reports", data=b"{bad json " + description.encode())
    assert logs, "expected some log entries"
    flat = json.dumps(logs, ensure_ascii=False, default=str)
    for secret in (description, receipt, "ReporterBrowser", "203.0.113.9", "127.0.0.1",
                   "Secret Name", "secret@example.org"):
        assert secret not in flat
