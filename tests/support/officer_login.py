"""Officers' sign-in for tests: password, then TOTP enrolment or a fresh TOTP code.

Supervisors, admins and auditors must use a second factor, and a TOTP code is accepted
once per 30-second step, so the secrets and the last step used are remembered per
username, and an aiohttp test client's sessions are reused within a test.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pyotp
from aiohttp.test_utils import TestClient

Post = Callable[[str, dict[str, Any], dict[str, str]], Awaitable[tuple[int, Any]]]


class Authenticator:
    """An officer's authenticator app, for any number of accounts."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self._last: dict[str, int] = {}
        # A one-time password (admin-created or reset account) is changed on first use;
        # username → (one-time password, the password it was changed to).
        self.changed: dict[str, tuple[str, str]] = {}

    def code(self, username: str) -> str:
        """A code of a step not used before (now, or the next one ±1 still accepted)."""
        now = int(time.time()) // 30
        step = max(now - 1, self._last.get(username, 0) + 1)
        if step > now + 1:
            time.sleep((step - 1) * 30 - time.time() + 0.05)
        self._last[username] = step
        return pyotp.TOTP(self.secrets[username]).at(step * 30)

    async def login(self, post: Post, username: str, password: str) -> tuple[int, Any]:
        """Sign in (enrolling on first use, and replacing a one-time password); the login
        answer or the failed one."""
        status, doc = await self._login(post, username, password)
        if status != 200 or not doc.get("password_change_required"):
            return status, doc
        new = password + "-changed"
        status, changed = await post("/api/v1/auth/password",
                                     {"current": password, "new": new},
                                     {"Authorization": f"Bearer {doc['token']}"})
        assert 200 == status, changed
        self.changed[username] = (password, new)
        return await self._login(post, username, new)

    async def _login(self, post: Post, username: str, password: str) -> tuple[int, Any]:
        if self.changed.get(username, ("", ""))[0] == password:
            password = self.changed[username][1]
        body: dict[str, Any] = {"username": username, "password": password}
        if username in self.secrets:
            body["totp"] = self.code(username)
        status, doc = await post("/api/v1/auth/login", body, {})
        if status != 200 or not doc.get("enrolment_required"):
            return status, doc
        auth = {"Authorization": f"Bearer {doc['token']}"}
        status, enrolment = await post("/api/v1/auth/totp/enrol", {}, auth)
        assert 200 == status, enrolment
        self.secrets[username] = enrolment["secret"]
        status, confirmed = await post("/api/v1/auth/totp/confirm",
                                       {"code": self.code(username)}, auth)
        assert 200 == status, confirmed
        return status, confirmed


_SESSIONS: weakref.WeakKeyDictionary[Any, tuple[Authenticator, dict[str, dict[str, str]]]] = \
    weakref.WeakKeyDictionary()


def client_post(client: TestClient) -> Post:  # type: ignore[type-arg]
    async def post(path: str, body: dict[str, Any], headers: dict[str, str]
                   ) -> tuple[int, Any]:
        resp = await client.post(path, json=body, headers=headers)
        return resp.status, await resp.json()
    return post


def authenticator_of(client: TestClient) -> Authenticator:  # type: ignore[type-arg]
    if client not in _SESSIONS:
        _SESSIONS[client] = (Authenticator(), {})
    return _SESSIONS[client][0]


async def officer_headers(client: TestClient, username: str, password: str,  # type: ignore[type-arg]
                          *, fresh: bool = False) -> dict[str, str]:
    """Bearer headers of a signed-in officer (the same session again unless ``fresh``)."""
    authenticator = authenticator_of(client)
    sessions = _SESSIONS[client][1]
    if fresh or username not in sessions:
        status, doc = await authenticator.login(client_post(client), username, password)
        assert 200 == status, doc
        sessions[username] = {"Authorization": f"Bearer {doc['token']}"}
    return sessions[username]
