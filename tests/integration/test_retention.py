"""Archive on closure and the purge after retention, on the embedded stack: content gone
from the database file and the blob store, a tombstone left, the audit trail still intact,
410 for content, "closed" for the old receipt; crash-safe, idempotent, dry run."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps
from casework.app import create_app as casework_app
from hotline.adapters.sqlite_store import SqliteStore
from hotline.blobs import FileBlobStore
from hotline.checkpoints import make_checkpoint, verify_everything
from hotline.contract import Submission
from hotline.crypto import KeyRing, receipt_reply_public_key, seal
from hotline.domain.case import CaseQuery
from hotline.mail.outbound import OutboundMail, OutboxDelivery, queue_outbound
from hotline.ports import Message
from hotline.retention import Purger
from hotline.services import add_account, audit_text_kind, audit_trail, load_keyring, verify_audit
from intake.app import IntakeDeps
from intake.app import create_app as intake_app
from router.worker import Router
from tests.support.embedded import Embedded, RecordingBus, embedded, table_counts
from tests.support.mailflow import DOMAIN, mail_flow
from tests.support.officer_login import officer_headers
from tests.support.processes import hotline_env, run_cli

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
RECEIPT = "7KQ2MABCDEFGHJKMNPQR"
FILE = b"%PDF-1.4 MARKER-ATTACHMENT sealed at rest"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, role in (("gd-officer", "officer"), ("gd-super", "supervisor")):
            await add_account(instance.store, instance.org, name, unit="GD", role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
def router(env: Embedded) -> Router:
    return Router(store=env.store, bus=RecordingBus(env.bus), org=env.org, master=env.master)


@pytest.fixture
async def casework(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(casework_app(CaseworkDeps(env.settings, env.store, env.bus,
                                                          env.org, env.master)))


@pytest.fixture
def blobs(env: Embedded) -> FileBlobStore:
    return FileBlobStore(env.settings.data_dir / "blobs")


def purger(env: Embedded, blobs: FileBlobStore) -> Purger:
    async def keyring() -> KeyRing:
        return await load_keyring(env.store, env.master)

    return Purger(env.store, blobs, keyring)


async def put_blob(env: Embedded, blobs: FileBlobStore, data: bytes = FILE) -> str:
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    return await blobs.put(seal(data, public, kid=kid, purpose="attachment"))


async def file_report(env: Embedded, router: Router, blob: str, *,
                      receipt: str = RECEIPT) -> str:
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    payload = {"description": "MARKER-CONTENT 项目经理在分包结算中收取回扣",
               "attachments": [{"blob": blob, "name": "invoice.pdf", "type": "application/pdf"}]}
    sub = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                     correlation_id="corr-retention", kind="report", channel="web",
                     sealed=seal(json.dumps(payload, ensure_ascii=False).encode(), public,
                                 kid=kid, purpose="report"),
                     sealed_by="client", category="corruption", unit="GD",
                     receipt_hash=env.receipts.receipt_hash(receipt),
                     reply_key=receipt_reply_public_key(receipt))
    await router.handle(Message(sub.routing_key, sub.id, sub.to_bytes()))
    followup = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                          correlation_id="corr-retention", kind="followup", channel="web",
                          sealed=seal(b"MARKER-FOLLOWUP more facts", public, kid=kid,
                                      purpose="message"),
                          sealed_by="intake", receipt_hash=env.receipts.receipt_hash(receipt),
                          reporter_copy=seal(b"MARKER-FOLLOWUP more facts", public, kid=kid,
                                             purpose="message"))
    await router.handle(Message(followup.routing_key, followup.id, followup.to_bytes()))
    case = await env.store.cases.by_submission(sub.id)
    assert case is not None
    return case.id


async def past_retention(env: Embedded, case_id: str, *, days_ago: int = 1) -> None:
    """The case closed long ago and its retention ended ``days_ago`` days ago."""
    case = await env.store.cases.get(case_id)
    assert case is not None
    end = datetime.now(UTC) - timedelta(days=days_ago)
    await env.store.cases.update(replace(
        case, status="closed", archived_at=end - timedelta(days=env.settings.retention_days),
        retention_until=end), expected_version=case.version)


def file_bytes(env: Embedded) -> bytes:
    base = env.settings.data_dir / "hotline.sqlite3"
    wal = base.with_name(base.name + "-wal")
    return base.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_a_closed_case_is_archived_with_its_retention_end(
        env: Embedded, router: Router, casework: TestClient,  # type: ignore[type-arg]
        blobs: FileBlobStore) -> None:
    """Closing sets archived_at and retention_until = closure + HOTLINE_RETENTION_DAYS."""
    case_id = await file_report(env, router, await put_blob(env, blobs))
    officer = await officer_headers(casework, "gd-officer", PASSWORD)
    chief = await officer_headers(casework, "gd-super", PASSWORD)
    for headers, action, fields in (
            (officer, "accept", {}),
            (officer, "propose_disposition", {"disposition": "予以了結",
                                              "collective_review": "GD committee, minutes 3"}),
            (chief, "approve_disposition", {}),
            (officer, "send_feedback", {"feedback_sent": True}),
            (chief, "close", {})):
        resp = await casework.post(f"/api/v1/cases/{case_id}/actions",
                                   json={"action": action, **fields}, headers=headers)
        assert 200 == resp.status, await resp.json()
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert "closed" == case.status
    assert case.archived_at is not None
    assert case.retention_until is not None
    assert timedelta(days=env.settings.retention_days) == case.retention_until - case.archived_at
    assert datetime.now(UTC) - case.archived_at < timedelta(minutes=1)


async def test_purge_leaves_a_tombstone_and_nothing_readable(
        env: Embedded, router: Router, casework: TestClient, blobs: FileBlobStore,  # type: ignore[type-arg]
        aiohttp_client: ClientFactory) -> None:
    """Content, messages, blob, records gone (also from the file's bytes); tombstone, audit
    intact with case.purged; 410 on content; the old receipt reads closed; second run idle."""
    blob = await put_blob(env, blobs)
    case_id = await file_report(env, router, blob)
    keep_id = await file_report(env, router, await put_blob(env, blobs, b"other file"),
                                receipt="ABCDEFGHJKMNPQRSTVWX")
    case = await env.store.cases.get(case_id)
    assert case is not None
    markers = [base64.b64encode(case.content.ciphertext)[:40],
               *[base64.b64encode(m.sealed_for_org.ciphertext)[:40]  # type: ignore[union-attr]
                 for m in await env.store.cases.messages(case_id)]]
    await env.store.mail_threads.remember(case_id, ["<thread@example.cn>"])
    await env.store.records.put("disclosure", f"{case_id}/r1", {"case_id": case_id,
                                                                "reason": "MARKER-RECORD"},
                                expected_version=0)
    officer = await officer_headers(casework, "gd-officer", PASSWORD)
    noted = await casework.post(f"/api/v1/cases/{case_id}/notes",
                                json={"body": "MARKER-NOTE interviewed the site manager"},
                                headers=officer)
    assert 201 == noted.status, await noted.text()
    [note] = await env.store.records.list(f"case_note:{case_id}")
    markers.append(note.doc["sealed"]["ciphertext"][:40].encode())
    await past_retention(env, case_id)
    supervisor = await officer_headers(casework, "gd-super", PASSWORD)
    dashboard = await (await casework.get("/api/v1/dashboard", headers=supervisor)).json()
    assert 1 == dashboard["past_retention_not_purged"]
    assert all(marker in file_bytes(env) for marker in markers)

    report = await purger(env, blobs).run(datetime.now(UTC))

    tombstone = await env.store.cases.get(case_id)
    assert tombstone is not None
    assert [tombstone.reference] == report.purged
    assert ("purged", "corruption", "GD", "web", None) == (
        tombstone.status, tombstone.category, tombstone.unit, tombstone.channel,
        tombstone.reply_key)
    assert {"opened_at", "closed_at", "purged_at", "outcome"} == set(
        tombstone.workflow["tombstone"])
    assert [] == await env.store.cases.messages(case_id)
    assert await blobs.get(blob) is None
    assert await env.store.records.list("disclosure") == []
    assert [] == await env.store.records.list(f"case_note:{case_id}")
    assert await env.store.mail_threads.case_for(["<thread@example.cn>"]) is None
    raw = file_bytes(env)
    for marker in [*markers, b"MARKER-RECORD"]:
        assert marker not in raw
    events = await env.store.audit.events(case_id)
    assert "case.purged" == events[-1].type
    assert (await verify_audit(env.store)).ok
    verified = await asyncio.to_thread(run_cli, ["audit", "verify"],
                                       hotline_env(env.settings.data_dir))
    assert 0 == verified.returncode, verified.stdout + verified.stderr

    assert 410 == (await casework.get(f"/api/v1/cases/{case_id}?reason=x",
                                      headers=officer)).status
    assert 410 == (await casework.post(f"/api/v1/cases/{case_id}/messages",
                                       json={"body": "hello"}, headers=officer)).status
    queue = await (await casework.get("/api/v1/cases", headers=officer)).json()
    assert [keep_id] == [c["id"] for c in queue["items"]]
    dashboard = await (await casework.get("/api/v1/dashboard", headers=supervisor)).json()
    assert 0 == dashboard["past_retention_not_purged"]

    public = await aiohttp_client(intake_app(IntakeDeps(env.settings, env.store, env.bus,
                                                        env.org, env.receipts)))
    login = await (await public.post("/api/v1/followup/login",
                                      json={"receipt": RECEIPT})).json()
    view = await (await public.get("/api/v1/followup", headers={
        "Authorization": f"Bearer {login['token']}"})).json()
    assert ("closed", []) == (view["status"], view["messages"])

    again = await purger(env, blobs).run(datetime.now(UTC))
    assert ([], []) == (again.due, again.purged)
    assert events == await env.store.audit.events(case_id)
    assert [] == await env.store.records.list(f"case_note:{case_id}")
    assert await env.store.cases.get(keep_id) is not None


async def test_officers_reasons_go_with_the_purge_and_the_chain_still_verifies(
        env: Embedded, router: Router, casework: TestClient,  # type: ignore[type-arg]
        blobs: FileBlobStore) -> None:
    """A reason given to open content is a record of the case that the purge deletes (also
    from the file's bytes); the event keeps a reference and a salted digest, so the chain,
    `hotline audit verify` and a checkpoint signed before the purge still hold."""
    case_id = await file_report(env, router, await put_blob(env, blobs))
    officer = await officer_headers(casework, "gd-officer", PASSWORD)
    opened = await casework.get(f"/api/v1/cases/{case_id}?reason=MARKER-REASON+witness+W.",
                                headers=officer)
    assert 200 == opened.status
    [before] = [e for e in await audit_trail(env.store, case_id) if e["type"] == "content.opened"]
    assert {"reason": "MARKER-REASON witness W."} == before["texts"]
    assert b"MARKER-REASON" not in json.dumps(before["data"]).encode()
    assert b"MARKER-REASON" in file_bytes(env)
    assert await make_checkpoint(env.store, env.master) is not None
    await past_retention(env, case_id)

    await purger(env, blobs).run(datetime.now(UTC))

    [after] = [e for e in await audit_trail(env.store, case_id) if e["type"] == "content.opened"]
    assert ({"reason": None}, before["data"], before["hash"]) == (
        after["texts"], after["data"], after["hash"])
    assert [] == await env.store.records.list(audit_text_kind(case_id))
    assert b"MARKER-REASON" not in file_bytes(env)
    assert (await verify_everything(env.store)).ok
    verified = await asyncio.to_thread(run_cli, ["audit", "verify"],
                                       hotline_env(env.settings.data_dir))
    assert 0 == verified.returncode, verified.stdout + verified.stderr


async def test_a_blob_another_case_names_is_kept(
        env: Embedded, router: Router, blobs: FileBlobStore) -> None:
    """Content-addressed blobs: only the ones no other (live) case names are deleted."""
    shared = await put_blob(env, blobs)
    case_id = await file_report(env, router, shared)
    await file_report(env, router, shared, receipt="ABCDEFGHJKMNPQRSTVWX")
    await past_retention(env, case_id)
    report = await purger(env, blobs).run(datetime.now(UTC))
    assert (1, 0) == (len(report.purged), report.blobs_deleted)
    assert await blobs.get(shared) is not None


@pytest.mark.parametrize("crash_at", ["records", "tombstone", "blobs", "audit"])
async def test_a_crash_mid_purge_is_finished_by_the_next_run(
        env: Embedded, router: Router, blobs: FileBlobStore, crash_at: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever step the purge dies at, a rerun completes it with one case.purged event."""
    blob = await put_blob(env, blobs)
    case_id = await file_report(env, router, blob)
    await env.store.records.put("survey", "f" * 64, {"case_id": case_id}, expected_version=0)
    await env.store.records.put(f"case_note:{case_id}", "2026-01-01T00:00:00Z_n_1",
                                {"case_id": case_id, "sealed": {}}, expected_version=0)
    await past_retention(env, case_id)
    target: Any = {"records": env.store.records, "tombstone": env.store.cases,
                   "blobs": blobs, "audit": env.store.audit}[crash_at]
    name = {"records": "delete", "tombstone": "purge", "blobs": "delete",
            "audit": "append"}[crash_at]
    original = getattr(target, name)
    calls = {"n": 0}

    async def dies(*args: Any, **kwargs: Any) -> Any:
        # the purge record itself is removed with records.delete too: die on the first
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed")
        return await original(*args, **kwargs)

    monkeypatch.setattr(target, name, dies)
    with pytest.raises(RuntimeError):
        await purger(env, blobs).run(datetime.now(UTC))
    monkeypatch.setattr(target, name, original)
    await purger(env, blobs).run(datetime.now(UTC))
    await purger(env, blobs).run(datetime.now(UTC))
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert "purged" == case.status
    assert await blobs.get(blob) is None
    assert [] == await env.store.records.list("survey")
    assert [] == await env.store.records.list(f"case_note:{case_id}")
    assert [] == await env.store.records.list("purge")
    assert 1 == sum(e.type == "case.purged" for e in await env.store.audit.events(case_id))
    assert (await verify_audit(env.store)).ok


def complaint_mail(sender: str, message_id: str, body: str) -> bytes:
    return (f"From: {sender}\r\nTo: complaints-gd@{DOMAIN}\r\nSubject: MARKER-SUBJECT\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


async def test_a_purged_cases_outbox_mail_is_gone(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail written in clear to DATA_DIR/outbox (no relay) goes with its case: a purge that
    dies half-way through the files is finished by the next run, other cases' mail stays,
    and a mail still queued for the purged case is dropped, not delivered."""
    async with mail_flow(tmp_path) as flow:
        env = flow.env
        submitted = [await flow.deliver(complaint_mail(
            "li.ming@example.cn", "<m1@example.cn>", "宽带断线一周，报修三次无人上门。")),
            await flow.deliver(complaint_mail(
                "wang.fang@example.cn", "<m2@example.cn>", "营业厅多收了安装费，要求退还。"))]
        await flow.settle()
        gone, kept = [await flow.case(submission_id) for submission_id in submitted]
        ids = {e.data["outbound_id"] for e in await env.store.audit.events(gone.id)
               if e.type == "mail.sent"}
        assert 1 == len(ids)
        (outbound_id,) = ids
        (flow.outbox / f".{outbound_id}.cut-short.tmp").write_bytes(b"MARKER-SUBJECT half")
        assert 3 == len(list(flow.outbox.glob("*.eml"))) + 1 == len(
            [p for p in flow.outbox.iterdir() if b"MARKER-SUBJECT" in p.read_bytes()])
        await past_retention(env, gone.id)

        async def keyring() -> KeyRing:
            return await load_keyring(env.store, env.master)

        purger = Purger(env.store, FileBlobStore(env.settings.data_dir / "blobs"), keyring,
                        outbox=OutboxDelivery(flow.outbox))
        unlink = Path.unlink

        def dies_after_one(path: Path, missing_ok: bool = False) -> None:
            unlink(path, missing_ok)
            if path.parent == flow.outbox:
                raise RuntimeError("killed")

        monkeypatch.setattr(Path, "unlink", dies_after_one)
        with pytest.raises(RuntimeError):
            await purger.run(datetime.now(UTC))
        monkeypatch.setattr(Path, "unlink", unlink)
        assert 1 == len(await env.store.records.list("purge"))
        assert [gone.reference] == (await purger.run(datetime.now(UTC))).purged

        assert [f"{o}.eml" for o in {e.data["outbound_id"] for e in await env.store.audit.events(
            kept.id) if e.type == "mail.sent"}] == [p.name for p in flow.outbox.iterdir()]
        events = await env.store.audit.events(gone.id)
        assert 1 == sum(e.type == "case.purged" for e in events)
        assert (await verify_audit(env.store)).ok

        ring = await load_keyring(env.store, env.master)
        kid, public = ring.active_public_key()
        late = OutboundMail(id="o_late-reply-1", case_id=gone.id, kind="reply",
                            from_address=f"complaints-gd@{DOMAIN}",
                            to_address="li.ming@example.cn", subject="MARKER-SUBJECT",
                            body="MARKER-LATE", message_id=f"<o_late-reply-1@{DOMAIN}>")
        await queue_outbound(env.bus, late, kid=kid, public=public,
                             correlation_id="corr-retention")
        await flow.settle()
        assert not (flow.outbox / "o_late-reply-1.eml").exists()
        assert events == await env.store.audit.events(gone.id)


async def test_dry_run_changes_nothing(
        env: Embedded, router: Router, blobs: FileBlobStore) -> None:
    """`hotline purge --dry-run` lists the cases due and leaves every table as it was."""
    blob = await put_blob(env, blobs)
    case_id = await file_report(env, router, blob)
    await past_retention(env, case_id)
    case = await env.store.cases.get(case_id)
    before = (await table_counts(env.store), case)
    shell = hotline_env(env.settings.data_dir)
    dry = await asyncio.to_thread(run_cli, ["purge", "--dry-run"], shell)
    assert 0 == dry.returncode, dry.stderr
    assert case.reference in dry.stdout  # type: ignore[union-attr]
    assert "nothing was changed" in dry.stdout
    report = await purger(env, blobs).run(datetime.now(UTC), dry_run=True)
    assert 1 == len(report.due)
    assert [] == report.purged
    assert before == (await table_counts(env.store), await env.store.cases.get(case_id))
    assert await blobs.get(blob) is not None
    done = await asyncio.to_thread(run_cli, ["purge"], shell)
    assert 0 == done.returncode, done.stderr
    assert "purged 1 case(s), 1 blob(s) deleted" in done.stdout
    case = await env.store.cases.get(case_id)
    assert case is not None
    assert "purged" == case.status
    assert [] == await env.store.cases.query(CaseQuery(units=None, retention_before=datetime.now(
        UTC)))


async def test_the_past_retention_query_uses_an_index_also_on_an_older_database(
        tmp_path: Path) -> None:
    """An older cases table gains the retention_until column and index on open, and the
    purge's query searches that index instead of scanning every case."""
    async with embedded(tmp_path / "old") as env:
        router = Router(store=env.store, bus=RecordingBus(env.bus), org=env.org,
                        master=env.master)
        blobs = FileBlobStore(env.settings.data_dir / "blobs")
        case_id = await file_report(env, router, await put_blob(env, blobs))
        await file_report(env, router, await put_blob(env, blobs, b"other file"),
                          receipt="ABCDEFGHJKMNPQRSTVWX")
        await past_retention(env, case_id)
        async with env.store.transaction() as db:
            for statement in ("DROP INDEX cases_by_retention",
                              "ALTER TABLE cases DROP COLUMN retention_until"):
                await db.execute(statement)
        path = env.settings.data_dir / "hotline.sqlite3"
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        found = await reopened.cases.query(CaseQuery(units=None,
                                                     retention_before=datetime.now(UTC)))
        assert [case_id] == [c.id for c in found]
        async with reopened.transaction() as db:
            cursor = await db.execute(
                "EXPLAIN QUERY PLAN SELECT doc FROM cases WHERE status != 'purged' AND "
                "status != 'purged' AND retention_until < ? ORDER BY opened_at DESC, id DESC "
                "LIMIT 200", ("2026-01-01T00:00:00.000Z",))
            plan = " ".join(str(row[-1]) for row in await cursor.fetchall())
        assert "USING INDEX cases_by_retention" in plan
    finally:
        await reopened.close()


async def test_a_followup_to_a_purged_case_is_not_stored(
        env: Embedded, router: Router, blobs: FileBlobStore) -> None:
    """An old receipt still reaches the tombstone (it reads "closed"), but what the
    reporter sends after the purge is dropped, not kept on the tombstone."""
    case_id = await file_report(env, router, await put_blob(env, blobs))
    await past_retention(env, case_id)
    await purger(env, blobs).run(datetime.now(UTC))
    assert [] == await env.store.cases.messages(case_id)
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    late = Submission(id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC),
                      correlation_id="corr-late", kind="followup", channel="web",
                      sealed=seal(b"MARKER-LATE after the purge", public, kid=kid,
                                  purpose="message"),
                      sealed_by="intake", receipt_hash=env.receipts.receipt_hash(RECEIPT),
                      reporter_copy=seal(b"MARKER-LATE", public, kid=kid, purpose="message"))
    await router.handle(Message(late.routing_key, late.id, late.to_bytes()))
    assert [] == await env.store.cases.messages(case_id)
    tombstone = await env.store.cases.get(case_id)
    assert tombstone is not None
    assert "purged" == tombstone.status
