"""The embedded store: one SQLite file (WAL), used by ``hotline dev`` and small installs.

All statements of one operation run under one asyncio lock on one connection, so an
operation is one transaction and no other coroutine's statements interleave with it.
Other processes (``hotline officer add`` while ``hotline dev`` runs) share the file
through SQLite's own locking (busy timeout).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite

from hotline.adapters._sqlite import connect, in_connection_thread
from hotline.adapters.codec import (
    case_from_doc,
    case_to_doc,
    message_from_doc,
    message_to_doc,
    page_limit,
    sealed_to_doc,
)
from hotline.contract import format_time
from hotline.crypto import KeyRecord, Sealed
from hotline.domain.audit import AuditEvent, AuditHead
from hotline.domain.case import (
    MUTABLE_FIELDS,
    Account,
    Case,
    CaseMessage,
    CaseQuery,
    ReceiptRecord,
    is_system_chain,
)
from hotline.errors import ConcurrencyConflict, ContractError, NotFound, StoreUnavailable
from hotline.ports import (
    AccountRepository,
    AuditRepository,
    CaseRepository,
    ChainHeads,
    KeyRepository,
    MailThreadRepository,
    PowRepository,
    ReceiptRepository,
    Record,
    RecordRepository,
    SequenceRepository,
)

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL UNIQUE,
    reference TEXT NOT NULL UNIQUE,
    receipt_hash TEXT UNIQUE,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    unit TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    due_at TEXT,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    fingerprint TEXT,
    excluded TEXT NOT NULL DEFAULT '[]',
    stub_unit TEXT,
    channel TEXT GENERATED ALWAYS AS (json_extract(doc, '$.channel')) VIRTUAL,
    assignee TEXT GENERATED ALWAYS AS (json_extract(doc, '$.workflow.assignee')) VIRTUAL,
    retention_until TEXT GENERATED ALWAYS AS (json_extract(doc, '$.retention_until.__time__'))
        VIRTUAL
);
CREATE INDEX IF NOT EXISTS cases_by_opened ON cases (opened_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS cases_by_unit ON cases (unit, opened_at DESC);
CREATE INDEX IF NOT EXISTS cases_by_due ON cases (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS cases_by_fingerprint ON cases (fingerprint)
    WHERE fingerprint IS NOT NULL;
CREATE INDEX IF NOT EXISTS cases_by_channel ON cases (channel, opened_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS cases_by_assignee ON cases (assignee, opened_at DESC, id DESC)
    WHERE assignee IS NOT NULL;
CREATE INDEX IF NOT EXISTS cases_by_retention ON cases (retention_until)
    WHERE retention_until IS NOT NULL AND status != 'purged';
CREATE TABLE IF NOT EXISTS audit_events (
    case_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);
CREATE TABLE IF NOT EXISTS accounts (username TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
    receipt_hash TEXT PRIMARY KEY, case_id TEXT NOT NULL, submission_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    kid TEXT PRIMARY KEY, public_key BLOB NOT NULL, wrapped_private_key BLOB NOT NULL,
    created_at TEXT NOT NULL, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pow_burnt (challenge_id TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS case_messages (
    id TEXT PRIMARY KEY, case_id TEXT NOT NULL, at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS case_messages_by_case ON case_messages (case_id, at);
-- Ciphertexts of case contents too large to sit in the case's JSON document (see
-- _content_entry); a case whose document carries its ciphertext has no row here.
CREATE TABLE IF NOT EXISTS case_contents (case_id TEXT PRIMARY KEY, ciphertext BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS mail_threads (message_id TEXT PRIMARY KEY, case_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (kind, key));
"""


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__time__": format_time(value)}
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "__time__" in obj:
            return datetime.fromisoformat(obj["__time__"].replace("Z", "+00:00"))
        if "__b64__" in obj:
            return base64.b64decode(obj["__b64__"])
    return obj


def _dumps(doc: Any) -> str:
    return json.dumps(doc, default=_encode, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str) -> Any:
    return json.loads(text, object_hook=_decode)


