"""The small interfaces that adapters implement: the store and the bus.

Every adapter (SQLite, MongoDB; embedded queue, RabbitMQ) passes the same contract
tests in ``tests/integration/test_store_contract.py`` and ``test_bus_contract.py``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hotline.crypto import KeyRecord
from hotline.domain.audit import AuditEvent, AuditHead
from hotline.domain.case import Account, Case, CaseMessage, CaseQuery, ReceiptRecord

__all__ = [
    "AccountRepository",
    "AuditRepository",
    "Bus",
    "CaseRepository",
    "ChainHeads",
    "Handler",
    "KeyRepository",
    "MailThreadRepository",
    "Message",
    "Outcome",
    "PowRepository",
    "ReceiptRepository",
    "Record",
    "RecordRepository",
    "SequenceRepository",
    "Store",
]


class CaseRepository(Protocol):
    async def open(self, case: Case, events: Sequence[AuditEvent],
                   receipt: ReceiptRecord | None, *, reference_prefix: str) -> tuple[Case, bool]:
        """Create the case idempotently on ``case.submission_id``.

        Allocates the next reference under ``reference_prefix`` (e.g. ``R-2026``) as
        ``R-2026-000042``, writes the case, its first audit events (head set to the last)
        and its receipt. Returns the stored case and whether this call created it. A call
        for a submission that already has a case completes any half-written parts and
        returns ``(existing, False)``.
        """
        ...

    async def get(self, case_id: str) -> Case | None: ...

    async def by_submission(self, submission_id: str) -> Case | None: ...

    async def by_reference(self, reference: str) -> Case | None: ...

    async def query(self, query: CaseQuery) -> list[Case]:
        """Cases matching ``query``, newest first (opened_at, id descending).

        Their ``content`` is :meth:`~hotline.crypto.Sealed.withheld` (key id and enc, no
        ciphertext: a list does not read every report); read a case with :meth:`get` to
        open its content.
        """
        ...

    async def count(self) -> int: ...

    async def add_message(self, message: CaseMessage) -> bool:
        """Store a message; False if one with the same id already exists (redelivery)."""
        ...

    async def messages(self, case_id: str) -> list[CaseMessage]: ...

    async def set_status(self, case_id: str, status: str, *, expected_version: int) -> Case:
        """Change the status; :class:`ConcurrencyConflict` if the version moved on."""
        ...

    async def update(self, case: Case, *, expected_version: int) -> Case:
        """Store the case's mutable fields (``MUTABLE_FIELDS``) and bump its version.

        Identity, reference, content and the audit head never change through this;
        :class:`ConcurrencyConflict` if the stored version is not ``expected_version``,
        :class:`NotFound` if there is no such case.
        """
        ...

    async def purge(self, tombstone: Case, *, expected_version: int) -> Case:
        """Replace the case by ``tombstone`` and delete its messages and mail-thread entries.

        Every field but the audit head is taken from ``tombstone`` (hotline/retention.py);
        the version is bumped. On SQLite one transaction; elsewhere the deletions come
        first, so a crash leaves at worst a case without messages, and a rerun finishes.
        :class:`ConcurrencyConflict` if the stored version is not ``expected_version``,
        :class:`NotFound` if there is no such case.
        """
        ...


class AuditRepository(Protocol):
    async def append(self, event: AuditEvent) -> None:
        """Append and move the case's head; :class:`ConcurrencyConflict` if seq is taken."""
        ...

    async def events(self, case_id: str) -> list[AuditEvent]: ...

    def case_ids(self) -> AsyncIterator[str]: ...

    async def heads_since(self, mark: str | None, *, limit: int | None = None) -> ChainHeads:
        """The last event of every chain appended to after ``mark`` (None: of every chain).

        ``mark`` is one a previous call returned (an unknown one counts as None). A chain
        appended to after it is never left out; a store without a commit order may also
        return chains appended to shortly before it (MongoDB: within a clock margin).
        With ``limit``, a store that can reads about that many events and says whether
        there are ``more`` after the returned mark (MongoDB reads them all).
        """
        ...


@dataclass(frozen=True)
class ChainHeads:
    """What :meth:`AuditRepository.heads_since` found."""

    heads: Mapping[str, AuditHead]  # chain → its last event (seq, hash)
    started: frozenset[str]  # the chains among them whose first event (seq 1) is new too
    mark: str  # pass to the next call
    # Stores without a commit order: chains appended to from this moment on may be ones
    # a caller saw before the mark (None: no repeats).
    repeats_from: datetime | None = None
    more: bool = False  # events after ``mark`` were left for the next call (``limit``)


