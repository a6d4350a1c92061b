"""Signed checkpoints over the heads of every audit chain (Ed25519).

A hash chain alone cannot show that its last events were cut off when whoever cut them
also rewrote the recorded head. A checkpoint fixes, at one moment, the head (seq, hash)
of every chain that moved since the previous checkpoint, chains to that previous
checkpoint by hash, and is signed with an Ed25519 key whose private half is wrapped by
the master key. Verification needs only the public key: each checkpoint's signature and
link, then every chain must still hold the checkpointed event at the checkpointed seq.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from hotline.clock import utcnow
from hotline.contract import format_time, parse_time
from hotline.crypto import MasterKey
from hotline.domain.audit import GENESIS, AuditHead, BrokenLink
from hotline.errors import ConcurrencyConflict
from hotline.ports import Record, Store
from hotline.services import VerifyReport, verify_audit

__all__ = ["CHECKPOINT_KIND", "CheckpointReport", "FullReport", "checkpoint_public_key",
           "make_checkpoint", "signing_key", "verify_checkpoints", "verify_everything"]

KEY_KIND = "audit_signing_key"
CHECKPOINT_KIND = "audit_checkpoint"
STATE_KIND = "audit_checkpoint_state"
_ACTIVE = "active"
_RAW = serialization.Encoding.Raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _kid(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


async def signing_key(store: Store, master: MasterKey) -> tuple[str, Ed25519PrivateKey]:
    """The checkpoint signing key, created (and wrapped by the master key) on first use."""
    record = await store.records.get(KEY_KIND, _ACTIVE)
    if record is None:
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
        raw = private.private_bytes(_RAW, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        kid = _kid(public)
        try:
            record = await store.records.put(KEY_KIND, _ACTIVE, {
                "kid": kid, "public_key": _b64(public),
                "wrapped_private_key": _b64(master.wrap(raw, label=f"audit:{kid}")),
                "created_at": format_time(utcnow())}, expected_version=0)
        except ConcurrencyConflict:
            record = await store.records.get(KEY_KIND, _ACTIVE)
            assert record is not None
    kid = str(record.doc["kid"])
    raw = master.unwrap(base64.b64decode(str(record.doc["wrapped_private_key"])),
                        label=f"audit:{kid}")
    return kid, Ed25519PrivateKey.from_private_bytes(raw)


async def checkpoint_public_key(store: Store) -> bytes | None:
    """The raw 32-byte public key that verifies checkpoints (None before the first one)."""
    record = await store.records.get(KEY_KIND, _ACTIVE)
    return None if record is None else base64.b64decode(str(record.doc["public_key"]))


def _heads_of(record: Record) -> dict[str, AuditHead]:
    return {chain: AuditHead(int(seq), str(digest))
            for chain, (seq, digest) in dict(record.doc["heads"]).items()}


def _digest(record: Record) -> str:
    return hashlib.sha256(_canonical(dict(record.doc))).hexdigest()


def _key(number: int) -> str:
    return f"{number:012d}"


# Checkpoint records read per store call where all of them are gone through: a year of
# 5-minutely checkpoints is ≈ 100,000 records (more under load, 5,000 heads each), which
# a reader must not hold at once.
CHECKPOINT_PAGE = 100


async def checkpoint_records(store: Store, *, after: int = 0,
                             page: int | None = None) -> AsyncIterator[Record]:
    """The checkpoint records numbered after ``after``, in order, read ``page`` at a time
    (:data:`CHECKPOINT_PAGE`; by key: a key that is not a number is listed where it sorts)."""
    page = page or CHECKPOINT_PAGE
    start = _key(after + 1)
    while True:
        records = await store.records.list(CHECKPOINT_KIND, start=start, limit=page)
        for record in records:
            yield record
        if len(records) < page:
            return
        start = records[-1].key + "\x00"  # the first key after it


async def recent_checkpoints(store: Store, count: int) -> list[Record]:
    """The last ``count`` checkpoint records, oldest first, found from the state record
    (without one, by going through all of them once)."""
    state = await store.records.get(STATE_KIND, _ACTIVE)
    after = 0 if state is None else max(0, int(state.doc["n"]) - count)
    # (A stale state is behind by the records of one run: the tail is read to its end.)
    recent: deque[Record] = deque(maxlen=count)  # only these are held, not all of them
    async for record in checkpoint_records(store, after=after):
        recent.append(record)
    return list(recent)


async def _latest(store: Store) -> tuple[Record | None, Record | None, bool]:
    """The last checkpoint, the state record, and whether that state belongs to it (not
    when missing, or stale because a run stopped between a checkpoint and its state)."""
    state = await store.records.get(STATE_KIND, _ACTIVE)
    if state is not None:
        number = int(state.doc["n"])
        last = await store.records.get(CHECKPOINT_KIND, _key(number))
        if last is not None and await store.records.get(
                CHECKPOINT_KIND, _key(number + 1)) is None:
            return last, state, True
    previous = await recent_checkpoints(store, 1)
    return (previous[-1] if previous else None), state, False


# Heads per checkpoint record, and events the store reads per round: what moved in one
# interval under sustained load (tens of thousands of cases) is signed in several linked
# records, so that memory does not grow with the load (issue 7: one record of 46,000
# heads held ≈ 45 MB of Python objects and JSON at its peak).
CHECKPOINT_HEADS = 5_000


async def make_checkpoint(store: Store, master: MasterKey) -> Record | None:
    """Sign the heads that moved since the last checkpoint: the last record written, or
    None if nothing moved (or another instance was writing the same checkpoint).

    The work follows what moved, not how much exists: the state record keeps the last
    checkpoint's number, the count of chains and the store's mark, and the store is read
    from the mark on in rounds of :data:`CHECKPOINT_HEADS` events. Without a usable state
    (first run, or a run cut off before writing it) every chain and checkpoint is read
    once, as a full pass.
    """
    kid, private = await signing_key(store, master)
    last, state, current = await _latest(store)
    full = last is None or state is None or not current
    signed_before: dict[str, AuditHead] = {}  # a full pass compares with all of history
    if full:
        async for record in checkpoint_records(store):
            signed_before.update(_heads_of(record))
    chains = len(signed_before) if full or state is None else int(state.doc["chains"])
    mark = None if full or state is None else str(state.doc["mark"])
    written: Record | None = None
    while True:
        found = await store.audit.heads_since(mark, limit=CHECKPOINT_HEADS)
        if full or last is None:
            known = signed_before
        else:  # a store without a commit order may repeat chains signed shortly before
            known = await _recent_heads(store, last, found.repeats_from)
        moved = sorted((c, h) for c, h in found.heads.items() if known.get(c) != h)
        parts = [moved[at:at + CHECKPOINT_HEADS] for at in range(0, len(moved),
                                                                 CHECKPOINT_HEADS)]
        for part in parts or ([[]] if last is None else []):  # the first one even if empty
            chains += sum(1 for c, _ in part if c in found.started and c not in known)
            signed = await _sign(store, kid, private, last, part, chains)
            if signed is None:
                return written
            last = written = signed
        if last is not None and (written is not None or not current):
            # Also when nothing moved on a full pass: the next run can start from here.
            state = await _save_state(store, state, int(last.doc["n"]), chains, found.mark)
            current = state is not None
        mark = found.mark
        if not found.more or state is None:
            return written


async def _sign(store: Store, kid: str, private: Ed25519PrivateKey, last: Record | None,
                heads: list[tuple[str, AuditHead]], chains: int) -> Record | None:
    """The checkpoint after ``last`` over ``heads``; None if another instance wrote it."""
    number = 1 if last is None else int(last.doc["n"]) + 1
    body: dict[str, Any] = {
        "n": number, "at": format_time(utcnow()), "kid": kid,
        "prev": GENESIS if last is None else _digest(last),
        "chains": chains, "heads": {chain: [head.seq, head.hash] for chain, head in heads}}
    body["signature"] = _b64(private.sign(_canonical(body)))
    try:
        return await store.records.put(CHECKPOINT_KIND, _key(number), body,
                                       expected_version=0)
    except ConcurrencyConflict:
        return None


async def _recent_heads(store: Store, last: Record,
                        repeats_from: datetime | None) -> dict[str, AuditHead]:
    """What the last checkpoint signed, and, where the store may repeat chains appended
    from ``repeats_from`` on, what the checkpoints since then (and one before) signed."""
    known = _heads_of(last)
    number = int(last.doc["n"])
    while repeats_from is not None and number > 1 \
            and parse_time(last.doc["at"], field="at") >= repeats_from:
        number -= 1
        earlier = await store.records.get(CHECKPOINT_KIND, _key(number))
        if earlier is None:
            break
        known = {**_heads_of(earlier), **known}
        last = earlier
    return known


async def _save_state(store: Store, state: Record | None, number: int, chains: int,
                      mark: str) -> Record | None:
    """The new state; None if a concurrent writer got there first (the state is then
    stale, :func:`_latest` sees it, and the next run makes a full pass)."""
    try:
        return await store.records.put(STATE_KIND, _ACTIVE,
                                       {"n": number, "chains": chains, "mark": mark},
                                       expected_version=0 if state is None else state.version)
    except ConcurrencyConflict:
        return None


@dataclass(frozen=True)
class CheckpointReport:
    ok: bool
    checkpoints: int
    chains: int
    latest_at: str | None
    first_broken: BrokenLink | None

    def to_api(self) -> dict[str, Any]:
        return {"ok": self.ok, "checkpoints": self.checkpoints, "chains": self.chains,
                "latest_at": self.latest_at,
                "first_broken": None if self.first_broken is None else
                self.first_broken.to_api()}


def _checkpoint_break(number: int, reason: str) -> BrokenLink:
    return BrokenLink(f"checkpoint:{number}", 0, reason)


async def verify_checkpoints(store: Store, public_key: bytes) -> CheckpointReport:
    """Check every checkpoint with ``public_key`` alone, then the chains against them."""
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    prev = GENESIS
    heads: dict[str, tuple[int, AuditHead]] = {}
    seen, latest_at = 0, None

    def failed(broken: BrokenLink) -> CheckpointReport:
        return CheckpointReport(False, seen, len(heads), latest_at, broken)

    async for record in checkpoint_records(store):
        seen += 1
        expected, latest_at = seen, str(record.doc.get("at"))
        body = dict(record.doc)
        signature = body.pop("signature", "")
        try:
            verifier.verify(base64.b64decode(str(signature)), _canonical(body))
        except (InvalidSignature, ValueError):
            return failed(_checkpoint_break(
                expected, "signature does not verify with the public key"))
        if body.get("n") != expected or record.key != f"{expected:012d}":
            return failed(_checkpoint_break(
                expected, f"checkpoint {expected} is missing or out of order"))
        if body.get("prev") != prev:
            return failed(_checkpoint_break(
                expected, "does not link to the previous checkpoint"))
        prev = _digest(record)
        for chain, head in _heads_of(record).items():
            heads[chain] = (expected, head)
    for chain, (number, head) in sorted(heads.items()):
        events = await store.audit.events(chain)
        if len(events) < head.seq:
            return failed(BrokenLink(
                chain, len(events) + 1,
                f"events after seq {len(events)} are missing (checkpoint {number} saw "
                f"seq {head.seq})"))
        if events[head.seq - 1].seq != head.seq or events[head.seq - 1].hash != head.hash:
            return failed(BrokenLink(
                chain, head.seq, f"event differs from the one checkpoint {number} signed"))
    return CheckpointReport(True, seen, len(heads), latest_at, None)


@dataclass(frozen=True)
class FullReport:
    chains: VerifyReport
    checkpoints: CheckpointReport | None  # None: no checkpoint key yet

    @property
    def ok(self) -> bool:
        return self.chains.ok and (self.checkpoints is None or self.checkpoints.ok)

    @property
    def first_broken(self) -> BrokenLink | None:
        if self.chains.first_broken is not None:
            return self.chains.first_broken
        return None if self.checkpoints is None else self.checkpoints.first_broken

    def to_api(self) -> dict[str, Any]:
        broken = self.first_broken
        return {"ok": self.ok, "cases": self.chains.cases, "events": self.chains.events,
                "first_broken": None if broken is None else broken.to_api(),
                "checkpoints": None if self.checkpoints is None else self.checkpoints.to_api()}


async def verify_everything(store: Store, public_key: bytes | None = None,
                            case_ids: list[str] | None = None) -> FullReport:
    """Chains (all, or the named ones) and, with a public key, the checkpoints."""
    chains = await verify_audit(store, case_ids)
    key = public_key if public_key is not None else await checkpoint_public_key(store)
    checkpoints = None if key is None else await verify_checkpoints(store, key)
    return FullReport(chains, checkpoints)
