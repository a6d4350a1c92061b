"""Service-layer operations shared by the entry points (keys, audit, verification)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from hotline.clock import utcnow
from hotline.crypto import KeyRecord, KeyRing, MasterKey, new_key_record
from hotline.domain.audit import AuditEvent, AuditHead, BrokenLink, next_event, verify_chain
from hotline.domain.case import ROLES, SYSTEM_CHAIN, Account, is_system_chain
from hotline.errors import ConcurrencyConflict, NotFound, UnknownKey
from hotline.org import OrgTree
from hotline.ports import Store

__all__ = [
    "PublicKeyCache",
    "VerifyReport",
    "add_account",
    "append_audit",
    "append_system_audit",
    "load_keyring",
    "password_hasher",
    "rotate_keys",
    "verify_audit",
    "verify_password",
]

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def password_hasher() -> PasswordHasher:
    return _HASHER


def verify_password(account: Account | None, password: str) -> bool:
    """Constant work whether or not the account exists (no username oracle by timing)."""
    try:
        return _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password) \
            and account is not None and not account.disabled
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def add_account(store: Store, org: OrgTree, username: str, *, unit: str, role: str,
                      password: str | None = None, employee_id: str | None = None
                      ) -> tuple[Account, str | None]:
    """Create an account; returns it and the generated one-time password, if any."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if unit not in org:
        raise ValueError(f"unit {unit!r} is not an organisation unit")
    if not username or len(username) > 64 or not username.replace("-", "").replace(
            ".", "").replace("_", "").isalnum() or not username.isascii():
        raise ValueError("username: letters, digits, '.', '-' and '_' only (at most 64)")
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(15)
    if len(password) < 12:
        raise ValueError("password must be at least 12 characters")
    account = Account(username=username, password_hash=_HASHER.hash(password), role=role,
                      unit=unit, created_at=utcnow(), must_change_password=generated is not None,
                      employee_id=employee_id)
    await store.accounts.add(account)
    return account, generated


async def rotate_keys(store: Store, master: MasterKey) -> KeyRecord:
    record = new_key_record(master, utcnow())
    await store.keys.add(record)
    return record


async def load_keyring(store: Store, master: MasterKey) -> KeyRing:
    return KeyRing(await store.keys.list(), master)


class PublicKeyCache:
    """Intake's view of the active public key, re-read from the store now and then."""

    def __init__(self, store: Store, ttl_seconds: float = 30.0) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._loaded_at = 0.0
        self._active: KeyRecord | None = None
        self._known: dict[str, KeyRecord] = {}

    async def _refresh(self) -> None:
        records = await self._store.keys.list()
        self._known = {r.kid: r for r in records}
        actives = [r for r in records if r.active]
        self._active = max(actives, key=lambda r: r.created_at) if actives else None
        self._loaded_at = time.monotonic()

    async def active(self) -> tuple[str, X25519PublicKey]:
        if self._active is None or time.monotonic() - self._loaded_at > self._ttl:
            await self._refresh()
        if self._active is None:
            raise UnknownKey("no organisation key yet; run 'hotline keys rotate'")
        return self._active.kid, X25519PublicKey.from_public_bytes(self._active.public_key)

    async def accepts(self, kid: str) -> bool:
        """Whether submissions sealed to ``kid`` are taken (the active key, or a recent one)."""
        if kid not in self._known or time.monotonic() - self._loaded_at > self._ttl:
            await self._refresh()
        return kid in self._known


async def append_audit(store: Store, case_id: str, *, actor: str, type_: str,
                       data: Mapping[str, Any] | None = None, at: datetime | None = None,
                       attempts: int = 5) -> AuditEvent:
    """Append one event to a case's chain, re-reading the head if another writer won."""
    for _ in range(attempts):
        case = await store.cases.get(case_id)
        if case is None:
            raise NotFound(f"case {case_id} does not exist")
        event = next_event(case_id, case.audit_head, at=at or utcnow(), actor=actor,
                           type_=type_, data=data)
        try:
            await store.audit.append(event)
        except ConcurrencyConflict:
            continue
        return event
    raise ConcurrencyConflict(f"could not append to the audit chain of {case_id}")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    cases: int
    events: int
    first_broken: BrokenLink | None

    def to_api(self) -> dict[str, Any]:
        return {"ok": self.ok, "cases": self.cases, "events": self.events,
                "first_broken": None if self.first_broken is None else
                self.first_broken.to_api()}


async def verify_audit(store: Store, case_ids: list[str] | None = None) -> VerifyReport:
    """Recompute every chain (or the named cases'); the first broken link, if any."""
    if case_ids is None:
        case_ids = [case_id async for case_id in store.audit.case_ids()]
    total = 0
    first: BrokenLink | None = None
    for case_id in case_ids:
        case = await store.cases.get(case_id)
        events = await store.audit.events(case_id)
        total += len(events)
        if case is None and is_system_chain(case_id):
            broken: BrokenLink | None = verify_chain(case_id, events,
                                                     await system_head(store, case_id))
        elif case is None:
            broken = BrokenLink(case_id, 0, "audit events of a missing case")
        else:
            broken = verify_chain(case_id, events, case.audit_head)
        if broken is not None and first is None:
            first = broken
    return VerifyReport(first is None, len(case_ids), total, first)


# --- the system audit chain (issue 5) --------------------------------------------------
_HEAD_KIND = "audit_head"


async def system_head(store: Store, chain: str = SYSTEM_CHAIN) -> AuditHead | None:
    """The recorded head of a chain that belongs to no case (it may lag one append)."""
    record = await store.records.get(_HEAD_KIND, chain)
    return None if record is None else AuditHead(int(record.doc["seq"]), str(record.doc["hash"]))


async def append_system_audit(store: Store, *, actor: str, type_: str,
                              data: Mapping[str, Any] | None = None,
                              chain: str = SYSTEM_CHAIN, attempts: int = 5) -> AuditEvent:
    """Append to a chain of events about no case (accounts, keys …), moving its head."""
    for _ in range(attempts):
        events = await store.audit.events(chain)
        head = AuditHead(events[-1].seq, events[-1].hash) if events else None
        event = next_event(chain, head, at=utcnow(), actor=actor, type_=type_, data=data)
        try:
            await store.audit.append(event)
        except ConcurrencyConflict:
            continue
        await _move_head(store, chain, event)
        return event
    raise ConcurrencyConflict(f"could not append to the audit chain {chain}")


async def _move_head(store: Store, chain: str, event: AuditEvent) -> None:
    for _ in range(10):
        record = await store.records.get(_HEAD_KIND, chain)
        if record is not None and int(record.doc["seq"]) >= event.seq:
            return  # another appender already moved it further; heads never go back
        try:
            await store.records.put(_HEAD_KIND, chain, {"seq": event.seq, "hash": event.hash},
                                    expected_version=0 if record is None else record.version)
        except ConcurrencyConflict:
            continue
        return
# --- end system audit chain -------------------------------------------------------------
