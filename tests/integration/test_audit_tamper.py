"""Tampering with stored audit events is detected and located; signed checkpoints catch
a cut-off tail and verify with the public key alone."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from casework.app import CaseworkDeps, create_app
from hotline.checkpoints import (
    checkpoint_public_key,
    make_checkpoint,
    verify_checkpoints,
    verify_everything,
)
from hotline.crypto import Sealed
from hotline.domain.audit import BrokenLink, chain_hash, next_event
from hotline.domain.case import Case, case_id_for
from hotline.services import add_account, append_audit, append_system_audit, verify_audit
from tests.support.embedded import Embedded, embedded
from tests.support.officer_login import officer_headers
from tests.support.processes import hotline_env, run_cli

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough passphrase"


async def open_case(env: Embedded, n: int, events: int = 5) -> str:
    """A case whose chain holds ``events`` events."""
    submission = f"sub-tamper-{n}"
    case = Case(id=case_id_for(submission), submission_id=submission, reference="",
                kind="report", category="fraud", severity="general", status="new", unit="GD",
                channel="web", opened_at=T0 + timedelta(minutes=n), received_at=T0,
                content=Sealed("kid", b"e" * 32, b"sealed"), sealed_by="client")
    first = next_event(case.id, None, at=case.opened_at, actor="router", type_="case.opened")
    await env.store.cases.open(case, [first], None, reference_prefix="R-2026")
    for index in range(2, events + 1):
        await append_audit(env.store, case.id, actor="officer", type_="content.opened",
                           data={"reason": f"look {index}"})
    return case.id


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        yield instance


async def sql(env: Embedded, *statements: tuple[str, tuple[object, ...]]) -> None:
    async with env.store.transaction() as db:
        for statement, params in statements:
            await db.execute(statement, params)


async def change(env: Embedded, case_id: str) -> None:
    await sql(env, ("UPDATE audit_events SET data = ? WHERE case_id = ? AND seq = 3",
                    (json.dumps({"reason": "nothing to see"}), case_id)))


async def delete(env: Embedded, case_id: str) -> None:
    await sql(env, ("DELETE FROM audit_events WHERE case_id = ? AND seq = 3", (case_id,)))


async def reorder(env: Embedded, case_id: str) -> None:
    swap = "UPDATE audit_events SET seq = ? WHERE case_id = ? AND seq = ?"
    await sql(env, (swap, (-1, case_id, 3)), (swap, (3, case_id, 4)), (swap, (4, case_id, -1)))


async def insert(env: Embedded, case_id: str) -> None:
    """A forged event at seq 3, correctly chained to seq 2; the later ones shifted up."""
    events = await env.store.audit.events(case_id)
    at = events[1].at + timedelta(seconds=1)
    forged = chain_hash(case_id, 3, at, "intruder", "note.added", {}, events[1].hash)
    await sql(env,
              ("UPDATE audit_events SET seq = seq + 1000 WHERE case_id = ? AND seq >= 3",
               (case_id,)),
              ("UPDATE audit_events SET seq = seq - 999 WHERE case_id = ? AND seq > 1000",
               (case_id,)),
              ("INSERT INTO audit_events VALUES (?, 3, ?, 'intruder', 'note.added', '{}', ?, ?)",
               (case_id, at.isoformat(), events[1].hash, forged)))


TAMPERING = {
    "change": (change, 3, "content does not match its hash"),
    "delete": (delete, 3, "sequence gap: expected 3, found 4"),
    "reorder": (reorder, 3, "prev_hash does not match the previous event"),
    "insert": (insert, 4, "prev_hash does not match the previous event"),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
async def test_each_kind_of_tampering_is_detected_and_located(env: Embedded, kind: str) -> None:
    """Changed, deleted, reordered and inserted events each name the case and the seq."""
    intact = await open_case(env, 1)
    victim = await open_case(env, 2)
    tamper, seq, reason = TAMPERING[kind]
    assert (await verify_audit(env.store)).ok
    await tamper(env, victim)
    report = await verify_audit(env.store)
    assert (False, BrokenLink(victim, seq, reason)) == (report.ok, report.first_broken)
    assert (await verify_audit(env.store, [intact])).ok


async def test_a_cut_off_tail_with_a_rewritten_head_is_caught_by_the_checkpoint(
        env: Embedded) -> None:
    """Chains alone look intact after tail + head rewrite; the signed checkpoint does not."""
    case_id = await open_case(env, 1)
    await open_case(env, 2)
    assert await make_checkpoint(env.store, env.master) is not None
    events = await env.store.audit.events(case_id)
    case = await env.store.cases.get(case_id)
    assert case is not None
    async with env.store.transaction() as db:
        await db.execute("DELETE FROM audit_events WHERE case_id = ? AND seq > 3", (case_id,))
        cursor = await db.execute("SELECT doc FROM cases WHERE id = ?", (case_id,))
        row = await cursor.fetchone()
        assert row is not None
        doc = json.loads(row[0])
        doc["audit_head"] = {"seq": 3, "hash": events[2].hash}
        await db.execute("UPDATE cases SET doc = ? WHERE id = ?", (json.dumps(doc), case_id))
    assert (await verify_audit(env.store)).ok
    report = await verify_everything(env.store)
    assert BrokenLink(case_id, 4, "events after seq 3 are missing (checkpoint 1 saw seq 5)") \
        == report.first_broken


async def test_checkpoints_verify_with_the_public_key_alone(env: Embedded) -> None:
    """Exported public key verifies; another key or an edited checkpoint does not."""
    await open_case(env, 1)
    await append_system_audit(env.store, actor="admin", type_="account.created")
    first = await make_checkpoint(env.store, env.master)
    assert await make_checkpoint(env.store, env.master) is None  # nothing moved
    await open_case(env, 2)
    second = await make_checkpoint(env.store, env.master)
    assert first is not None
    assert second is not None
    assert (["_system", "c_sub-tamper-1"], ["c_sub-tamper-2"]) == (
        sorted(first.doc["heads"]), sorted(second.doc["heads"]))
    public = await checkpoint_public_key(env.store)
    assert public is not None
    report = await verify_checkpoints(env.store, public)
    assert (True, 2, 3) == (report.ok, report.checkpoints, report.chains)
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                      PublicFormat.Raw)
    wrong = await verify_checkpoints(env.store, stranger)
    assert BrokenLink("checkpoint:1", 0, "signature does not verify with the public key") == \
        wrong.first_broken
    forged = {**dict(second.doc), "heads": {}}
    await env.store.records.put("audit_checkpoint", second.key, forged,
                                expected_version=second.version)
    edited = await verify_checkpoints(env.store, public)
    assert BrokenLink("checkpoint:2", 0, "signature does not verify with the public key") == \
        edited.first_broken


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    await add_account(env.store, env.org, "auditor", unit="HQ", role="auditor",
                      password=PASSWORD)
    await add_account(env.store, env.org, "sc-officer", unit="SC", role="officer",
                      password=PASSWORD)
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def test_api_verifies_checkpoints_and_exports_a_case_trail(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """The auditor's API signs, verifies, exports a self-checking trail and locates a break."""
    case_id = await open_case(env, 1)
    auditor = await officer_headers(client, "auditor", PASSWORD)
    made = await client.post("/api/v1/audit/checkpoints", headers=auditor)
    assert 201 == made.status
    key = await (await client.get("/api/v1/audit/public-key", headers=auditor)).json()
    verdict = await (await client.get("/api/v1/audit/verify", headers=auditor)).json()
    assert (True, True, 1) == (verdict["ok"], verdict["checkpoints"]["ok"],
                               verdict["checkpoints"]["checkpoints"])
    resp = await client.get(f"/api/v1/cases/{case_id}/audit/export", headers=auditor)
    exported = await resp.json()
    assert (200, 5, key["public_key"]) == (resp.status, len(exported["events"]),
                                           exported["checkpoint_public_key"])
    [checkpoint] = exported["checkpoints"]
    assert [5, exported["events"][4]["hash"]] == checkpoint["heads"][case_id]
    officer = await officer_headers(client, "sc-officer", PASSWORD)  # GD case: not theirs
    assert 404 == (await client.get(f"/api/v1/cases/{case_id}/audit/export",
                                    headers=officer)).status
    assert "audit.exported" == (await env.store.audit.events(case_id))[-1].type
    await change(env, case_id)
    broken = await (await client.get("/api/v1/audit/verify", headers=auditor)).json()
    assert (False, {"case_id": case_id, "seq": 3, "reason": "content does not match its hash"}
            ) == (broken["ok"], broken["first_broken"])

    # The exported checkpoint verifies outside Hotline: Ed25519 over its canonical JSON.
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"])).verify(
        base64.b64decode(checkpoint["signature"]),
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


