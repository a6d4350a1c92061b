"""The embedded durable queue: bus semantics of RabbitMQ on a SQLite file.

Same topology as the broker (topic bindings from :mod:`hotline.topology`), same
at-least-once contract: a delivered message is leased, deleted on ack, parked on reject,
made visible again with backoff on retry and parked once it reaches the delivery limit.
Each consumer is registered in ``bus_consumers`` and beats there every second; its
leases carry its id. Leases of a consumer that stopped (its row gone) or died (no beat for
``stale_seconds``) are released by any consumer of the queue, so messages in flight when a
process died are delivered again within seconds (handlers are idempotent on the message
id) — while the leases of a consumer that is alive stay its own, with several processes
on one file (two routers, one per core) as with one.

Publishes that arrive while a commit is running are committed together (group commit):
each caller still returns only after its own message is durable (``synchronous=FULL``).

A large body (a report with attachments, a long mail) lives in ``bus_bodies``, apart from
its message's row, because that row is rewritten on every lease, retry and lease renewal;
SQLite rewrites a row whole, and a multi-MB body rewritten (and returned by ``RETURNING``)
cost several copies of it in memory and in the write-ahead log (issue 7). The body is
read once per delivery, straight into the message's bytes. Small bodies stay inline, as
do those of rows written before ``bus_bodies`` existed; both are delivered as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiosqlite

from hotline.adapters._sqlite import connect, immediate, in_connection_thread
from hotline.bus import deliver
from hotline.errors import BusUnavailable
from hotline.logging import get_logger
from hotline.ports import Handler, Message, Outcome
from hotline.topology import PARKING_QUEUE, QUEUES, matches

__all__ = ["SqliteBus"]

_log = get_logger("hotline.bus.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    correlation_id TEXT,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,  -- empty when the body is in bus_bodies
    delivery_count INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL DEFAULT 0,
    leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS bus_messages_ready ON bus_messages (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS bus_bodies (
    seq INTEGER PRIMARY KEY,  -- bus_messages.seq (never reused: AUTOINCREMENT)
    body BLOB NOT NULL
);
-- Whoever deletes a message (ack, park, an operator's DELETE) deletes its body with it.
CREATE TRIGGER IF NOT EXISTS bus_messages_body_gone AFTER DELETE ON bus_messages
BEGIN
    DELETE FROM bus_bodies WHERE seq = OLD.seq;
END;
-- Consumers that are alive, by their beat; bus_messages.owner names the lease holder.
CREATE TABLE IF NOT EXISTS bus_consumers (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bus_parked (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    correlation_id TEXT,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    delivery_count INTEGER NOT NULL,
    parked_at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""

_COLUMNS = "seq, queue, routing_key, message_id, correlation_id, headers, body, delivery_count"
# Bodies longer than this go to bus_bodies; a row up to this size spans a few pages, and
# rewriting it on a lease costs about what a second lookup for the body would.
_INLINE_LIMIT = 16 * 1024
# Leases the oldest visible messages and counts the delivery (body: inline or empty).
_CLAIM = (
    "UPDATE bus_messages SET leased = 1, owner = ?, visible_at = ?,"
    " delivery_count = delivery_count + 1"
    " WHERE seq IN (SELECT seq FROM bus_messages WHERE queue = ? AND visible_at <= ?"
    " ORDER BY seq LIMIT ?) RETURNING seq, queue, routing_key, message_id, correlation_id,"
    " headers, body, delivery_count"
)


async def _add_owner_column(db: aiosqlite.Connection) -> None:
    """Files made before leases had owners get the column (another process may be adding
    it at the same moment)."""
    cursor = await db.execute("PRAGMA table_info(bus_messages)")
    if any(row[1] == "owner" for row in await cursor.fetchall()):
        return
    try:
        await db.execute("ALTER TABLE bus_messages ADD COLUMN owner TEXT")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


class SqliteBus:
    """:class:`hotline.ports.Bus` on a SQLite file (the embedded mode's queue)."""

    def __init__(self, path: Path | str, *, delivery_limit: int = 5, lease_seconds: float = 60.0,
                 poll_seconds: float = 0.2, retry_backoff_seconds: float = 0.5,
                 beat_seconds: float = 1.0, stale_seconds: float = 10.0) -> None:
        self.path = Path(path)
        self.delivery_limit = delivery_limit
        self._lease = lease_seconds
        self._beat_every = beat_seconds
        # A consumer whose event loop is busy this long without a beat loses its leases
        # to the others (they are then delivered twice: handlers are idempotent).
        self._stale = stale_seconds
        self._poll = poll_seconds
        self._backoff = retry_backoff_seconds
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Message, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def open(self) -> None:
        try:
            # FULL: a publish that returned survives a power cut, not only a crash.
            db = await connect(self.path, synchronous="FULL")
            await db.executescript(_SCHEMA)
            await _add_owner_column(db)
        except Exception as exc:  # any failure to open means the same to callers
            raise BusUnavailable(f"cannot open the embedded queue {self.path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            async with self._lock:
                await self._db.execute("SELECT 1")
        except Exception:  # readiness is a yes/no question
            return False
        return True

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise BusUnavailable("the embedded queue is not open")
        return self._db

    # -- publishing -------------------------------------------------------------------

    async def publish(self, message: Message) -> None:
        self._conn()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [
                (queue.name, m.routing_key, m.message_id, m.correlation_id,
                 json.dumps(dict(m.headers)), m.body)
                for m, _ in batch for queue in QUEUES
                if any(matches(b, m.routing_key) for b in queue.bindings)
            ]
            if not rows:
                # Bound to no queue (case events in the embedded mode): nothing to make durable.
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
                continue

            def insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]] = rows) -> None:
                # One trip to the connection's thread for the whole group.
                with immediate(conn):
                    for *fields, body in rows:
                        apart = len(body) > _INLINE_LIMIT
                        seq = conn.execute(
                            "INSERT INTO bus_messages (queue, routing_key, message_id,"
                            " correlation_id, headers, body) VALUES (?, ?, ?, ?, ?, ?)",
                            (*fields, b"" if apart else body)).lastrowid
                        if apart:
                            if seq is None:  # never after an INSERT; the body must not be lost
                                raise sqlite3.DatabaseError("the queued message has no rowid")
                            # Binding a blob copies it twice inside SQLite; writing into a
                            # zero-filled one through incremental I/O copies nothing more.
                            conn.execute("INSERT INTO bus_bodies (seq, body)"
                                         " VALUES (?, zeroblob(?))", (seq, len(body)))
                            with conn.blobopen("bus_bodies", "body", seq) as blob:
                                blob.write(body)

            try:
                async with self._lock:
                    await in_connection_thread(self._conn(), insert)
            except Exception as exc:  # reported to every waiting publisher
                error = BusUnavailable(f"embedded queue did not take the message: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if rows:
                self._arrived.set()

    # -- consuming --------------------------------------------------------------------

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 32) -> None:
        """Deliver ``queue``'s messages to ``handler``, up to ``prefetch`` at once, until
        cancelled.

        A window, not a batch: a message is leased and handed to the handler as soon as
        there is room, while the others are still running, and each one is settled soon
        after its handler returns — so one slow message (a long report) does not hold back
        the ones behind it, and the CPU is not idle while a batch is settled and the next
        one leased. Leases are taken and settled in batches (one transaction each) so that
        a busy queue costs a few transactions per window, not several per message. Leases
        of long-running handlers are renewed; on cancellation the running handlers are
        cancelled and their messages keep their lease, to be released by the next
        consumer that starts.
        """
        me = secrets.token_hex(8)
        await self._beat(queue, me)  # …and release the leases of consumers that died
        next_beat = time.monotonic() + self._beat_every
        running: dict[asyncio.Task[Outcome], tuple[int, Message, float]] = {}
        finished: list[tuple[tuple[int, Message], Outcome]] = []
        arrival: asyncio.Task[Any] | None = None
        refill = max(1, prefetch // 2)  # lease more once this many places are free
        try:
            while True:
                if time.monotonic() >= next_beat:
                    await self._beat(queue, me)
                    next_beat = time.monotonic() + self._beat_every
                if finished:
                    settling, finished = finished, []
                    await self._settle(queue, settling)
                room = prefetch - len(running)
                drained = False
                if not running or room >= refill:
                    self._arrived.clear()
                    batch = await self._claim(queue, room, me)
                    drained = len(batch) < room
                    now = time.monotonic()
                    for seq, message in batch:
                        task = asyncio.create_task(deliver(handler, message))
                        running[task] = (seq, message, now)
                await self._renew(queue, running)
                if not running:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), self._poll)
                    continue
                waiting: set[asyncio.Future[Any]] = set(running)
                # Wake up to beat, and to renew the leases of long handlers.
                timeout = min(self._lease / 4, self._beat_every)
                if drained and prefetch - len(running) >= refill:
                    # Room for more: a new message need not wait for a running one (and
                    # one published by another process is seen within the poll interval).
                    if arrival is None or arrival.done():
                        arrival = asyncio.create_task(self._arrived.wait())
                    waiting.add(arrival)
                    timeout = self._poll
                done, _ = await asyncio.wait(waiting, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in [t for t in running if t in done]:
                    seq, message, _ = running.pop(task)
                    finished.append(((seq, message), task.result()))
        finally:
            if arrival is not None:
                arrival.cancel()
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            # Gone: the next consumer to beat releases the leases this one kept.
            with contextlib.suppress(Exception):
                await self._leave(me)

    async def _beat(self, queue: str, me: str) -> None:
        """Say this consumer is alive; release the leases of those that are not."""
        now = time.time()

        def beat(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                conn.execute("INSERT INTO bus_consumers (id, queue, seen_at) VALUES (?, ?, ?)"
                             " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                             (me, queue, now))
                conn.execute("DELETE FROM bus_consumers WHERE seen_at < ?", (now - self._stale,))
                # (A lease without an owner was taken before owners were recorded.)
                released = conn.execute(
                    "UPDATE bus_messages SET leased = 0, visible_at = 0, owner = NULL"
                    " WHERE queue = ? AND leased = 1 AND (owner IS NULL OR owner NOT IN"
                    " (SELECT id FROM bus_consumers))", (queue,)).rowcount
            return int(released)

        async with self._lock:
            released = await in_connection_thread(self._conn(), beat)
        if released:
            _log.info("bus.leases_released", queue=queue, messages=released)

    async def _leave(self, me: str) -> None:
        async with self._lock:
            await self._conn().execute("DELETE FROM bus_consumers WHERE id = ?", (me,))

    async def _renew(self, queue: str,
                     running: dict[asyncio.Task[Outcome], tuple[int, Message, float]]) -> None:
        """Extend the lease of messages whose handlers have run for half of it, so that no
        other consumer (nor this one) takes them while they are still being handled."""
        now = time.monotonic()
        due = [(task, seq) for task, (seq, _, since) in running.items()
               if now - since >= self._lease / 2]
        if not due:
            return
        until = time.time() + self._lease
        async with self._lock:
            await self._conn().executemany(
                "UPDATE bus_messages SET visible_at = ? WHERE seq = ? AND queue = ?",
                [(until, seq, queue) for _, seq in due])
        for task, _ in due:
            seq, message, _since = running[task]
            running[task] = (seq, message, now)

    async def _claim(self, queue: str, limit: int, owner: str) -> list[tuple[int, Message]]:
        now = time.time()
        params = (owner, now + self._lease, queue, now, limit)

        def claim(conn: sqlite3.Connection) -> list[tuple[int, Message]]:
            # The lease and the bodies in one transaction: a body cannot go (its message
            # acked by a consumer that took over the lease) between the two.
            with immediate(conn):
                rows = sorted(conn.execute(_CLAIM, params).fetchall(), key=lambda r: int(r[0]))
                return [(int(r[0]), _message(r, _body(conn, r),
                                             delivery_count=int(r[7]) - 1)) for r in rows]

        async with self._lock:
            return await in_connection_thread(self._conn(), claim)

    async def _settle(self, queue: str,
                      results: list[tuple[tuple[int, Message], Outcome]]) -> None:
        now = time.time()

        def settle(conn: sqlite3.Connection) -> None:
            # One trip to the connection's thread for the whole batch.
            with immediate(conn):
                for (seq, message), outcome in results:
                    attempts = message.delivery_count + 1
                    if outcome is Outcome.ACK:
                        conn.execute("DELETE FROM bus_messages WHERE seq = ?", (seq,))
                    elif outcome is Outcome.REJECT or attempts >= self.delivery_limit:
                        reason = "rejected" if outcome is Outcome.REJECT else "delivery limit"
                        _park(conn, seq, reason, now)
                    else:
                        conn.execute(
                            "UPDATE bus_messages SET leased = 0, visible_at = ? WHERE seq = ?",
                            (now + self._backoff * attempts, seq))

        async with self._lock:
            await in_connection_thread(self._conn(), settle)
        _ = queue

    # -- parking queue ----------------------------------------------------------------

    async def parked(self, limit: int = 100) -> list[Message]:
        async with self._lock:
            cursor = await self._conn().execute(
                f"SELECT {_COLUMNS} FROM bus_parked ORDER BY seq LIMIT ?", (limit,))  # noqa: S608
            rows = await cursor.fetchall()
        return [_message(r, bytes(r[6]), delivery_count=int(r[7])) for r in rows]

    async def replay_parked(self, message_id: str | None = None) -> int:
        where, params = ("WHERE message_id = ?", (message_id,)) if message_id else ("", ())

        def replay(conn: sqlite3.Connection) -> int:
            # Row by row inside SQLite: the bodies never pass through Python.
            with immediate(conn):
                parked = conn.execute(f"SELECT seq, length(body) FROM bus_parked {where}"  # noqa: S608 — only our placeholders
                                      " ORDER BY seq", params).fetchall()
                for parked_seq, size in parked:
                    apart = size > _INLINE_LIMIT
                    seq = conn.execute(
                        "INSERT INTO bus_messages (queue, routing_key, message_id,"
                        " correlation_id, headers, body) SELECT queue, routing_key, message_id,"
                        " correlation_id, headers, CASE WHEN ? THEN x'' ELSE body END"
                        " FROM bus_parked WHERE seq = ?", (apart, parked_seq)).lastrowid
                    if apart:
                        conn.execute("INSERT INTO bus_bodies (seq, body) SELECT ?, body"
                                     " FROM bus_parked WHERE seq = ?", (seq, parked_seq))
                    conn.execute("DELETE FROM bus_parked WHERE seq = ?", (parked_seq,))
            return len(parked)

        async with self._lock:
            count = await in_connection_thread(self._conn(), replay)
        if count:
            self._arrived.set()
            _log.info("parking.replayed", count=count, queue=PARKING_QUEUE)
        return count


def _park(conn: sqlite3.Connection, seq: int, reason: str, now: float) -> None:
    # Parked messages keep their body inline: the parking queue is read and replayed
    # rarely, and its rows are never rewritten. The trigger deletes the bus_bodies row.
    conn.execute(
        "INSERT INTO bus_parked (queue, routing_key, message_id, correlation_id, headers,"
        " body, delivery_count, parked_at, reason) SELECT m.queue, m.routing_key,"
        " m.message_id, m.correlation_id, m.headers, COALESCE(b.body, m.body),"
        " m.delivery_count, ?, ? FROM bus_messages AS m LEFT JOIN bus_bodies AS b"
        " ON b.seq = m.seq WHERE m.seq = ?", (now, reason, seq))
    conn.execute("DELETE FROM bus_messages WHERE seq = ?", (seq,))


def _body(conn: sqlite3.Connection, row: Any) -> bytes:
    """The body of a claimed ``row``: inline, or read from bus_bodies in one copy."""
    seq, inline = int(row[0]), row[6]
    if inline or conn.execute("SELECT 1 FROM bus_bodies WHERE seq = ?", (seq,)).fetchone() is None:
        return bytes(inline)
    # Incremental blob I/O reads the pages straight into the new bytes object; a SELECT
    # would first assemble the whole value in SQLite's memory and then copy it.
    with conn.blobopen("bus_bodies", "body", seq, readonly=True) as blob:
        return blob.read()


def _message(row: Any, body: bytes, *, delivery_count: int) -> Message:
    return Message(routing_key=row[2], message_id=row[3], body=body,
                   correlation_id=row[4], headers=json.loads(row[5]),
                   delivery_count=delivery_count)
