"""Sign-in (password, TOTP, throttling), TOTP enrolment and the admins' account API.

Tokens carry ``mfa`` (a second factor was checked), ``scope`` (``full``, or ``enrol``
for an account that must enrol TOTP before it may do anything else) and ``pv`` (a
fingerprint of the password hash, so a reset ends every earlier session).
Every account change is an event on the system audit chain (``_system``).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from hotline.clock import utcnow
from hotline.contract import format_time, parse_time
from hotline.crypto import MasterKey
from hotline.domain.case import ROLES, Account
from hotline.errors import ConcurrencyConflict, NotFound
from hotline.logging import get_logger
from hotline.org import OrgTree
from hotline.ports import Store
from hotline.services import add_account, append_system_audit, password_hasher, verify_password
from hotline.totp import TOTP_ROLES, SecondFactor, TotpError
from hotline.web import ApiError, read_json

__all__ = ["MIN_PASSWORD", "SignIn", "Throttle", "session_claims"]

_log = get_logger("hotline.casework.accounts")

MIN_PASSWORD = 12  # length-based policy (NIST SP 800-63B): long, no composition rules
MAX_PASSWORD = 1024
_FREE_FAILURES = 5
_BASE_LOCK = timedelta(seconds=30)
_MAX_LOCK = timedelta(minutes=15)


def password_version(account: Account) -> str:
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


def session_claims(account: Account, *, mfa: bool, scope: str = "full") -> dict[str, Any]:
    return {"sub": account.username, "role": account.role, "mfa": mfa, "scope": scope,
            "pv": password_version(account)}


class Throttle:
    """Failed sign-ins per account name (never per IP): after five, a doubling lock."""

    KIND = "signin_throttle"

    def __init__(self, store: Store) -> None:
        self._store = store

    async def locked_for(self, username: str, now: datetime) -> int:
        """Seconds until ``username`` may try again (0: now)."""
        record = await self._store.records.get(self.KIND, username)
        if record is None or not record.doc.get("locked_until"):
            return 0
        until = parse_time(str(record.doc["locked_until"]), field="locked_until")
        return max(0, int((until - now).total_seconds() + 0.999))

    async def failed(self, username: str, now: datetime) -> None:
        for _ in range(5):
            record = await self._store.records.get(self.KIND, username)
            failures = (0 if record is None else int(record.doc.get("failures", 0))) + 1
            locked = None
            if failures >= _FREE_FAILURES:
                lock = min(_BASE_LOCK * 2 ** (failures - _FREE_FAILURES), _MAX_LOCK)
                locked = format_time(now + lock)
            try:
                await self._store.records.put(
                    self.KIND, username, {"failures": failures, "locked_until": locked},
                    expected_version=0 if record is None else record.version)
            except ConcurrencyConflict:
                continue
            return

    async def clear(self, username: str) -> None:
        record = await self._store.records.get(self.KIND, username)
        if record is not None and record.doc.get("failures"):
            # A concurrent failure counts: a conflict leaves it uncleared by this success.
            with contextlib.suppress(ConcurrencyConflict):
                await self._store.records.put(self.KIND, username,
                                              {"failures": 0, "locked_until": None},
                                              expected_version=record.version)


@dataclass(frozen=True)
class SignInResult:
    account: Account
    mfa: bool
    scope: str
    method: str | None


class SignIn:
    """The sign-in decision, shared by the API and the UI."""

    def __init__(self, store: Store, master: MasterKey) -> None:
        self.store = store
        self.factor = SecondFactor(store, master)
        self.throttle = Throttle(store)

    async def __call__(self, username: object, password: object, code: object
                       ) -> SignInResult:
        if not isinstance(username, str) or not isinstance(password, str) or (
                code is not None and not isinstance(code, str)):
            raise ApiError(400, "invalid_request", "username, password (and totp) are strings")
        if len(password) > MAX_PASSWORD or len(username) > 64 or not username:
            raise ApiError(401, "unauthorized", "wrong username or password")
        now = utcnow()
        wait = await self.throttle.locked_for(username, now)
        if wait:
            raise ApiError(429, "too_many_attempts",
                           f"too many failed sign-ins; try again in {wait} s")
        account = await self.store.accounts.get(username)
        if not verify_password(account, password):
            await self.throttle.failed(username, now)
            raise ApiError(401, "unauthorized", "wrong username or password")
        assert account is not None
        enrolled = await self.factor.enrolled(username)
        if not enrolled and account.role not in TOTP_ROLES:
            await self.throttle.clear(username)
            return SignInResult(account, False, "full", None)
        if not enrolled:
            # Password right, second factor required but not set up: enrolment only.
            await self.throttle.clear(username)
            return SignInResult(account, False, "enrol", None)
        if not code:
            raise ApiError(401, "totp_required", "enter the code from the authenticator app")
        method = await self.factor.check(username, code)
        if method is None:
            await self.throttle.failed(username, now)
            raise ApiError(401, "unauthorized", "wrong or already used code")
        await self.throttle.clear(username)
        return SignInResult(account, True, "full", method)


# --- account administration ---------------------------------------------------------


def _public(account: Account, enrolled: bool) -> dict[str, Any]:
    return {"username": account.username, "role": account.role, "unit": account.unit,
            "disabled": account.disabled, "employee_id": account.employee_id,
            "created_at": format_time(account.created_at), "totp_enrolled": enrolled,
            "must_change_password": account.must_change_password}


class AccountAdmin:
    """What admins do to accounts; each change audited on the system chain."""

    def __init__(self, store: Store, org: OrgTree, factor: SecondFactor) -> None:
        self._store = store
        self._org = org
        self._factor = factor

    async def listing(self) -> list[dict[str, Any]]:
        return [_public(a, await self._factor.enrolled(a.username))
                for a in await self._store.accounts.list()]

    async def create(self, admin: Account, doc: dict[str, Any]) -> dict[str, Any]:
        username, role, unit = doc.get("username"), doc.get("role"), doc.get("unit")
        employee_id = doc.get("employee_id")
        if set(doc) - {"username", "role", "unit", "employee_id"} or not all(
                isinstance(v, str) for v in (username, role, unit)) or (
                employee_id is not None and not isinstance(employee_id, str)):
            raise ApiError(422, "unprocessable",
                           "username, role and unit (strings) are required; employee_id optional")
        assert isinstance(username, str)
        assert isinstance(role, str)
        assert isinstance(unit, str)
        try:
            account, password = await add_account(self._store, self._org, username, unit=unit,
                                                   role=role, employee_id=employee_id)
        except ValueError as exc:
            raise ApiError(422, "unprocessable", str(exc)) from None
        except ConcurrencyConflict:
            raise ApiError(409, "conflict", "an account with this username exists") from None
        await append_system_audit(self._store, actor=admin.username, type_="account.created",
                                  data={"username": username, "role": role, "unit": unit})
        return {**_public(account, False), "one_time_password": password}

    async def change(self, admin: Account, username: str, doc: dict[str, Any]
                     ) -> dict[str, Any]:
        account = await self._get(username)
        allowed = {"role", "unit", "disabled"}
        if not doc or set(doc) - allowed:
            raise ApiError(422, "unprocessable", "change role, unit and/or disabled")
        role, unit, disabled = doc.get("role", account.role), doc.get("unit", account.unit), \
            doc.get("disabled", account.disabled)
        if role not in ROLES:
            raise ApiError(422, "unprocessable", f"role must be one of {', '.join(ROLES)}")
        if not isinstance(unit, str) or unit not in self._org:
            raise ApiError(422, "unprocessable", "unit is not an organisation unit")
        if not isinstance(disabled, bool):
            raise ApiError(422, "unprocessable", "disabled must be true or false")
        if username == admin.username:
            raise ApiError(409, "conflict", "admins do not change their own account here")
        updated = replace(account, role=role, unit=unit, disabled=disabled)
        await self._store.accounts.update(updated)
        changes = {k: {"from": getattr(account, k), "to": getattr(updated, k)}
                   for k in sorted(allowed) if getattr(account, k) != getattr(updated, k)}
        await append_system_audit(self._store, actor=admin.username, type_="account.changed",
                                  data={"username": username, "changes": changes})
        return _public(updated, await self._factor.enrolled(username))

    async def reset(self, admin: Account, username: str, doc: dict[str, Any]
                    ) -> dict[str, Any]:
        """A new one-time password (ends all sessions); with ``totp: true`` also re-enrolment."""
        account = await self._get(username)
        reset_totp = doc.get("totp", False)
        if set(doc) - {"totp"} or not isinstance(reset_totp, bool):
            raise ApiError(422, "unprocessable", "totp must be true or false")
        password = secrets.token_urlsafe(15)
        updated = replace(account, password_hash=password_hasher().hash(password),
                          must_change_password=True)
        await self._store.accounts.update(updated)
        if reset_totp:
            await self._factor.reset(username)
        await Throttle(self._store).clear(username)
        await append_system_audit(self._store, actor=admin.username, type_="account.reset",
                                  data={"username": username, "totp_reset": reset_totp})
        return {**_public(updated, await self._factor.enrolled(username)),
                "one_time_password": password}

    async def _get(self, username: str) -> Account:
        account = await self._store.accounts.get(username) if len(username) <= 64 else None
        if account is None:
            raise ApiError(404, "not_found", "no such account")
        return account


async def change_password(store: Store, account: Account, doc: dict[str, Any]) -> Account:
    """An officer replaces their password (the current one proves it is them)."""
    current, new = doc.get("current"), doc.get("new")
    if set(doc) != {"current", "new"} or not isinstance(current, str) or not isinstance(
            new, str):
        raise ApiError(422, "unprocessable", "current and new (strings) are required")
    if not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:
        raise ApiError(422, "unprocessable",
                       f"the new password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if not verify_password(account, current):
        raise ApiError(403, "forbidden", "the current password is wrong")
    updated = replace(account, password_hash=password_hasher().hash(new),
                      must_change_password=False)
    try:
        await store.accounts.update(updated)
    except NotFound:
        raise ApiError(404, "not_found", "no such account") from None
    await append_system_audit(store, actor=account.username, type_="account.password_changed",
                              data={"username": account.username})
    return updated


async def enrol_begin(sign_in: SignIn, account: Account) -> dict[str, str]:
    try:
        enrolment = await sign_in.factor.begin(account.username)
    except TotpError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    await append_system_audit(sign_in.store, actor=account.username,
                              type_="totp.enrolment_started", data={"username": account.username})
    return {"secret": enrolment.secret, "uri": enrolment.uri}


async def enrol_confirm(sign_in: SignIn, account: Account, request: web.Request
                        ) -> list[str]:
    doc = await read_json(request, 1024)
    code = doc.get("code")
    if set(doc) != {"code"} or not isinstance(code, str):
        raise ApiError(422, "unprocessable", "code (a string) is required")
    try:
        codes = await sign_in.factor.confirm(account.username, code)
    except TotpError as exc:
        raise ApiError(422, "unprocessable", str(exc)) from None
    await append_system_audit(sign_in.store, actor=account.username, type_="totp.enrolled",
                              data={"username": account.username})
    _log.info("officer.totp_enrolled", username=account.username)
    return codes

