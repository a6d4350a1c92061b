"""TOTP second factor (RFC 6238 through pyotp) with one-time recovery codes.

The shared secret is wrapped by the master key like the organisation's private keys;
recovery codes are kept only as keyed hashes. A code is accepted once: a time step at or
before the last one used is refused (no replay within the 30-second window).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pyotp

from hotline.crypto import MasterKey
from hotline.errors import ConcurrencyConflict
from hotline.ports import Record, Store

__all__ = ["TOTP_ROLES", "Enrolment", "SecondFactor", "TotpError"]

TOTP_ROLES = frozenset({"supervisor", "admin", "auditor"})
_KIND = "totp"
_STEP = 30
_RECOVERY_CODES = 10
_ISSUER = "Hotline"


class TotpError(Exception):
    """An enrolment step that cannot be taken (no enrolment begun, wrong code)."""


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for manual entry
    uri: str  # otpauth:// for an authenticator app


class SecondFactor:
    """Enrolment and checking of one account's TOTP and recovery codes."""

    def __init__(self, store: Store, master: MasterKey) -> None:
        self._store = store
        self._master = master
        self._code_key = master.derive("totp-recovery-codes")

    async def _record(self, username: str) -> Record | None:
        return await self._store.records.get(_KIND, username)

    async def enrolled(self, username: str) -> bool:
        record = await self._record(username)
        return record is not None and bool(record.doc.get("enabled"))

    async def begin(self, username: str) -> Enrolment:
        """A fresh secret, pending until confirmed with a code (an existing one stays)."""
        record = await self._record(username)
        if record is not None and record.doc.get("enabled"):
            raise TotpError("a second factor is already enrolled; an admin can reset it")
        secret = pyotp.random_base32()
        wrapped = self._master.wrap(secret.encode(), label=f"totp:{username}")
        doc = {"enabled": False, "pending": base64.b64encode(wrapped).decode(),
               "secret": None, "last_step": 0, "recovery": []}
        await self._store.records.put(_KIND, username, doc,
                                      expected_version=0 if record is None else record.version)
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=_ISSUER)
        return Enrolment(secret, uri)

    async def confirm(self, username: str, code: str) -> list[str]:
        """Enable the pending secret if ``code`` matches it; returns the recovery codes."""
        record = await self._record(username)
        if record is None or not record.doc.get("pending"):
            raise TotpError("begin the enrolment first")
        secret = self._unwrap(username, str(record.doc["pending"]))
        step = _matching_step(secret, code, after=0)
        if step is None:
            raise TotpError("the code does not match; check the device's clock and retry")
        codes = [_format_code(secrets.token_hex(5)) for _ in range(_RECOVERY_CODES)]
        doc = {"enabled": True, "pending": None, "secret": record.doc["pending"],
               "last_step": step, "recovery": [self._hash_code(c) for c in codes]}
        try:
            await self._store.records.put(_KIND, username, doc, expected_version=record.version)
        except ConcurrencyConflict:
            raise TotpError("the enrolment changed meanwhile; start again") from None
        return codes

    async def check(self, username: str, code: str) -> str | None:
        """``"totp"`` or ``"recovery"`` if ``code`` is accepted (and then used up), else None."""
        for _ in range(3):
            record = await self._record(username)
            if record is None or not record.doc.get("enabled") or not code:
                return None
            doc: dict[str, Any] = dict(record.doc)
            step = _matching_step(self._unwrap(username, str(doc["secret"])), code,
                                  after=int(doc.get("last_step", 0)))
            method = "totp"
            if step is not None:
                doc["last_step"] = step
            else:
                hashed = self._hash_code(code)
                remaining = [h for h in doc.get("recovery", []) if not hmac.compare_digest(
                    str(h), hashed)]
                if len(remaining) == len(doc.get("recovery", [])):
                    return None
                doc["recovery"], method = remaining, "recovery"
            try:
                await self._store.records.put(_KIND, username, doc,
                                              expected_version=record.version)
            except ConcurrencyConflict:
                continue  # a concurrent sign-in used a code: decide again on fresh state
            return method
        return None

    async def recovery_left(self, username: str) -> int:
        record = await self._record(username)
        return 0 if record is None else len(record.doc.get("recovery", []))

    async def reset(self, username: str) -> None:
        """Forget the enrolment (an admin's reset): the next sign-in enrols again."""
        record = await self._record(username)
        if record is not None:
            await self._store.records.put(
                _KIND, username, {"enabled": False, "pending": None, "secret": None,
                                  "last_step": 0, "recovery": []},
                expected_version=record.version)

    def _unwrap(self, username: str, wrapped: str) -> str:
        return self._master.unwrap(base64.b64decode(wrapped), label=f"totp:{username}").decode()

    def _hash_code(self, code: str) -> str:
        normal = _normal_code(code)
        return hmac.new(self._code_key, normal.encode(), hashlib.sha256).hexdigest()


def _format_code(raw: str) -> str:
    return f"{raw[:5]}-{raw[5:]}"


def _normal_code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def _matching_step(secret: str, code: str, *, after: int) -> int | None:
    """The time step (now ±1) whose code is ``code`` and that is later than ``after``."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // _STEP
    for step in (now - 1, now, now + 1):
        if step > after and hmac.compare_digest(totp.at(step * _STEP), code):
            return step
    return None
