"""Officers open a case's sealed attachments: named by the case, decrypted, audited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from casework.app import CaseworkDeps, create_app
from hotline.blobs import FileBlobStore
from hotline.crypto import seal
from hotline.services import add_account, audit_trail, load_keyring
from router.worker import Router
from tests.integration.test_workflow_api import file_report
from tests.support.embedded import Embedded, RecordingBus, embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, unit in (("hq-officer", "HQ"), ("sc-officer", "SC")):
            await add_account(instance.store, instance.org, name, unit=unit, role="officer",
                              password=PASSWORD)
        yield instance


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def stored_attachment(env: Embedded, data: bytes) -> str:
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    return await FileBlobStore(env.settings.data_dir / "blobs").put(
        seal(data, public, kid=kid, purpose="attachment"))


async def test_attachment_is_decrypted_for_a_reader_and_audited(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """The officer gets the file's bytes as a download; the open is on the audit trail."""
    router = Router(store=env.store, bus=RecordingBus(env.bus), org=env.org, master=env.master)
    photo = await stored_attachment(env, PHOTO)
    page = await stored_attachment(env, b"<script>alert(1)</script>")
    other = await stored_attachment(env, b"not on this case")
    case_id = await file_report(env, router, {
        "description": "仓库管理员虚报加班费约三千元，见照片。",
        "attachments": [{"blob": photo, "name": "加班单.png", "type": "image/png"},
                        {"blob": page, "name": "x.html", "type": "text/html"}]}, unit="HQ")
    headers = await officer_headers(client, "hq-officer", PASSWORD)
    resp = await client.get(f"/api/v1/cases/{case_id}/attachments/{photo}?reason=check",
                            headers=headers)
    assert 200 == resp.status
    assert PHOTO == await resp.read()
    assert ("image/png", "no-store") == (resp.content_type, resp.headers["Cache-Control"])
    assert resp.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    html = await client.get(f"/api/v1/cases/{case_id}/attachments/{page}", headers=headers)
    assert "application/octet-stream" == html.content_type
    for blob in (other, "0" * 64, "not-an-id"):
        missing = await client.get(f"/api/v1/cases/{case_id}/attachments/{blob}",
                                   headers=headers)
        assert 404 == missing.status
    events = [e for e in await audit_trail(env.store, case_id)
              if e["type"] == "attachment.downloaded"]
    assert [(photo, "check"), (page, None)] == [(e["data"]["blob"], e["texts"].get("reason"))
                                                for e in events]
    outsider = await officer_headers(client, "sc-officer", PASSWORD)
    assert 404 == (await client.get(f"/api/v1/cases/{case_id}/attachments/{photo}",
                                    headers=outsider)).status
