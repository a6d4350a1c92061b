"""Audit checkpoints follow what moved: after the first, each reads the chains appended
to since the last one (the store's mark), not every chain and every checkpoint ever
written; a missing or stale state falls back to one full pass. Run on every store."""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline import checkpoints
from hotline.adapters.mongo_store import MongoStore
from hotline.adapters.sqlite_store import SqliteStore
from hotline.checkpoints import (
    CHECKPOINT_KIND,
    STATE_KIND,
    checkpoint_public_key,
    checkpoint_records,
    make_checkpoint,
    recent_checkpoints,
    verify_checkpoints,
)
from hotline.crypto import MasterKey
from hotline.domain.audit import AuditHead
from hotline.ports import ChainHeads, Store
from tests.integration.test_store_contract import event_after, make_case, open_case

pytestmark = pytest.mark.integration


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(os.urandom(32))


async def append(store: Store, case_id: str, minutes: int = 5) -> AuditHead:
    case = await store.cases.get(case_id)
    assert case is not None
    assert case.audit_head is not None
    event = event_after(case, case.audit_head, minutes=minutes)
    await store.audit.append(event)
    return AuditHead(event.seq, event.hash)


async def verified(store: Store) -> tuple[bool, int, int]:
    public = await checkpoint_public_key(store)
    assert public is not None
    report = await verify_checkpoints(store, public)
    return report.ok, report.checkpoints, report.chains


class Spy:
    """Counts what make_checkpoint asks of the store."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.marks: list[str | None] = []
        self.listed: list[str] = []
        heads_since, listing = store.audit.heads_since, store.records.list

        async def spy_heads(mark: str | None, *, limit: int | None = None) -> ChainHeads:
            self.marks.append(mark)
            return await heads_since(mark, limit=limit)

        async def spy_list(kind: str, **page: Any) -> list[Any]:
            self.listed.append(kind)
            return await listing(kind, **page)

        monkeypatch.setattr(store.audit, "heads_since", spy_heads)
        monkeypatch.setattr(store.records, "list", spy_list)


async def test_after_the_first_only_moved_chains_are_read_and_signed(
        store: Store, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second checkpoint reads from the first one's mark and lists no history; it
    signs the moved and the new chain; the chain count and the links still verify."""
    cases = [(await open_case(store, make_case(n))).id for n in range(1, 5)]
    spy = Spy(store, monkeypatch)
    first = await make_checkpoint(store, master)
    assert first is not None
    assert (set(cases), 4, [None]) == (set(first.doc["heads"]), first.doc["chains"], spy.marks)
    moved = await append(store, cases[1])
    new = (await open_case(store, make_case(9))).id
    spy.listed.clear()
    second = await make_checkpoint(store, master)
    assert second is not None
    assert {cases[1]: [moved.seq, moved.hash], new: second.doc["heads"][new]} \
        == second.doc["heads"]
    assert (5, 2, [], first.doc["n"] + 1) == (second.doc["chains"], len(spy.marks),
                                               spy.listed, second.doc["n"])
    assert spy.marks[1] is not None
    assert await make_checkpoint(store, master) is None  # nothing moved since
    assert (True, 2, 5) == await verified(store)