def _time(moment: datetime) -> str:
    return format_time(moment)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _text(value: object, name: str) -> str:
    """Query values are plain strings, never objects that could act as operators."""
    if not isinstance(value, str):
        raise ContractError(f"{name} must be a string", field=name)
    return value


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ContractError(f"{name} must be true or false", field=name)
    return value


async def _migrate(db: aiosqlite.Connection) -> None:
    """Bring a cases table from an earlier version up to date (columns added since)."""
    # table_xinfo, not table_info: generated columns are hidden from the latter.
    cursor = await db.execute("SELECT name FROM pragma_table_xinfo('cases')")
    columns = {row[0] for row in await cursor.fetchall()}
    if not columns:
        return
    # channel and assignee are computed from the stored document (virtual: nothing to
    # backfill, and writers need not know them); they exist to be indexed for the queue.
    for column, ddl in (("fingerprint", "TEXT"), ("excluded", "TEXT NOT NULL DEFAULT '[]'"),
                        ("stub_unit", "TEXT"),
                        ("channel", "TEXT GENERATED ALWAYS AS (json_extract(doc, '$.channel'))"
                                    " VIRTUAL"),
                        ("assignee", "TEXT GENERATED ALWAYS AS"
                                     " (json_extract(doc, '$.workflow.assignee')) VIRTUAL"),
                        # the purge's "past retention" query (archived cases only)
                        ("retention_until", "TEXT GENERATED ALWAYS AS"
                                            " (json_extract(doc, '$.retention_until.__time__'))"
                                            " VIRTUAL")):
        if column not in columns:
            await db.execute(f"ALTER TABLE cases ADD COLUMN {column} {ddl}")


# A larger ciphertext is kept in case_contents, not in the case's JSON document (issue 7):
# in the document it is base64 text inside a string that other text (Chinese in triage's
# reasons) makes 2 bytes per character, encoded again to UTF-8, parsed by json_extract for
# every indexed generated column, and read and rewritten by every update of the case and
# decoded by every list of cases. Small ones stay: one row and one read less per case.
_INLINE_CIPHERTEXT = 16 * 1024


def _content_entry(content: Sealed) -> tuple[dict[str, Any], bool]:
    """The document's ``content`` entry, and whether the ciphertext goes to case_contents."""
    if content.ciphertext_size <= _INLINE_CIPHERTEXT:
        return cast(dict[str, Any], sealed_to_doc(content)), False
    return {"kid": content.kid, "enc": content.enc}, True


def _insert_ciphertext_now(conn: sqlite3.Connection, case_id: str, content: Sealed) -> None:
    """Write the ciphertext into case_contents piece by piece (incremental blob I/O): bound
    as one value, SQLite would copy it twice more (the bound value, the record)."""
    size = content.ciphertext_size
    rowid = conn.execute("INSERT INTO case_contents (case_id, ciphertext) VALUES (?, zeroblob(?))",
                         (case_id, size)).lastrowid
    assert rowid is not None
    written = 0
    with conn.blobopen("case_contents", "ciphertext", rowid) as blob:
        for piece in content.ciphertext_pieces():
            blob.write(piece)
            written += len(piece)
    if written != size:
        raise ValueError(f"ciphertext of {written} bytes announced as {size}")


