"""Service-layer operations shared by the entry points (keys, audit, verification)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
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
    "audit_text",
    "audit_text_kind",
    "audit_trail",
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


# --- officers' free text in audit events ------------------------------------------------
# A reason for opening content, a disclosure request's reason, a supervisor's note: the
# hash chain cannot forget what it holds, yet such text goes with the case at the purge
# (hotline/retention.py). So the event holds a reference and a salted digest of the text,
# and the text is a record of the case that the purge deletes; the chain still verifies,
# and while the text exists the digest proves it is the one the event was written with.
_AUDIT_TEXT_PREFIX = "audit_text:"
_TEXT_REF_KEYS = frozenset({"text_ref", "sha256"})


def audit_text_kind(case_id: str) -> str:
    """The record kind of one case's audit texts (one kind per case: the purge lists its
    own and no other case's)."""
    return _AUDIT_TEXT_PREFIX + case_id


def _text_digest(salt: str, text: str) -> str:
    # Salted, so that a short, guessable reason cannot be confirmed from the digest alone.
    return hashlib.sha256(f"{salt}\n{text}".encode()).hexdigest()


async def audit_text(store: Store, case_id: str, text: str) -> dict[str, str]:
    """What an audit event's data holds for ``text``: ``{"text_ref", "sha256"}``, after the
    text itself is stored as a record of the case (written first: a crash in between
    leaves a record no event names, which the purge deletes with the others)."""
    key = "t_" + secrets.token_urlsafe(12)
    salt = secrets.token_hex(16)
    await store.records.put(audit_text_kind(case_id), key,
                            {"case_id": case_id, "text": text, "salt": salt},
                            expected_version=0)
    return {"text_ref": key, "sha256": _text_digest(salt, text)}


def _is_text_ref(value: object) -> bool:
    return isinstance(value, Mapping) and set(value) == _TEXT_REF_KEYS


async def audit_trail(store: Store, case_id: str,
                      events: Sequence[AuditEvent] | None = None) -> list[dict[str, Any]]:
    """A case's events as the API shows them: ``data`` exactly as hashed (so an export
    verifies outside Hotline) and ``texts``, the text each reference in ``data`` names —
    None once the purge deleted it (or if it no longer matches its digest)."""
    if events is None:
        events = await store.audit.events(case_id)
    kept = {r.key: r.doc for r in await store.records.list(audit_text_kind(case_id))} if any(
        _is_text_ref(v) for e in events for v in e.data.values()) else {}
    trail = []
    for event in events:
        texts: dict[str, str | None] = {}
        for name, value in event.data.items():
            if _is_text_ref(value):
                doc = kept.get(str(value["text_ref"]))
                texts[name] = None if doc is None or not hmac.compare_digest(
                    _text_digest(str(doc["salt"]), str(doc["text"])), str(value["sha256"])
                ) else str(doc["text"])
        trail.append({**event.to_api(), "texts": texts})
    return trail


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
