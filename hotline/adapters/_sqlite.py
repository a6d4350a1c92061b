"""Opening a SQLite file the way every embedded adapter needs it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import aiosqlite

__all__ = ["connect", "immediate", "in_connection_thread"]

T = TypeVar("T")


async def connect(path: Path, *, synchronous: str) -> aiosqlite.Connection:
    """An autocommit connection in WAL mode that waits for other writers (other
    connections and processes on the same file) instead of failing at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        await db.execute("PRAGMA busy_timeout = 10000")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        await db.close()
        raise
    return db


async def in_connection_thread(db: aiosqlite.Connection,
                               fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn(connection)`` on the connection's own thread, in one hop.

    Each ``await db.execute`` is a round trip between the event loop and aiosqlite's
    thread; a transaction of a dozen statements written as one function makes one. This
    is the queue every aiosqlite call goes through (``_execute``); it is not public API,
    so tests/integration/test_store_contract.py checks it is still there.
    """
    result: T = await db._execute(fn, db._conn)  # type: ignore[no-untyped-call]
    return result


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on the connection's own thread (inside a function given to
    :func:`in_connection_thread`): ``BEGIN IMMEDIATE``, then ``COMMIT``, or ``ROLLBACK`` on
    any exception, cancellation included."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
