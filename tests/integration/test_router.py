"""router: opening sealed submissions into cases, idempotently; poison is parked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hotline.contract import CaseEvent, Submission
from hotline.crypto import Sealed, seal
from hotline.domain.case import CaseQuery
from hotline.errors import MalformedMessage, NotFound, SealError
from hotline.ports import Message
from hotline.services import load_keyring, verify_audit
from router.app import run_consumer
from router.worker import Router
from tests.support.embedded import Embedded, RecordingBus, embedded

pytestmark = pytest.mark.integration


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        yield instance


@pytest.fixture
def router(env: Embedded) -> Router:
    return Router(store=env.store, bus=RecordingBus(env.bus), org=env.org, master=env.master)


async def submission(env: Embedded, payload: Any = None, *, kind: str = "report",
                     unit: str | None = "SC", purpose: str | None = None) -> Submission:
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    body = json.dumps(payload if payload is not None else {
        "description": "四川能源公司的安全阀被拆除"}).encode()
    return Submission(
        id=secrets.token_urlsafe(12), occurred_at=datetime.now(UTC), correlation_id="corr-test1",
        kind=kind,  # type: ignore[arg-type]
        channel="web", sealed=seal(body, public, kid=kid, purpose=purpose or kind),
        sealed_by="client", category="safety" if kind == "report" else "billing", unit=unit,
        receipt_hash=secrets.token_hex(32), reply_key=bytes(32))


def message(sub: Submission) -> Message:
    return Message(sub.routing_key, sub.id, sub.to_bytes(), sub.correlation_id)


async def test_report_becomes_case_with_reference_chain_and_event(
        router: Router, env: Embedded) -> None:
    """One submission: one case, R-YYYY-000001, two chained audit events, case.opened."""
    sub = await submission(env)
    await router.handle(message(sub))
    case = await env.store.cases.by_submission(sub.id)
    assert case is not None
    # A removed safety valve is a hazard without imminent danger: high, serious flow; the
    # receipt already acknowledged it.
    assert (f"R-{datetime.now(UTC).year}-000001", "SC", "high", "acknowledged") == (
        case.reference, case.unit, case.severity, case.status)
    assert "report-anonymous-serious" == case.workflow["name"]
    assert case.triage["rules"]
    assert case.due_at is not None
    events = await env.store.audit.events(case.id)
    assert ["submission.received", "case.opened"] == [e.type for e in events]
    assert (await verify_audit(env.store)).ok
    [published] = router.bus.published  # type: ignore[attr-defined]
    event = CaseEvent.from_bytes(published.body)
    assert ("case.opened", case.reference) == (event.type, event.reference)
    assert await env.store.receipts.get(sub.receipt_hash or "") is not None


async def test_redelivery_is_absorbed(router: Router, env: Embedded) -> None:
    """The same message delivered three times still makes exactly one case."""
    sub = await submission(env)
    for _ in range(3):
        await router.handle(message(sub))
    assert 1 == await env.store.cases.count()
    case = await env.store.cases.by_submission(sub.id)
    assert case is not None
    assert 2 == len(await env.store.audit.events(case.id))


async def test_unknown_unit_falls_back_to_headquarters(router: Router, env: Embedded) -> None:
    """No unit means HQ; references are gap-free per kind and year."""
    await router.handle(message(await submission(env, unit=None)))
    await router.handle(message(await submission(env, kind="complaint", unit=None)))
    await router.handle(message(await submission(env, unit=None)))
    year = datetime.now(UTC).year
    cases = sorted([(c.kind, c.reference, c.unit) for c in await env.store.cases.query(
        CaseQuery(units=None))])
    assert [("complaint", f"C-{year}-000001", "HQ"), ("report", f"R-{year}-000001", "HQ"),
            ("report", f"R-{year}-000002", "HQ")] == cases


@pytest.mark.parametrize("problem", ["not json", "wrong id", "unknown kid", "no description",
                                     "wrong purpose", "tampered"])
async def test_poison_is_refused_for_parking(router: Router, env: Embedded, problem: str) -> None:
    """Messages that can never succeed raise MalformedMessage/SealError and write nothing."""
    sub = await submission(env)
    msg = message(sub)
    if problem == "not json":
        msg = Message("submission.report", sub.id, b"\x00garbage")
    elif problem == "wrong id":
        msg = Message("submission.report", "another-id-123", sub.to_bytes())
    elif problem == "unknown kid":
        other = X25519PrivateKey.generate().public_key()
        msg = message(Submission(**{**sub.__dict__, "sealed": seal(
            b'{"description":"x"}', other, kid="ffffffffffffffff", purpose="report")}))
    elif problem == "no description":
        msg = message(await submission(env, payload={"title": "only a title"}))
    elif problem == "wrong purpose":
        msg = message(await submission(env, purpose="complaint"))
    elif problem == "tampered":
        broken = Sealed(sub.sealed.kid, sub.sealed.enc, sub.sealed.ciphertext[:-1] + b"\x00")
        msg = message(Submission(**{**sub.__dict__, "sealed": broken}))
    with pytest.raises((MalformedMessage, SealError)):
        await router.handle(msg)
    assert 0 == await env.store.cases.count()


async def test_followup_before_its_case_is_retried_not_lost(router: Router, env: Embedded) -> None:
    """A follow-up whose case is not stored yet raises a transient error (redelivered)."""
    sub = await submission(env, kind="followup", purpose="message")
    followup = Submission(**{**sub.__dict__, "category": None, "unit": None})
    with pytest.raises(NotFound):
        await router.handle(message(followup))


async def test_consumer_parks_poison_and_keeps_going(router: Router, env: Embedded) -> None:
    """On the real embedded queue a poison message is parked and the next one still opens."""
    await env.bus.publish(Message("submission.report", "poison-0001", b"{not json"))
    good = await submission(env)
    await env.bus.publish(message(good))
    task = asyncio.create_task(run_consumer(router))
    try:
        for _ in range(100):
            if await env.store.cases.by_submission(good.id) is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await env.store.cases.by_submission(good.id) is not None
    assert ["poison-0001"] == [m.message_id for m in await env.bus.parked()]
    assert 1 == await env.bus.replay_parked("poison-0001")
    assert [] == await env.bus.parked()
