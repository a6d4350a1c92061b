"""Sign-in hardening: TOTP enrolment and codes, recovery codes, throttling, account admin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from casework.app import CaseworkDeps, create_app
from hotline.services import add_account, verify_audit
from tests.support.embedded import Embedded, embedded
from tests.support.officer_login import authenticator_of, client_post, officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path) as instance:
        for name, unit, role in (("gd-officer", "GD", "officer"), ("hq-super", "HQ", "supervisor"),
                                 ("sc-officer", "SC", "officer")):
            await add_account(instance.store, instance.org, name, unit=unit, role=role,
                              password=PASSWORD)
        yield instance


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_app(CaseworkDeps(env.settings, env.store, env.bus, env.org,
                                                        env.master)))


async def sign_in(client: TestClient, username: str, password: str = PASSWORD,  # type: ignore[type-arg]
                  totp: str | None = None) -> tuple[int, Any]:
    body = {"username": username, "password": password}
    if totp is not None:
        body["totp"] = totp
    resp = await client.post("/api/v1/auth/login", json=body)
    return resp.status, await resp.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_supervisor_must_enrol_before_anything_else(client: TestClient) -> None:  # type: ignore[type-arg]
    """A supervisor's password alone gives an enrolment-only session; cases are refused."""
    status, doc = await sign_in(client, "hq-super")
    assert (200, True) == (status, doc["enrolment_required"])
    resp = await client.get("/api/v1/cases", headers=bearer(doc["token"]))
    assert (403, "totp_enrolment_required") == (resp.status, (await resp.json())["error"]["code"])
    enrol = await client.post("/api/v1/auth/totp/enrol", headers=bearer(doc["token"]))
    secret = (await enrol.json())["secret"]
    wrong = await client.post("/api/v1/auth/totp/confirm", json={"code": "000000"},
                              headers=bearer(doc["token"]))
    assert 422 == wrong.status
    ok = await client.post("/api/v1/auth/totp/confirm", headers=bearer(doc["token"]),
                           json={"code": pyotp.TOTP(secret).now()})
    confirmed = await ok.json()
    assert 10 == len(set(confirmed["recovery_codes"]))
    assert 200 == (await client.get("/api/v1/cases", headers=bearer(confirmed["token"]))).status


async def test_enrolled_sign_in_needs_a_fresh_code_or_a_recovery_code(
        client: TestClient) -> None:  # type: ignore[type-arg]
    """Without a code 401 totp_required; a used code is refused; a recovery code works once."""
    authenticator = authenticator_of(client)
    status, confirmed = await authenticator.login(client_post(client), "hq-super", PASSWORD)
    assert 200 == status
    status, doc = await sign_in(client, "hq-super")
    assert (401, "totp_required") == (status, doc["error"]["code"])
    code = authenticator.code("hq-super")
    assert 200 == (await sign_in(client, "hq-super", totp=code))[0]
    assert 401 == (await sign_in(client, "hq-super", totp=code))[0]  # replay
    recovery = confirmed["recovery_codes"][0]
    status, doc = await sign_in(client, "hq-super", totp=recovery.upper())
    assert (200, 9) == (status, doc["recovery_codes_left"])
    assert 401 == (await sign_in(client, "hq-super", totp=recovery))[0]


async def test_failed_attempts_lock_that_account_only(client: TestClient) -> None:  # type: ignore[type-arg]
    """After five wrong passwords the sixth try is 429 even when right; others sign in."""
    for _ in range(5):
        assert 401 == (await sign_in(client, "gd-officer", password="wrong password!"))[0]
    status, doc = await sign_in(client, "gd-officer")
    assert (429, "too_many_attempts") == (status, doc["error"]["code"])
    assert 200 == (await sign_in(client, "sc-officer"))[0]
    # Unknown names are throttled alike, so the lock reveals no account.
    for _ in range(5):
        await sign_in(client, "nobody", password="wrong password!")
    assert 429 == (await sign_in(client, "nobody"))[0]


