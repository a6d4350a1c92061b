"""The repository contract of retention (issue 5) on every store: archive fields, the
tombstone replace, record deletion and the queue without tombstones.

Same ``store`` fixture as tests/integration/test_store_contract.py (SQLite, MongoDB via the
mongomock shim, and a real MongoDB when HOTLINE_TEST_MONGO_URL is set).
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hotline.domain.case import CaseMessage, CaseQuery
from hotline.errors import ConcurrencyConflict, NotFound
from hotline.ports import Store
from hotline.retention import PURGED_CONTENT, tombstone_of
from tests.integration.test_store_contract import T0, event_after, make_case, open_case

pytestmark = pytest.mark.integration


async def test_archive_fields_round_trip_through_update(store: Store) -> None:
    """archived_at and retention_until are mutable fields stored with the case."""
    case = await open_case(store, make_case(1, status="closed"))
    archived = replace(case, archived_at=T0 + timedelta(days=1),
                       retention_until=T0 + timedelta(days=1900))
    updated = await store.cases.update(archived, expected_version=case.version)
    stored = await store.cases.get(case.id)
    assert stored is not None
    assert (archived.archived_at, archived.retention_until) == (
        stored.archived_at, stored.retention_until)
    assert updated == stored


async def test_query_finds_cases_past_retention(store: Store) -> None:
    """retention_before lists archived cases whose retention ended, nothing else."""
    past = await open_case(store, make_case(1, status="closed"))
    future = await open_case(store, make_case(2, status="closed"))
    await open_case(store, make_case(3))
    await store.cases.update(replace(past, retention_until=T0 + timedelta(days=10)),
                             expected_version=past.version)
    await store.cases.update(replace(future, retention_until=T0 + timedelta(days=30)),
                             expected_version=future.version)
    due = await store.cases.query(CaseQuery(units=None, retention_before=T0 + timedelta(days=20)))
    assert [past.id] == [c.id for c in due]


async def test_purge_replaces_the_case_by_its_tombstone(store: Store) -> None:
    """The tombstone keeps id, reference and audit head; messages and threads are gone."""
    case = await open_case(store, make_case(1, status="closed"))
    head = case.audit_head
    assert head is not None
    viewed = event_after(case, head)
    await store.audit.append(viewed)
    await store.cases.add_message(CaseMessage(
        id="msg-00000001", case_id=case.id, at=T0, author="reporter", actor="reporter",
        sealed_for_org=case.content, sealed_for_reporter=None))
    await store.mail_threads.remember(case.id, ["<a@example.cn>"])
    current = await store.cases.get(case.id)
    assert current is not None
    tombstone = await store.cases.purge(tombstone_of(current, T0 + timedelta(days=2000)),
                                        expected_version=current.version)
    stored = await store.cases.get(case.id)
    assert tombstone == stored
    assert ("purged", PURGED_CONTENT, None, case.reference) == (
        stored.status, stored.content, stored.reply_key, stored.reference)
    assert viewed.seq == stored.audit_head.seq  # type: ignore[union-attr]
    assert current.version + 1 == stored.version
    assert [] == await store.cases.messages(case.id)
    assert await store.mail_threads.case_for(["<a@example.cn>"]) is None
    # the receipt keeps pointing at the tombstone: an old receipt reads "closed"
    assert case.id == (await store.receipts.get(case.receipt_hash or "")).case_id  # type: ignore[union-attr]


async def test_purge_refuses_a_moved_version_and_a_missing_case(store: Store) -> None:
    """A purge at a stale version conflicts; a case that does not exist is NotFound."""
    case = await open_case(store, make_case(1, status="closed"))
    with pytest.raises(ConcurrencyConflict):
        await store.cases.purge(tombstone_of(case, T0), expected_version=case.version + 5)
    assert "closed" == (await store.cases.get(case.id)).status  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.cases.purge(tombstone_of(make_case(9), T0), expected_version=1)


async def test_queue_leaves_tombstones_out_unless_asked(store: Store) -> None:
    """Purged cases are not in the default queue; status=purged or include_purged shows them."""
    case = await open_case(store, make_case(1, status="closed"))
    other = await open_case(store, make_case(2))
    await store.cases.purge(tombstone_of(case, T0), expected_version=case.version)
    assert [other.id] == [c.id for c in await store.cases.query(CaseQuery(units=None))]
    assert [case.id] == [c.id for c in await store.cases.query(
        CaseQuery(units=None, status="purged"))]
    assert {case.id, other.id} == {c.id for c in await store.cases.query(
        CaseQuery(units=None, include_purged=True))}


async def test_records_delete(store: Store) -> None:
    """delete removes one record and says whether there was one."""
    await store.records.put("survey", "k1", {"case_id": "c_1"}, expected_version=0)
    await store.records.put("survey", "k2", {"case_id": "c_2"}, expected_version=0)
    assert await store.records.delete("survey", "k1")
    assert not await store.records.delete("survey", "k1")
    assert ["k2"] == [r.key for r in await store.records.list("survey")]
