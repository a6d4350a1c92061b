"""MongoDB-only behaviour of MongoStore: completing a half-written open, URLs, time zones."""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from pymongo.errors import AutoReconnect

from hotline.adapters.mongo_store import MongoStore
from hotline.domain.audit import AuditHead, verify_chain
from hotline.ports import Store
from tests.integration.test_store_contract import (
    T0,
    first_events,
    make_case,
    open_case,
    receipt_for,
)
from tests.support.mongomock_async import AsyncMockClient

pytestmark = pytest.mark.integration


class _DiesOnce:
    """A collection whose ``method`` fails once, like a router killed mid-write."""

    def __init__(self, collection: Any, method: str) -> None:
        self._collection = collection
        self._method = method
        self.died = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if name != self._method or self.died:
            return attribute

        async def die(*args: Any, **kwargs: Any) -> Any:
            self.died = True
            raise AutoReconnect("router died here")

        return die


def crash_on(store: MongoStore, collection: str, method: str,
             monkeypatch: pytest.MonkeyPatch) -> _DiesOnce:
    original: Callable[[str], Any] = store.collection
    saboteur = _DiesOnce(original(collection), method)
    monkeypatch.setattr(store, "collection",
                        lambda name: saboteur if name == collection else original(name))
    return saboteur


@pytest.mark.parametrize(("collection", "method"), [
    ("audit", "update_one"),  # after the case insert, before any event
    ("receipts", "update_one"),  # after the events, before the receipt
    ("cases", "update_one"),  # after events and receipt, before the head
], ids=["before-events", "before-receipt", "before-head"])
async def test_a_second_open_completes_a_half_written_case(
        mongo_store: MongoStore, monkeypatch: pytest.MonkeyPatch, collection: str,
        method: str) -> None:
    """After a crash mid-open, a redelivery writes the first attempt's events, receipt, head."""
    case = make_case(1)
    saboteur = crash_on(mongo_store, collection, method, monkeypatch)
    with pytest.raises(AutoReconnect):
        await mongo_store.cases.open(case, first_events(case), receipt_for(case),
                                     reference_prefix="R-2026")
    assert saboteur.died
    half = await mongo_store.cases.get(case.id)
    assert half is not None
    assert ("R-2026-000001", None) == (half.reference, half.audit_head)

    # The redelivery is processed later, so its own events carry other times.
    later = make_case(1, opened_at=T0 + timedelta(hours=1))
    stored, created = await mongo_store.cases.open(
        later, first_events(later), receipt_for(later), reference_prefix="R-2026")
    events = await mongo_store.audit.events(case.id)
    assert (False, "R-2026-000001") == (created, stored.reference)
    assert first_events(case) == events
    assert AuditHead(events[-1].seq, events[-1].hash) == stored.audit_head
    assert verify_chain(case.id, events, stored.audit_head) is None
    assert receipt_for(case) == await mongo_store.receipts.get(f"{1:064x}")
    assert "R-2026-000002" == (await open_case(cast(Store, mongo_store), make_case(2))).reference


async def test_naive_datetimes_from_the_driver_are_read_as_utc() -> None:
    """A client without tz_aware still yields aware UTC times equal to those stored."""
    store = MongoStore(cast(Any, AsyncMockClient(tz_aware=False)), "hotline_naive")
    await store.open()
    try:
        opened = await open_case(cast(Store, store), make_case(1, due_at=T0 + timedelta(days=1)))
        assert opened == await store.cases.get(opened.id)
        assert [e.at for e in first_events(make_case(1))] == [
            e.at for e in await store.audit.events(opened.id)]
    finally:
        await store.close()


@pytest.mark.parametrize(("url", "database"), [
    ("mongodb://127.0.0.1:1/casework?serverSelectionTimeoutMS=100", "casework"),
    ("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100", "hotline"),
    ("mongodb://127.0.0.1:1", "hotline"),
])
async def test_from_url_takes_the_database_from_the_path(url: str, database: str) -> None:
    """from_url uses the URL's database, or "hotline" when the path names none."""
    store = MongoStore.from_url(url)
    try:
        assert f"{database}.cases" == store.collection("cases").full_name
    finally:
        await store.close()


async def test_ping_is_false_when_the_server_is_unreachable() -> None:
    """ping answers False rather than raising when no server answers."""
    store = MongoStore.from_url("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100")
    try:
        assert not await store.ping()
    finally:
        await store.close()