def _row(case: Case, content: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """The columns receipt_hash … stub_unit of ``case``; ``content`` is the document's
    content entry (by default the whole sealed content)."""
    return (case.receipt_hash, case.kind, case.severity, case.status, case.unit,
            _time(case.opened_at), None if case.due_at is None else _time(case.due_at),
            case.version, _dumps(case_to_doc(case, content=content)), case.fingerprint,
            json.dumps(list(case.excluded)), case.stub_unit)


# The case's document and its ciphertext kept apart (NULL where the document has it).
_CASE_WITH_CONTENT = ("SELECT doc, (SELECT ciphertext FROM case_contents"
                      " WHERE case_contents.case_id = cases.id) FROM cases")


class _Base:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store


# Up to this many units, a case list reads the scope's cases through cases_by_unit.
_NARROW_SCOPE = 4


class _Cases(_Base):
    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self._pending: list[tuple[_Opening, asyncio.Future[tuple[Case, bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self, case: Case, events: Sequence[AuditEvent],
                   receipt: ReceiptRecord | None, *, reference_prefix: str) -> tuple[Case, bool]:
        """Group commit: opens that arrive while a transaction runs share the next one.

        The router opens the cases of a delivery batch concurrently; one transaction (one
        trip to the connection's thread) for all of them instead of one each. Every case
        has its own savepoint, so one that fails leaves the others committed, and each
        caller returns only after the transaction holding its case committed.
        """
        future: asyncio.Future[tuple[Case, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append(((case, tuple(events), receipt, reference_prefix), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            openings = [opening for opening, _ in batch]

            def open_all(conn: sqlite3.Connection, openings: list[_Opening] = openings
                         ) -> list[tuple[Case, bool] | Exception]:
                return [_open_one(conn, opening) for opening in openings]

            try:
                async with self._store.transaction() as db:
                    results = await in_connection_thread(db, open_all)
            except Exception as exc:  # the transaction did not commit: every caller hears it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    @staticmethod
    async def _by(column: str, value: str, db: aiosqlite.Connection, *,
                  with_content: bool = True) -> tuple[Case, dict[str, Any]] | None:
        """The case and its stored document's content entry (written back as it is)."""
        sql = (f"{_CASE_WITH_CONTENT} WHERE {column} = ?" if with_content
               else f"SELECT doc, NULL FROM cases WHERE {column} = ?")  # noqa: S608 — column names are ours
        cursor = await db.execute(sql, (_text(value, column),))
        row = await cursor.fetchone()
        if row is None:
            return None
        doc = _loads(row[0])
        return case_from_doc(doc, row[1], with_content=with_content), doc["content"]

    async def _one_by(self, column: str, value: str) -> Case | None:
        rows = await self._store.fetch(f"{_CASE_WITH_CONTENT} WHERE {column} = ?",
                                       (_text(value, column),))
        return case_from_doc(_loads(rows[0][0]), rows[0][1]) if rows else None

    async def get(self, case_id: str) -> Case | None:
        return await self._one_by("id", case_id)

    async def by_submission(self, submission_id: str) -> Case | None:
        return await self._one_by("submission_id", submission_id)

    async def by_reference(self, reference: str) -> Case | None:
        return await self._one_by("reference", reference)

    async def query(self, query: CaseQuery) -> list[Case]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("kind", "status", "severity", "unit", "channel", "assignee"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(_text(value, column))
        if query.units is not None:
            units = [_text(u, "units") for u in sorted(query.units)]
            if not units:
                return []
            # A wide scope (a province and its subsidiaries, HQ: everything) is matched
            # while walking cases_by_opened newest first, stopping at the page; through
            # cases_by_unit SQLite would read and sort every case in scope on each page
            # (an HQ officer's queue grew slower with every case ever opened).
            column = "+unit" if len(units) > _NARROW_SCOPE else "unit"
            clauses.append(f"{column} IN ({', '.join('?' for _ in units)})")
            params.extend(units)
        if query.fingerprint is not None:
            clauses.append("fingerprint = ?")
            params.append(_text(query.fingerprint, "fingerprint"))
        if query.viewer is not None:
            viewer = [_text(v, "viewer") for v in query.viewer] if isinstance(
                query.viewer, tuple) else [_text(query.viewer, "viewer")]
            marks = ", ".join("?" for _ in viewer)
            clauses.append("NOT EXISTS (SELECT 1 FROM json_each(cases.excluded) WHERE value IN"  # noqa: S608
                           " (" + marks + "))")
            params.extend(viewer)
        if query.stub_units is not None:
            stubs = [_text(u, "stub_units") for u in sorted(query.stub_units)]
            if not stubs:
                return []
            clauses.append(f"stub_unit IN ({', '.join('?' for _ in stubs)})")
            params.extend(stubs)
        if query.overdue_at is not None:
            # Unary + keeps SQLite on the opened_at index (newest first, stop at the page)
            # instead of collecting and sorting every overdue case through cases_by_due.
            clauses.append("+due_at IS NOT NULL AND +due_at < ? AND status NOT IN "
                           "('closed', 'archived')")
            params.append(_time(query.overdue_at))
        # --- retention (issue 5): tombstones only when asked for; cases past retention
        if not query.include_purged and query.status is None:
            clauses.append("status != 'purged'")
        if query.archived is not None:
            clauses.append("json_extract(doc, '$.archived_at') IS "
                           + ("NOT NULL" if _flag(query.archived, "archived") else "NULL"))
        if query.retention_before is not None:
            # Both terms as the partial index cases_by_retention states them, so it is used.
            clauses.append("status != 'purged' AND retention_until < ?")
            params.append(_time(query.retention_before))
        if query.after is not None:
            opened_at, case_id = query.after
            clauses.append("(opened_at < ? OR (opened_at = ? AND id < ?))")
            params.extend([_time(opened_at), _time(opened_at), _text(case_id, "cursor")])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(int(query.limit), 500))
        sql = f"SELECT doc FROM cases {where} ORDER BY opened_at DESC, id DESC LIMIT {limit}"  # noqa: S608 — only our placeholders
        rows = await self._store.fetch(sql, params)
        # A list's cases carry no ciphertext (Sealed.withheld): read a case by id to open it.
        return [case_from_doc(_loads(row[0]), with_content=False) for row in rows]

    async def count(self) -> int:
        async with self._store.transaction() as db:
            cursor = await db.execute("SELECT COUNT(*) FROM cases")
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def add_message(self, message: CaseMessage) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO case_messages (id, case_id, at, doc) VALUES (?, ?, ?, ?)",
                (message.id, message.case_id, _time(message.at),
                 _dumps(message_to_doc(message))))
            return cursor.rowcount == 1

    async def messages(self, case_id: str) -> list[CaseMessage]:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "SELECT doc FROM case_messages WHERE case_id = ? ORDER BY at, id",
                (_text(case_id, "case_id"),))
            rows = await cursor.fetchall()
        return [message_from_doc(_loads(row[0])) for row in rows]

    async def update(self, case: Case, *, expected_version: int) -> Case:
        async with self._store.transaction() as db:
            found = await self._by("id", case.id, db)
            if found is None:
                raise NotFound(f"case {case.id} does not exist")
            current, content = found
            if current.version != expected_version:
                raise ConcurrencyConflict(f"case {case.id} changed (version {current.version})")
            updated = replace(current, **{f: getattr(case, f) for f in MUTABLE_FIELDS},
                              version=current.version + 1)
            await db.execute(
                "UPDATE cases SET receipt_hash = ?, kind = ?, severity = ?, status = ?, unit = ?,"
                " opened_at = ?, due_at = ?, version = ?, doc = ?, fingerprint = ?, excluded = ?,"
                " stub_unit = ? WHERE id = ? AND version = ?",
                (*_row(updated, content), case.id, expected_version))
            return updated

    # --- retention (issue 5) ----------------------------------------------------------
    async def purge(self, tombstone: Case, *, expected_version: int) -> Case:
        async with self._store.transaction() as db:
            found = await self._by("id", tombstone.id, db, with_content=False)
            if found is None:
                raise NotFound(f"case {tombstone.id} does not exist")
            current = found[0]
            if current.version != expected_version:
                raise ConcurrencyConflict(f"case {tombstone.id} changed (version "
                                          f"{current.version})")
            stored = replace(tombstone, audit_head=current.audit_head,
                             version=current.version + 1)
            await db.execute("DELETE FROM case_messages WHERE case_id = ?", (tombstone.id,))
            await db.execute("DELETE FROM mail_threads WHERE case_id = ?", (tombstone.id,))
            await db.execute("DELETE FROM case_contents WHERE case_id = ?", (tombstone.id,))
            await db.execute(
                "UPDATE cases SET receipt_hash = ?, kind = ?, severity = ?, status = ?, unit = ?,"
                " opened_at = ?, due_at = ?, version = ?, doc = ?, fingerprint = ?, excluded = ?,"
                " stub_unit = ? WHERE id = ? AND version = ?",
                (*_row(stored, _content_entry(stored.content)[0]), tombstone.id,
                 expected_version))
        # secure_delete zeroed the freed cells; the write-ahead log still holds the old
        # pages until a checkpoint, so fold it into the file and truncate it (best effort:
        # a reader in another connection defers it to a later checkpoint).
        await self._store.checkpoint()
        return stored
    # --- end retention ------------------------------------------------------------------

    async def set_status(self, case_id: str, status: str, *, expected_version: int) -> Case:
        async with self._store.transaction() as db:
            found = await self._by("id", case_id, db)
            if found is None:
                raise NotFound(f"case {case_id} does not exist")
            case, content = found
            if case.version != expected_version:
                raise ConcurrencyConflict(f"case {case_id} changed (version {case.version})")
            updated = replace(case, status=_text(status, "status"), version=case.version + 1)
            await db.execute(
                "UPDATE cases SET status = ?, version = ?, doc = ? WHERE id = ? AND version = ?",
                (status, updated.version, _dumps(case_to_doc(updated, content=content)),
                 case_id, expected_version))
            return updated


_Opening = tuple[Case, tuple[AuditEvent, ...], ReceiptRecord | None, str]


def _open_one(conn: sqlite3.Connection, opening: _Opening
              ) -> tuple[Case, bool] | Exception:
    """Open one case in the group transaction, under its own savepoint."""
    case, events, receipt, prefix = opening
    conn.execute("SAVEPOINT open_case")
    try:
        row = conn.execute(f"{_CASE_WITH_CONTENT} WHERE submission_id = ?",
                           (_text(case.submission_id, "submission_id"),)).fetchone()
        if row is not None:
            # Complete what an earlier attempt may have left (it cannot here, SQLite
            # commits all or nothing, but the contract is the same for every store).
            _insert_events_now(conn, events, ignore=True)
            if receipt is not None:
                _insert_receipt_now(conn, receipt)
            result: tuple[Case, bool] = (case_from_doc(_loads(row[0]), row[1]), False)
        else:
            number = conn.execute(
                "INSERT INTO sequences (name, value) VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                (prefix,)).fetchone()[0]
            head = events[-1] if events else None
            stored = replace(case, reference=f"{prefix}-{number:06d}",
                             audit_head=None if head is None else AuditHead(head.seq, head.hash))
            content, apart = _content_entry(stored.content)
            conn.execute(
                "INSERT INTO cases (id, submission_id, reference, receipt_hash, kind, severity,"
                " status, unit, opened_at, due_at, version, doc, fingerprint, excluded,"
                " stub_unit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (stored.id, stored.submission_id, stored.reference, *_row(stored, content)))
            if apart:
                _insert_ciphertext_now(conn, stored.id, stored.content)
            _insert_events_now(conn, events, ignore=False)
            if receipt is not None:
                _insert_receipt_now(conn, receipt)
            result = (stored, True)
    except Exception as exc:  # this case only: the others of the group still commit
        conn.execute("ROLLBACK TO open_case")
        conn.execute("RELEASE open_case")
        return exc
    conn.execute("RELEASE open_case")
    return result


def _insert_events_now(conn: sqlite3.Connection, events: Sequence[AuditEvent], *,
                       ignore: bool) -> None:
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    conn.executemany(
        f"{verb} INTO audit_events (case_id, seq, at, actor, type, data, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.case_id, e.seq, _time(e.at), e.actor, e.type, _dumps(dict(e.data)), e.prev_hash,
          e.hash) for e in events])


def _insert_receipt_now(conn: sqlite3.Connection, receipt: ReceiptRecord) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO receipts (receipt_hash, case_id, submission_id) VALUES (?, ?, ?)",
        (receipt.receipt_hash, receipt.case_id, receipt.submission_id))


async def _insert_events(db: aiosqlite.Connection, events: Sequence[AuditEvent], *,
                         ignore: bool) -> None:
    await in_connection_thread(db, lambda conn: _insert_events_now(conn, events, ignore=ignore))


async def _insert_receipt(db: aiosqlite.Connection, receipt: ReceiptRecord) -> None:
    await in_connection_thread(db, lambda conn: _insert_receipt_now(conn, receipt))


class _Audit(_Base):
    async def append(self, event: AuditEvent) -> None:
        async with self._store.transaction() as db:
            try:
                await _insert_events(db, [event], ignore=False)
            except aiosqlite.IntegrityError:
                raise ConcurrencyConflict(
                    f"audit seq {event.seq} of {event.case_id} is taken") from None
            cursor = await db.execute("SELECT doc FROM cases WHERE id = ?", (event.case_id,))
            row = await cursor.fetchone()
            if row is None and is_system_chain(event.case_id):
                return  # a system chain has no case; its head is kept as a record
            if row is None:
                raise NotFound(f"case {event.case_id} does not exist")
            doc = _loads(row[0])
            head = doc.get("audit_head") or {"seq": 0}
            if event.seq > head["seq"]:
                doc["audit_head"] = {"seq": event.seq, "hash": event.hash}
                await db.execute("UPDATE cases SET doc = ? WHERE id = ?",
                                 (_dumps(doc), event.case_id))

    async def events(self, case_id: str) -> list[AuditEvent]:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "SELECT case_id, seq, at, actor, type, data, prev_hash, hash FROM audit_events"
                " WHERE case_id = ? ORDER BY seq", (_text(case_id, "case_id"),))
            rows = await cursor.fetchall()
        return [AuditEvent(case_id=r[0], seq=r[1], at=_parse_time(r[2]), actor=r[3], type=r[4],
                           data=_loads(r[5]), prev_hash=r[6], hash=r[7]) for r in rows]

    async def case_ids(self) -> AsyncIterator[str]:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "SELECT id FROM cases UNION SELECT DISTINCT case_id FROM audit_events ORDER BY 1")
            rows = await cursor.fetchall()
        for row in rows:
            yield row[0]

    async def heads_since(self, mark: str | None, *, limit: int | None = None) -> ChainHeads:
        # The mark is a rowid: SQLite has one writer at a time and gives a new row the
        # largest rowid plus one, so rowids follow commit order, and every row up to the
        # largest one read is already visible. Events are never deleted; if rows were
        # (largest rowid below the mark), start over rather than miss reused rowids.
        after = int(mark) if mark is not None and mark.isdigit() else 0
        [(top,)] = await self._store.fetch("SELECT coalesce(max(rowid), 0) FROM audit_events")
        if top < after:
            after = 0
        upper = top
        if limit is not None:
            page = await self._store.fetch(
                "SELECT rowid FROM audit_events WHERE rowid > ? ORDER BY rowid"
                " LIMIT 1 OFFSET ?", (after, max(limit, 1) - 1))
            if page and page[0][0] < top:
                upper = page[0][0]
        rows = await self._store.fetch(
            "SELECT g.case_id, g.seq, e.hash, g.first FROM"
            " (SELECT case_id, max(seq) AS seq, min(seq) AS first FROM audit_events"
            "  WHERE rowid > ? AND rowid <= ? GROUP BY case_id) AS g"
            " JOIN audit_events AS e ON e.case_id = g.case_id AND e.seq = g.seq",
            (after, upper))
        return ChainHeads(heads={r[0]: AuditHead(r[1], r[2]) for r in rows},
                          started=frozenset(r[0] for r in rows if r[3] == 1), mark=str(upper),
                          more=upper < top)


class _Accounts(_Base):
    @staticmethod
    def _to_doc(account: Account) -> str:
        return _dumps({**account.__dict__})

    async def add(self, account: Account) -> None:
        async with self._store.transaction() as db:
            try:
                await db.execute("INSERT INTO accounts (username, doc) VALUES (?, ?)",
                                 (account.username, self._to_doc(account)))
            except aiosqlite.IntegrityError:
                raise ConcurrencyConflict(f"account {account.username!r} exists") from None

    async def get(self, username: str) -> Account | None:
        async with self._store.transaction() as db:
            cursor = await db.execute("SELECT doc FROM accounts WHERE username = ?",
                                      (_text(username, "username"),))
            row = await cursor.fetchone()
        return None if row is None else Account(**_loads(row[0]))

    async def list(self) -> list[Account]:
        async with self._store.transaction() as db:
            cursor = await db.execute("SELECT doc FROM accounts ORDER BY username")
            rows = await cursor.fetchall()
        return [Account(**_loads(row[0])) for row in rows]

    async def update(self, account: Account) -> None:
        async with self._store.transaction() as db:
            cursor = await db.execute("UPDATE accounts SET doc = ? WHERE username = ?",
                                      (self._to_doc(account), _text(account.username,
                                                                    "username")))
            if cursor.rowcount != 1:
                raise NotFound(f"account {account.username!r} does not exist")


class _Receipts(_Base):
    async def get(self, receipt_hash: str) -> ReceiptRecord | None:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "SELECT receipt_hash, case_id, submission_id FROM receipts WHERE receipt_hash = ?",
                (_text(receipt_hash, "receipt_hash"),))
            row = await cursor.fetchone()
        return None if row is None else ReceiptRecord(row[0], row[1], row[2])


class _Sequences(_Base):
    async def next(self, name: str) -> int:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO sequences (name, value) VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                (_text(name, "name"),))
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


class _Keys(_Base):
    async def add(self, record: KeyRecord) -> None:
        async with self._store.transaction() as db:
            await db.execute("UPDATE keys SET active = 0")
            try:
                await db.execute(
                    "INSERT INTO keys (kid, public_key, wrapped_private_key, created_at, active)"
                    " VALUES (?, ?, ?, ?, 1)",
                    (record.kid, record.public_key, record.wrapped_private_key,
                     _time(record.created_at)))
            except aiosqlite.IntegrityError:
                raise ConcurrencyConflict(f"key {record.kid} exists") from None

    async def list(self) -> list[KeyRecord]:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "SELECT kid, public_key, wrapped_private_key, created_at, active FROM keys"
                " ORDER BY created_at, kid")
            rows = await cursor.fetchall()
        return [KeyRecord(r[0], bytes(r[1]), bytes(r[2]), _parse_time(r[3]), bool(r[4]))
                for r in rows]


