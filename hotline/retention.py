"""Archive on closure, and the purge after retention that leaves a tombstone.

A case that closes is archived: ``archived_at`` and ``retention_until`` (closure plus
``HOTLINE_RETENTION_DAYS``, at least three years) are set on it in the same write as the
closure. "Archived" is that flag, not a status, so the status stays the workflow's
``closed`` everywhere it is checked.

Once ``retention_until`` has passed, :class:`Purger` removes everything with content — the
sealed report, its messages, the attachment blobs no other case names, mail-thread
entries, survey and identity-disclosure records, case notes, officers' reasons given for
audit events (the events keep a reference and a digest), the case's mail in the outbox
(written in clear when there is no relay) — and replaces the case by a tombstone
(id, reference, kind, category, unit, channel, opened/closed/purged dates, outcome; status
``purged``). The case's audit chain, which holds no content, stays and gets a
``case.purged`` event, so ``hotline audit verify`` still proves it. The receipt's keyed
hash stays with the tombstone, so an old receipt reads "closed" (and opens nothing).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import Counter

from hotline.blobs import BlobStore, FileBlobStore
from hotline.contract import format_time, parse_time
from hotline.crypto import KeyRing, Sealed, open_sealed
from hotline.domain.case import Case, CaseQuery
from hotline.errors import ConcurrencyConflict, SealError, UnknownKey
from hotline.logging import get_logger
from hotline.ports import Store
from hotline.services import append_audit, audit_text_kind
from hotline.settings import Settings

if TYPE_CHECKING:  # outbound mail drops mail of purged cases: it imports this module
    from hotline.mail.outbound import OutboxDelivery

__all__ = ["CASE_RECORD_KINDS", "PURGED", "PURGED_CONTENT", "PurgeReport", "Purger",
           "archive_if_closed", "case_note_kind", "describe", "is_purged", "make_blob_store",
           "tombstone_of"]

_log = get_logger("hotline.retention")

PURGED = "purged"
PURGED_CONTENT = Sealed("purged", b"", b"")  # a tombstone's content: nothing
# Record kinds that belong to one case (``doc["case_id"]``) and go with its content.
CASE_RECORD_KINDS = ("survey", "disclosure")
_CASE_NOTE_PREFIX = "case_note:"
_PURGE_KIND = "purge"  # the record of a purge in progress (blob ids still to delete)
_BLOB_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_PAGE = 200

PURGES = Counter("hotline_cases_purged_total", "Cases purged after their retention ended")


def archive_if_closed(case: Case, now: datetime, retention_days: int) -> Case:
    """``case`` archived if it is closed and not archived yet (else unchanged)."""
    if case.status != "closed" or case.archived_at is not None:
        return case
    return replace(case, archived_at=now, retention_until=now + timedelta(days=retention_days))


def case_note_kind(case_id: str) -> str:
    """The record kind of one case's notes (casework/notes.py): a kind per case, so that its
    notes list in order without reading any other case's, and the purge finds them all."""
    return _CASE_NOTE_PREFIX + case_id


def is_purged(case: Case) -> bool:
    return case.status == PURGED


def _outcome(case: Case) -> str | None:
    record = (case.workflow.get("state") or {}).get("record") or {}
    for action, field_name in (("conclude", "outcome"), ("approve_disposition", "disposition"),
                               ("propose_disposition", "disposition"),
                               ("record_survey", "survey_result")):
        value = (record.get(action) or {}).get(field_name)
        if isinstance(value, str):
            return value
    return None


def tombstone_of(case: Case, now: datetime) -> Case:
    """What is left of ``case`` after the purge: identifiers, dates, outcome, no content."""
    closed = case.archived_at
    return replace(
        case, status=PURGED, content=PURGED_CONTENT, due_at=None, locale=None, reply_key=None,
        triage={}, fingerprint=None, stub_unit=None,
        workflow={"name": case.workflow.get("name", ""), "tombstone": {
            "opened_at": format_time(case.opened_at),
            "closed_at": None if closed is None else format_time(closed),
            "purged_at": format_time(now), "outcome": _outcome(case)}})


@dataclass
class PurgeReport:
    due: list[str] = field(default_factory=list)  # references past retention
    purged: list[str] = field(default_factory=list)
    blobs_deleted: int = 0


