"""Manual intake: clerks register post/phone/visit reports, which the router opens as
cases with that channel; the content is sealed before it reaches the bus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.services import add_account
from router.worker import Router
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
LETTER = "项目经理私自收取分包商回扣"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        await add_account(instance.store, instance.org, "gd-clerk", unit="GD", role="clerk",
                          password=PASSWORD)
        await add_account(instance.store, instance.org, "gd-officer", unit="GD", role="officer",
                          password=PASSWORD)
        yield instance


@pytest.fixture
async def bus(env: Embedded) -> RecordingBus:
    return RecordingBus(env.bus)


@pytest.fixture
async def client(env: Embedded, bus: RecordingBus, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, bus,
                                                        env.org, env.master)))


async def register(client: TestClient, who: str, body: dict[str, Any]) -> tuple[int, Any]:  # type: ignore[type-arg]
    resp = await client.post("/api/v1/intake/manual", json=body,
                             headers=await officer_headers(client, who, PASSWORD))
    return resp.status, await resp.json()


async def test_a_posted_letter_becomes_a_post_case(
        client: TestClient, env: Embedded, bus: RecordingBus) -> None:  # type: ignore[type-arg]
    """A clerk's registration is published sealed; the router opens a 'post' case from it."""
    with capture_logs() as logs:
        status, accepted = await register(client, "gd-clerk", {
            "kind": "report", "channel": "post", "received_on": "2026-03-02",
            "category": "corruption", "description": LETTER, "identity": {"name": "李四"},
            "attachments": [{"name": "letter.pdf", "type": "application/pdf",
                             "data": "JVBERi0xLjQK"}]})
    assert 202 == status
    [message] = [m for m in bus.published if m.routing_key == "submission.report"]
    assert LETTER not in message.body.decode()
    assert LETTER not in json.dumps(logs, ensure_ascii=False, default=str)
    router = Router(store=env.store, bus=env.bus, org=env.org, master=env.master)
    await router.handle(message)
    case = await env.store.cases.by_submission(accepted["submission_id"])
    assert case is not None
    assert ("post", "GD", "report") == (case.channel, case.unit, case.kind)
    headers = await officer_headers(client, "gd-officer", PASSWORD)
    view = await (await client.get(f"/api/v1/cases/{case.id}", headers=headers)).json()
    assert (LETTER, "2026-03-02", {"sealed": True}) == (
        view["content"]["description"], view["content"]["received_on"], view["identity"])
    events = [e.type for e in await env.store.audit.events("_system")]
    assert "intake.registered" in events


async def test_oral_reports_need_a_confirmed_transcript_and_bad_input_is_refused(
        client: TestClient, bus: RecordingBus) -> None:  # type: ignore[type-arg]
    """Phone/visit without confirmation, bad channel/date/unit/role: 4xx, nothing queued."""
    base = {"kind": "complaint", "channel": "phone", "received_on": "2026-03-02",
            "category": "billing", "description": "charged twice"}
    for change in ({}, {"channel": "web"}, {"received_on": "2999-01-01"}, {"unit": "SC"},
                   {"category": "corruption"}, {"identity": {"$gt": ""}}):
        status, _ = await register(client, "gd-clerk", {**base, **change})
        assert (change, 422 if "$gt" not in json.dumps(change) else 400) == (change, status)
    assert 403 == (await register(client, "gd-officer", {**base,
                                                        "transcript_confirmed": True}))[0]
    assert [] == [m for m in bus.published if m.routing_key.startswith("submission.")]
    assert 202 == (await register(client, "gd-clerk", {**base, "transcript_confirmed": True}))[0]