class _Pow(_Base):
    async def burn(self, challenge_id: str, expires_at: datetime) -> bool:
        async with self._store.transaction() as db:
            await db.execute("DELETE FROM pow_burnt WHERE expires_at < ?",
                             (_time(datetime.now(UTC)),))
            cursor = await db.execute(
                "INSERT OR IGNORE INTO pow_burnt (challenge_id, expires_at) VALUES (?, ?)",
                (_text(challenge_id, "challenge_id"), _time(expires_at)))
            return cursor.rowcount == 1


# --- mail threads (issue 4) ---------------------------------------------------------
class _MailThreads(_Base):
    async def remember(self, case_id: str, message_ids: Sequence[str]) -> None:
        rows = [(_text(m, "message_id"), _text(case_id, "case_id")) for m in message_ids]
        if not rows:
            return
        async with self._store.transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO mail_threads (message_id, case_id) VALUES (?, ?)", rows)

    async def case_for(self, message_ids: Sequence[str]) -> str | None:
        ids = [_text(m, "message_id") for m in message_ids]
        if not ids:
            return None
        async with self._store.transaction() as db:
            marks = ", ".join("?" for _ in ids)
            sql = f"SELECT message_id, case_id FROM mail_threads WHERE message_id IN ({marks})"  # noqa: S608 — only placeholders
            cursor = await db.execute(sql, ids)
            found = {row[0]: row[1] for row in await cursor.fetchall()}
        return next((found[m] for m in ids if m in found), None)