@dataclass
class Purger:
    """Purges cases whose retention ended; crash-safe and idempotent (see module doc).

    Each case goes through: a ``purge`` record naming the blobs to delete (written once,
    before anything is deleted), the case's records and notes, the tombstone (one store call that
    also deletes messages and mail-thread entries), the blobs, the outbox files of the mails
    its audit chain names, the ``case.purged`` audit
    event, and last the removal of the ``purge`` record. A rerun after a crash at any step
    finds the ``purge`` record or the tombstone and finishes from there.
    """

    store: Store
    blobs: BlobStore
    keyring: Callable[[], Awaitable[KeyRing]]
    actor: str = "retention"
    # The mail outbox (DATA_DIR/outbox) whose files of the case are deleted (they are in
    # clear); None where mail goes to a relay only.
    outbox: OutboxDelivery | None = None

    async def run(self, now: datetime, *, dry_run: bool = False) -> PurgeReport:
        report = PurgeReport()
        pending = {r.key for r in await self.store.records.list(_PURGE_KIND)}
        due = await self._due(now)
        report.due.extend(c.reference for c in due)
        if dry_run:
            return report
        for case_id in sorted(pending | {c.id for c in due}):
            case = await self.store.cases.get(case_id)
            if case is None:
                continue
            deleted = await self.purge(case, now)
            if deleted is not None:
                report.purged.append(case.reference)
                report.blobs_deleted += deleted
        return report

    async def _due(self, now: datetime) -> list[Case]:
        found: list[Case] = []
        after: tuple[datetime, str] | None = None
        while True:
            page = await self.store.cases.query(CaseQuery(
                units=None, retention_before=now, after=after, limit=_PAGE))
            found.extend(c for c in page if not is_purged(c))
            if len(page) < _PAGE:
                return found
            after = (page[-1].opened_at, page[-1].id)

    async def purge(self, case: Case, now: datetime) -> int | None:
        """Purge one case (or finish its purge); the number of blobs deleted, or None if
        there was nothing left to do."""
        intent = await self.store.records.get(_PURGE_KIND, case.id)
        if is_purged(case) and intent is None:
            return None
        if intent is None:
            blobs = sorted(await self._blob_ids(case))
            try:
                intent = await self.store.records.put(_PURGE_KIND, case.id, {
                    "case_id": case.id, "blobs": blobs, "started_at": format_time(now)},
                    expected_version=0)
            except ConcurrencyConflict:
                intent = await self.store.records.get(_PURGE_KIND, case.id)
                if intent is None:
                    return None
        started = parse_time(intent.doc["started_at"], field="started_at")
        for kind in CASE_RECORD_KINDS:
            for record in await self.store.records.list(kind):
                if record.doc.get("case_id") == case.id:
                    await self.store.records.delete(kind, record.key)
        # Notes are sealed, but still case content: the ciphertext goes with the rest.
        # So are officers' reasons and notes given for audit events: the events keep only a
        # reference and a digest (hotline/services.py), so the chain still verifies.
        for kind in (case_note_kind(case.id), audit_text_kind(case.id)):
            for record in await self.store.records.list(kind):
                await self.store.records.delete(kind, record.key)
        if not is_purged(case):
            case = await self.store.cases.purge(tombstone_of(case, started),
                                                expected_version=case.version)
        deleted = 0
        candidates = [str(b) for b in intent.doc.get("blobs") or ()]
        if candidates:
            in_use = await self._blobs_in_use(set(candidates), case.id)
            for blob in candidates:
                if blob not in in_use and await self.blobs.delete(blob):
                    deleted += 1
        events = await self.store.audit.events(case.id)
        if self.outbox is not None:
            # After the tombstone, so no new mail of the case is delivered; the audit chain
            # (which stays) names every mail, so a rerun after a crash finds the rest.
            await self.outbox.discard(events)
        if not any(e.type == "case.purged" for e in events):
            await append_audit(self.store, case.id, actor=self.actor, type_="case.purged",
                               data={"retention_until": None if case.retention_until is None
                                     else format_time(case.retention_until),
                                     "blobs_deleted": len(candidates)})
            PURGES.inc()
        await self.store.records.delete(_PURGE_KIND, case.id)
        _log.info("case.purged", case_id=case.id, reference=case.reference)
        return deleted

    async def _texts(self, case: Case) -> list[str]:
        """The case's content and messages as text (opened in memory) to find blob ids."""
        ring = await self.keyring()
        texts = []
        purpose = "report" if case.kind == "report" else "complaint"
        boxes: list[tuple[Sealed, str]] = [] if is_purged(case) else [(case.content, purpose)]
        for message in await self.store.cases.messages(case.id):
            if message.sealed_for_org is not None:
                boxes.append((message.sealed_for_org, "message"))
        for sealed, box_purpose in boxes:
            try:
                texts.append(open_sealed(sealed, ring.private_key(sealed.kid),
                                         purpose=box_purpose).decode("utf-8", errors="replace"))
            except (UnknownKey, SealError):
                _log.error("purge.content_unreadable", case_id=case.id, kid=sealed.kid)
        return texts

    async def _blob_ids(self, case: Case) -> set[str]:
        found: set[str] = set()
        for text in await self._texts(case):
            found.update(_blob_ids_in(text))
        return found

    async def _blobs_in_use(self, candidates: set[str], except_case: str) -> set[str]:
        """Which of ``candidates`` another (not purged) case still names."""
        used: set[str] = set()
        after: tuple[datetime, str] | None = None
        while True:
            page = await self.store.cases.query(CaseQuery(units=None, after=after, limit=_PAGE))
            for listed in page:
                if listed.id == except_case or is_purged(listed):
                    continue
                # A list's cases carry no ciphertext (hotline/ports.py): read each whole.
                other = await self.store.cases.get(listed.id)
                if other is not None and not is_purged(other):
                    for text in await self._texts(other):
                        used.update(candidates & _blob_ids_in(text))
            if len(page) < _PAGE or used == candidates:
                return used
            after = (page[-1].opened_at, page[-1].id)


def _blob_ids_in(text: str) -> set[str]:
    return set(_BLOB_ID.findall(text))


def make_blob_store(settings: Settings, store: Store) -> BlobStore:
    """The blob store of this installation: files under the data dir, or MongoDB's."""
    if settings.store_kind == "mongodb":
        from hotline.adapters.mongo_blobs import MongoBlobStore

        return MongoBlobStore(store.collection)  # type: ignore[attr-defined]
    return FileBlobStore(settings.data_dir / "blobs")


def describe(report: PurgeReport) -> Iterable[str]:
    """Lines for the CLI."""
    yield f"{len(report.due)} case(s) past retention"
    for reference in report.due:
        yield f"  {reference}"
    if report.purged:
        yield f"purged {len(report.purged)} case(s), {report.blobs_deleted} blob(s) deleted"
