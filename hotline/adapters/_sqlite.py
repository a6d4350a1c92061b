"""Opening a SQLite file the way every embedded adapter needs it."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

__all__ = ["connect"]


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