# --- end mail threads ------------------------------------------------------------------


# --- casework records (issue 5) --------------------------------------------------------
class _Records(_Base):
    async def put(self, kind: str, key: str, doc: Mapping[str, Any], *,
                  expected_version: int) -> Record:
        kind, key = _text(kind, "kind"), _text(key, "key")
        text = _dumps(dict(doc))
        async with self._store.transaction() as db:
            if expected_version == 0:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO records (kind, key, version, doc) VALUES (?, ?, 1, ?)",
                    (kind, key, text))
            else:
                cursor = await db.execute(
                    "UPDATE records SET version = version + 1, doc = ?"
                    " WHERE kind = ? AND key = ? AND version = ?",
                    (text, kind, key, int(expected_version)))
            if cursor.rowcount != 1:
                raise ConcurrencyConflict(f"record {kind}/{key} is not at version "
                                          f"{expected_version}")
        return Record(kind, key, _loads(text), expected_version + 1)

    async def get(self, kind: str, key: str) -> Record | None:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "SELECT version, doc FROM records WHERE kind = ? AND key = ?",
                (_text(kind, "kind"), _text(key, "key")))
            row = await cursor.fetchone()
        return None if row is None else Record(kind, key, _loads(row[1]), int(row[0]))

    async def list(self, kind: str, *, start: str | None = None,
                   limit: int | None = None) -> list[Record]:
        rows = await self._store.fetch(
            "SELECT key, version, doc FROM records WHERE kind = ? AND key >= ? "
            "ORDER BY key LIMIT ?",
            (_text(kind, "kind"), "" if start is None else _text(start, "start"),
             -1 if limit is None else page_limit(limit)))
        return [Record(kind, row[0], _loads(row[2]), int(row[1])) for row in rows]

    async def delete(self, kind: str, key: str) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute("DELETE FROM records WHERE kind = ? AND key = ?",
                                      (_text(kind, "kind"), _text(key, "key")))
            return cursor.rowcount == 1
