"""The per-case audit hash chain.

Each event's hash covers the case id, its sequence number, time, actor, type, data and
the previous event's hash, so any change, removal, reordering or insertion breaks the
chain. The case also records its head (last seq and hash), so cutting events off the end
is detected too. Event data never holds report content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hotline.contract import format_time

__all__ = ["GENESIS", "AuditEvent", "AuditHead", "BrokenLink", "chain_hash", "next_event",
           "verify_chain"]

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditHead:
    seq: int
    hash: str


@dataclass(frozen=True)
class AuditEvent:
    case_id: str
    seq: int
    at: datetime
    actor: str
    type: str
    prev_hash: str
    hash: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": format_time(self.at), "actor": self.actor,
                "type": self.type, "data": dict(self.data), "hash": self.hash,
                "prev_hash": self.prev_hash}


def chain_hash(case_id: str, seq: int, at: datetime, actor: str, type_: str,
               data: Mapping[str, Any], prev_hash: str) -> str:
    canonical = json.dumps(
        {"case_id": case_id, "seq": seq, "at": format_time(at), "actor": actor, "type": type_,
         "data": data, "prev_hash": prev_hash},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def next_event(case_id: str, head: AuditHead | None, *, at: datetime, actor: str, type_: str,
               data: Mapping[str, Any] | None = None) -> AuditEvent:
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.hash
    payload = dict(data or {})
    return AuditEvent(case_id, seq, at, actor, type_, prev,
                      chain_hash(case_id, seq, at, actor, type_, payload, prev), payload)


@dataclass(frozen=True)
class BrokenLink:
    case_id: str
    seq: int
    reason: str

    def to_api(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "seq": self.seq, "reason": self.reason}


def verify_chain(case_id: str, events: Sequence[AuditEvent],
                 head: AuditHead | None) -> BrokenLink | None:
    """The first broken link of a case's chain (events ordered by seq), or None if intact."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        if event.case_id != case_id:
            return BrokenLink(case_id, event.seq, "event belongs to another case")
        if event.seq != expected_seq:
            return BrokenLink(case_id, expected_seq,
                              f"sequence gap: expected {expected_seq}, found {event.seq}")
        if event.prev_hash != prev:
            return BrokenLink(case_id, event.seq, "prev_hash does not match the previous event")
        recomputed = chain_hash(case_id, event.seq, event.at, event.actor, event.type,
                                event.data, event.prev_hash)
        if recomputed != event.hash:
            return BrokenLink(case_id, event.seq, "content does not match its hash")
        prev = event.hash
    if head is not None:
        if head.seq > len(events):
            return BrokenLink(case_id, len(events) + 1,
                              f"events after seq {len(events)} are missing (head is {head.seq})")
        if head.seq >= 1 and events[head.seq - 1].hash != head.hash:
            return BrokenLink(case_id, head.seq, "event does not match the case's recorded head")
    elif events:
        return BrokenLink(case_id, 1, "case has events but no recorded head")
    return None