async def test_admin_creates_changes_disables_and_resets_accounts(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """Every admin change takes effect on the next request and is on the system chain."""
    admin = await officer_headers(client, "admin", env.admin_password)
    officer = await officer_headers(client, "gd-officer", PASSWORD)
    assert 403 == (await client.get("/api/v1/accounts", headers=officer)).status
    resp = await client.post("/api/v1/accounts", headers=admin,
                             json={"username": "new-clerk", "role": "clerk", "unit": "GD"})
    created = await resp.json()
    assert (201, "clerk") == (resp.status, created["role"])
    bad = await client.post("/api/v1/accounts", headers=admin,
                            json={"username": "x", "role": "emperor", "unit": "GD"})
    assert 422 == bad.status
    dup = await client.post("/api/v1/accounts", headers=admin,
                            json={"username": "new-clerk", "role": "clerk", "unit": "GD"})
    assert 409 == dup.status
    clerk = await officer_headers(client, "new-clerk", created["one_time_password"])
    assert 200 == (await client.get("/api/v1/cases", headers=clerk)).status
    moved = await client.patch("/api/v1/accounts/new-clerk", headers=admin,
                               json={"unit": "SC", "role": "officer"})
    changed = await moved.json()
    assert ("SC", "officer") == (changed["unit"], changed["role"])
    await client.patch("/api/v1/accounts/new-clerk", headers=admin, json={"disabled": True})
    assert 401 == (await client.get("/api/v1/cases", headers=clerk)).status
    reset = await client.post("/api/v1/accounts/gd-officer/reset", headers=admin, json={})
    assert 401 == (await client.get("/api/v1/cases", headers=officer)).status  # session ended
    new_password = (await reset.json())["one_time_password"]
    assert 200 == (await sign_in(client, "gd-officer", password=new_password))[0]
    assert 409 == (await client.patch("/api/v1/accounts/admin", headers=admin,
                                      json={"disabled": True})).status
    events = await env.store.audit.events("_system")
    # (password_changed: the admin's and the new clerk's one-time passwords, replaced by
    # the sign-in helper)
    assert ["account.created", "account.changed", "account.changed", "account.reset"] == [
        e.type for e in events if e.type.startswith("account.")
        and e.type != "account.password_changed"]
    assert {"username": "new-clerk", "changes": {"disabled": {"from": False, "to": True}}} == \
        events[-2].data
    assert (await verify_audit(env.store)).ok


async def test_reset_with_totp_makes_the_supervisor_enrol_again(
        client: TestClient, env: Embedded) -> None:  # type: ignore[type-arg]
    """An admin's TOTP reset sends the next sign-in back to enrolment."""
    await officer_headers(client, "hq-super", PASSWORD)
    admin = await officer_headers(client, "admin", env.admin_password)
    resp = await client.post("/api/v1/accounts/hq-super/reset", headers=admin,
                             json={"totp": True})
    password = (await resp.json())["one_time_password"]
    status, doc = await sign_in(client, "hq-super", password=password)
    assert (200, True) == (status, doc.get("enrolment_required"))


async def test_password_change_applies_the_length_policy(client: TestClient) -> None:  # type: ignore[type-arg]
    """A new password needs 12+ characters and the current one; old sessions end."""
    headers = await officer_headers(client, "gd-officer", PASSWORD)
    short = await client.post("/api/v1/auth/password", headers=headers,
                              json={"current": PASSWORD, "new": "short"})
    assert 422 == short.status
    wrong = await client.post("/api/v1/auth/password", headers=headers,
                              json={"current": "not it at all", "new": "x" * 20})
    assert 403 == wrong.status
    ok = await client.post("/api/v1/auth/password", headers=headers,
                           json={"current": PASSWORD, "new": "correct horse battery"})
    assert 200 == ok.status
    assert 401 == (await client.get("/api/v1/cases", headers=headers)).status
    assert 200 == (await sign_in(client, "gd-officer", password="correct horse battery"))[0]


async def test_sign_in_logs_no_password_code_or_token(client: TestClient) -> None:  # type: ignore[type-arg]
    """Enrolment and sign-in log neither passwords, TOTP secrets, codes nor tokens."""
    authenticator = authenticator_of(client)
    with capture_logs() as logs:
        _, confirmed = await authenticator.login(client_post(client), "hq-super", PASSWORD)
        code = authenticator.code("hq-super")
        _, signed = await sign_in(client, "hq-super", totp=code)
        await sign_in(client, "hq-super", password="wrong password!", totp="123456")
    flat = json.dumps(logs, default=str)
    assert logs
    for secret in (PASSWORD, "wrong password!", code, authenticator.secrets["hq-super"],
                   confirmed["token"], signed["token"], *confirmed["recovery_codes"]):
        assert secret not in flat