class AccountRepository(Protocol):
    async def add(self, account: Account) -> None:
        """:class:`ConcurrencyConflict` if the username exists."""
        ...

    async def get(self, username: str) -> Account | None: ...

    async def list(self) -> list[Account]: ...

    async def update(self, account: Account) -> None:
        """Replace the stored account (role, unit, password, disabled …); NotFound if absent."""
        ...


class ReceiptRepository(Protocol):
    async def get(self, receipt_hash: str) -> ReceiptRecord | None: ...


class SequenceRepository(Protocol):
    async def next(self, name: str) -> int:
        """Atomically the next number of sequence ``name`` (1, 2, 3 …)."""
        ...


class KeyRepository(Protocol):
    async def add(self, record: KeyRecord) -> None:
        """Store a new key and make it the only active one."""
        ...

    async def list(self) -> list[KeyRecord]: ...


class PowRepository(Protocol):
    async def burn(self, challenge_id: str, expires_at: datetime) -> bool:
        """Mark a challenge used; False if it already was (replay)."""
        ...


# --- mail threads (issue 4) ---------------------------------------------------------
class MailThreadRepository(Protocol):
    """Message-ID → case id: which case a mail thread belongs to (ours included)."""

    async def remember(self, case_id: str, message_ids: Sequence[str]) -> None:
        """Map each Message-ID to ``case_id``; an id already mapped keeps its first case."""
        ...

    async def case_for(self, message_ids: Sequence[str]) -> str | None:
        """The case of the first of ``message_ids`` that is known, or None."""
        ...
# --- end mail threads ------------------------------------------------------------------


# --- casework records (issue 5) --------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """A small JSON document of one ``kind`` under a ``key``, with an optimistic version."""

    kind: str
    key: str
    doc: Mapping[str, Any]
    version: int


class RecordRepository(Protocol):
    """Casework's small documents: TOTP enrolments, sign-in throttles, disclosure requests,
    the supplier negative list, audit checkpoints and their signing key, system audit heads.
    """

    async def put(self, kind: str, key: str, doc: Mapping[str, Any], *,
                  expected_version: int) -> Record:
        """Create (``expected_version=0``) or replace version ``expected_version``.

        :class:`ConcurrencyConflict` if the stored version differs (or the key exists when
        creating). The stored version is ``expected_version + 1``.
        """
        ...

    async def get(self, kind: str, key: str) -> Record | None: ...

    async def list(self, kind: str, *, start: str | None = None,
                   limit: int | None = None) -> list[Record]:
        """Records of ``kind`` ordered by key: every one, or those whose key is ``start``
        or after it, at most ``limit`` (a page of a kind that grows, e.g. checkpoints)."""
        ...

    async def delete(self, kind: str, key: str) -> bool:
        """Remove a record; False if there was none."""
        ...
# --- end casework records -------------------------------------------------------------


class Store(Protocol):
    cases: CaseRepository
    audit: AuditRepository
    accounts: AccountRepository
    receipts: ReceiptRepository
    sequences: SequenceRepository
    keys: KeyRepository
    pow: PowRepository
    mail_threads: MailThreadRepository
    records: RecordRepository

    async def open(self) -> None:
        """Connect and create tables/indexes (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...


@dataclass(frozen=True)
class Message:
    """A bus message: persistent JSON, ``message_id`` the submission or event id."""

    routing_key: str
    message_id: str
    body: bytes
    correlation_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delivery_count: int = 0


class Outcome(enum.Enum):
    ACK = "ack"  # the work is committed
    REJECT = "reject"  # can never succeed: dead-letter to the parking queue
    RETRY = "retry"  # transient: redeliver; the broker counts and parks at the limit


Handler = Callable[[Message], Awaitable[None]]


class Bus(Protocol):
    async def open(self) -> None:
        """Connect and declare the topology (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def publish(self, message: Message) -> None:
        """Return only once the message is durably taken; :class:`BusUnavailable` if not."""
        ...

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 32) -> None:
        """Deliver messages of ``queue`` to ``handler`` until cancelled.

        The outcome of each delivery is decided in one place,
        :func:`hotline.bus.outcome_of`.
        """
        ...

    async def ping(self) -> bool: ...

    async def parked(self, limit: int = 100) -> list[Message]: ...

    async def replay_parked(self, message_id: str | None = None) -> int:
        """Move parked messages (one, or all) back to their routing key; the count moved."""
        ...