# --- end casework records -------------------------------------------------------------


class SqliteStore:
    """The :class:`hotline.ports.Store` on one SQLite file.

    Every commit is durable when it returns (``synchronous=FULL``): the router
    acknowledges a submission to the bus right after its case committed, and an officer is
    told an action was recorded, so a power cut after either must not take the write
    back. (``NORMAL`` in WAL mode survives a crash of the process but not of the machine.)
    """

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self.cases: CaseRepository = _Cases(self)
        self.audit: AuditRepository = _Audit(self)
        self.accounts: AccountRepository = _Accounts(self)
        self.receipts: ReceiptRepository = _Receipts(self)
        self.sequences: SequenceRepository = _Sequences(self)
        self.keys: KeyRepository = _Keys(self)
        self.pow: PowRepository = _Pow(self)
        self.mail_threads: MailThreadRepository = _MailThreads(self)
        self.records: RecordRepository = _Records(self)

    async def open(self) -> None:
        try:
            db = await connect(self.path, synchronous=self._synchronous)
            await db.execute("PRAGMA foreign_keys = ON")
            # Deleted rows are overwritten with zeros, so purged content (retention) does
            # not linger in free pages of the file.
            await db.execute("PRAGMA secure_delete = ON")
            await _migrate(db)
            await db.executescript(_SCHEMA)
        except Exception as exc:  # any failure to open means the same to callers
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            async with self.transaction() as db:
                await db.execute("SELECT 1")
        except Exception:  # readiness is a yes/no question
            return False
        return True

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the file and truncate it (best effort)."""
        if self._db is None:
            return
        async with self._lock:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read, in one trip to the connection's thread.

        One statement reads one consistent snapshot, so no transaction is opened; the lock
        still keeps it out of another caller's open transaction on this connection.
        """
        if self._db is None:
            raise StoreUnavailable("store is not open")
        db = self._db
        async with self._lock:
            return await in_connection_thread(db, lambda conn: conn.execute(sql, params)
                                              .fetchall())

    def transaction(self) -> _Transaction:
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return _Transaction(self._db, self._lock)


class _Transaction:
    def __init__(self, db: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._db = db
        self._lock = lock

    async def __aenter__(self) -> aiosqlite.Connection:
        await self._lock.acquire()
        try:
            await self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                await self._db.execute("COMMIT")
            else:
                await self._db.execute("ROLLBACK")
        finally:
            self._lock.release()