async def test_api_lists_checkpoints_a_page_at_a_time(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """?after and ?limit page through checkpoints; next_after says where to go on."""
    auditor = await officer_headers(client, "auditor", PASSWORD)
    for n in range(3):
        await open_case(env, n + 1)
        assert 201 == (await client.post("/api/v1/audit/checkpoints", headers=auditor)).status

    async def page(query: str) -> tuple[list[int], int | None]:
        resp = await client.get(f"/api/v1/audit/checkpoints{query}", headers=auditor)
        doc = await resp.json()
        assert 200 == resp.status
        assert all("heads" not in item and item["chains_moved"] >= 1 for item in doc["items"])
        return [item["n"] for item in doc["items"]], doc["next_after"]

    assert ([1, 2, 3], None) == await page("")
    assert ([1, 2], 2) == await page("?limit=2")
    assert ([3], None) == await page("?after=2&limit=2")
    assert ([], None) == await page("?after=3")
    for bad in ("?limit=0", "?limit=1001", "?after=-1", "?limit=x", "?after=%EF%BC%91"):
        assert 400 == (await client.get(f"/api/v1/audit/checkpoints{bad}",
                                        headers=auditor)).status, bad


async def test_cli_signs_exports_the_key_and_verifies_with_it(env: Embedded,
                                                              tmp_path: Path) -> None:
    """`hotline audit checkpoint`, `public-key` and `verify --public-key` from the shell."""
    case_id = await open_case(env, 1)
    shell = hotline_env(tmp_path)
    assert 0 == run_cli(["audit", "checkpoint"], shell).returncode
    key = run_cli(["audit", "public-key"], shell)
    assert key.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "audit.pem").write_text(key.stdout)
    intact = run_cli(["audit", "verify", "--public-key", str(tmp_path / "audit.pem")], shell)
    assert (0, True) == (intact.returncode, "checkpoints intact: 1 signed" in intact.stdout +
                         intact.stderr)
    await delete(env, case_id)
    broken = run_cli(["audit", "verify", "--public-key", str(tmp_path / "audit.pem")], shell)
    assert 1 == broken.returncode
    assert f"{case_id}), event seq 3: sequence gap" in broken.stdout + broken.stderr