async def test_a_run_cut_off_before_its_state_is_caught_by_a_full_pass(
        store: Store, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint written without its state (crash in between) is followed by a full
    pass that neither repeats it nor misses a chain; then the state is current again."""
    cases = [(await open_case(store, make_case(n))).id for n in range(1, 4)]
    assert await make_checkpoint(store, master) is not None
    state = await store.records.get(STATE_KIND, "active")
    assert state is not None
    await append(store, cases[0])
    assert await make_checkpoint(store, master) is not None
    # Put back the first state: as if the run had stopped after checkpoint 2.
    current = await store.records.get(STATE_KIND, "active")
    assert current is not None
    await store.records.put(STATE_KIND, "active", state.doc, expected_version=current.version)
    moved = await append(store, cases[2])
    spy = Spy(store, monkeypatch)
    third = await make_checkpoint(store, master)
    assert third is not None
    assert ({cases[2]: [moved.seq, moved.hash]}, 3, [None]) == (
        third.doc["heads"], third.doc["n"], spy.marks)
    assert (True, 3, 3) == await verified(store)
    await append(store, cases[1])
    spy.marks.clear()
    assert await make_checkpoint(store, master) is not None
    assert spy.marks[0] is not None  # incremental again


async def test_without_a_state_the_first_run_after_an_upgrade_signs_only_what_moved(
        store: Store, master: MasterKey) -> None:
    """Checkpoints from before the state record: the full pass compares with all of them."""
    cases = [(await open_case(store, make_case(n))).id for n in range(1, 4)]
    assert await make_checkpoint(store, master) is not None
    assert await store.records.delete(STATE_KIND, "active")
    assert await make_checkpoint(store, master) is None  # …and writes the state
    assert await store.records.get(STATE_KIND, "active") is not None
    await append(store, cases[0])
    assert await store.records.delete(STATE_KIND, "active")
    second = await make_checkpoint(store, master)
    assert second is not None
    assert ([cases[0]], 3) == (list(second.doc["heads"]), second.doc["chains"])
    assert 2 == len(await store.records.list(CHECKPOINT_KIND))


async def test_readers_go_through_checkpoints_a_page_at_a_time(
        store: Store, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpoint_records pages by key; recent_checkpoints starts from the state record
    (and without one goes through all); verification reads pages, not everything."""
    cases = [(await open_case(store, make_case(n))).id for n in range(1, 3)]
    for n in range(5):
        await append(store, cases[n % 2])
        assert await make_checkpoint(store, master) is not None
    every = [r.key for r in await store.records.list(CHECKPOINT_KIND)]
    assert 5 == len(every)
    pages: list[int | None] = []
    listing = store.records.list

    async def counted(kind: str, **page: Any) -> list[Any]:
        pages.append(page.get("limit"))
        return await listing(kind, **page)

    monkeypatch.setattr(store.records, "list", counted)
    assert every == [r.key async for r in checkpoint_records(store, page=2)]
    assert [2, 2, 2] == pages
    assert every[3:] == [r.key async for r in checkpoint_records(store, after=3, page=2)]
    pages.clear()
    assert every[2:] == [r.key for r in await recent_checkpoints(store, 3)]
    assert [checkpoints.CHECKPOINT_PAGE] == pages  # one page from the state's number
    assert await store.records.delete(STATE_KIND, "active")
    assert every[3:] == [r.key for r in await recent_checkpoints(store, 2)]
    monkeypatch.setattr(checkpoints, "CHECKPOINT_PAGE", 2)
    pages.clear()
    assert (True, 5, 2) == await verified(store)
    assert {2} == set(pages)


async def test_what_moved_under_load_is_signed_in_linked_records_of_bounded_size(
        store: Store, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seven moved chains with three heads per record: linked records of at most three
    (SQLite also reads the store in rounds); all verify, and nothing is left unsigned."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_HEADS", 3)
    cases = [(await open_case(store, make_case(n))).id for n in range(1, 3)]
    first = await make_checkpoint(store, master)
    assert first is not None
    cases += [(await open_case(store, make_case(n))).id for n in range(3, 8)]
    moved = {cases[0]: await append(store, cases[0]), cases[1]: await append(store, cases[1])}
    last = await make_checkpoint(store, master)
    assert last is not None
    records = await store.records.list(CHECKPOINT_KIND)
    # Rounds of three events may show a chain twice (its head then, a real event, and
    # later its head now); the last signature of each chain is its head now.
    signed: dict[str, list[Any]] = {}
    for record in records[1:]:
        assert len(record.doc["heads"]) <= 3
        signed.update(record.doc["heads"])
    heads = await store.audit.heads_since(None)
    assert {c: [h.seq, h.hash] for c, h in heads.heads.items()} == signed
    assert {c: [h.seq, h.hash] for c, h in moved.items()} \
        == {c: signed[c] for c in moved}
    assert (last.key, 7) == (records[-1].key, last.doc["chains"])
    assert (True, len(records), 7) == await verified(store)
    assert await make_checkpoint(store, master) is None


async def test_sqlite_marks_are_exact(tmp_path: Any) -> None:
    """SQLite's mark is a rowid: nothing new, nothing returned; a reused rowid (events
    deleted behind the store's back) makes it start over instead of missing chains."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.open()
    try:
        a = await open_case(store, make_case(1))
        b = await open_case(store, make_case(2))
        found = await store.audit.heads_since(None)
        assert ({}, frozenset()) == (dict((await store.audit.heads_since(found.mark)).heads),
                                     (await store.audit.heads_since(found.mark)).started)
        head = await append(store, a.id)
        later = await store.audit.heads_since(found.mark)
        assert ({a.id: head}, frozenset()) == (dict(later.heads), later.started)
        async with store.transaction() as db:
            await db.execute("DELETE FROM audit_events WHERE case_id = ?", (a.id,))
        again = await store.audit.heads_since(later.mark)
        assert {b.id} == set(again.heads)
        c = await open_case(store, make_case(3))
        page = await store.audit.heads_since(None, limit=2)  # b's two events
        assert ({b.id}, True) == (set(page.heads), page.more)
        rest = await store.audit.heads_since(page.mark, limit=2)
        assert ({c.id}, False) == (set(rest.heads), rest.more)
    finally:
        await store.close()


async def test_mongo_marks_read_back_a_clock_margin(mongo_store: MongoStore) -> None:
    """MongoDB's mark is a time: events appended within two minutes before it come back
    (clock differences, inserts in flight), older ones do not."""
    a = await open_case(mongo_store, make_case(1))
    b = await open_case(mongo_store, make_case(2))
    mark = (await mongo_store.audit.heads_since(None)).mark
    now = datetime.now(UTC)
    audit = mongo_store.collection("audit")
    await audit.update_many({"case_id": a.id}, {"$set": {"appended": now - timedelta(
        minutes=1)}})
    await audit.update_many({"case_id": b.id}, {"$set": {"appended": now - timedelta(
        minutes=10)}})
    assert {a.id} == set((await mongo_store.audit.heads_since(mark)).heads)
