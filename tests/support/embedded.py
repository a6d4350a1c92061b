"""An in-process embedded Hotline (SQLite store and queue) for API tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline.adapters.sqlite_bus import SqliteBus
from hotline.adapters.sqlite_store import SqliteStore
from hotline.crypto import MasterKey, ReceiptKeys
from hotline.org import OrgTree, load_org
from hotline.ports import Message
from hotline.services import add_account, rotate_keys
from hotline.settings import Settings, load_settings


class RecordingBus:
    """Wraps a real bus and remembers what was published (case events have no queue)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.published: list[Message] = []

    async def publish(self, message: Message) -> None:
        await self.inner.publish(message)
        self.published.append(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Embedded:
    settings: Settings
    store: SqliteStore
    bus: SqliteBus
    org: OrgTree
    master: MasterKey
    receipts: ReceiptKeys
    admin_password: str


@contextlib.asynccontextmanager
async def embedded(data_dir: Path, **env: str) -> AsyncIterator[Embedded]:
    settings = load_settings({"HOTLINE_DATA_DIR": str(data_dir), "HOTLINE_POW_DIFFICULTY": "4",
                              **env})
    store = SqliteStore(data_dir / "hotline.sqlite3")
    bus = SqliteBus(data_dir / "hotline.sqlite3", delivery_limit=3, poll_seconds=0.05,
                    retry_backoff_seconds=0.05)
    await store.open()
    await bus.open()
    org = load_org()
    master = MasterKey.load(settings.master_key_file, create=True)
    receipts = ReceiptKeys.load(settings.receipt_key_file, create=True)
    await rotate_keys(store, master)
    _, password = await add_account(store, org, "admin", unit="HQ", role="admin")
    assert password is not None
    try:
        yield Embedded(settings, store, bus, org, master, receipts, password)
    finally:
        await bus.close()
        await store.close()


async def table_counts(store: SqliteStore) -> dict[str, int]:
    """Row counts of every table that a submission could leave a trace in."""
    counts = {}
    async with store.transaction() as db:
        for table in ("cases", "audit_events", "receipts", "case_messages", "bus_messages",
                      "bus_parked", "pow_burnt"):
            cursor = await db.execute(f"SELECT COUNT(*) FROM {table}")
            row = await cursor.fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


