"""The repository contract: every Store adapter (SQLite, MongoDB) passes these tests.

Written only against :class:`hotline.ports.Store`; the ``store`` fixture
(tests/support/mongo.py) runs each test once per adapter.
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.crypto import KeyRecord, Sealed
from hotline.domain.audit import AuditEvent, AuditHead, next_event, verify_chain
from hotline.domain.case import Account, Case, CaseMessage, CaseQuery, ReceiptRecord, case_id_for
from hotline.errors import ConcurrencyConflict, ContentNotLoaded, ContractError, NotFound
from hotline.ports import Store

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)  # milliseconds only, as the domain keeps
KID = "kid-0000000000001"


def make_case(n: int, *, kind: str = "report", unit: str = "GD", status: str = "new",
              severity: str = "general", opened_at: datetime | None = None,
              due_at: datetime | None = None, submission_id: str | None = None) -> Case:
    """Case number ``n`` as the router hands it to the store (reference still unset)."""
    submission_id = submission_id or f"sub-{n:08d}"
    opened = opened_at or T0 + timedelta(minutes=n)
    return Case(
        id=case_id_for(submission_id), submission_id=submission_id, reference="",
        kind=kind,  # type: ignore[arg-type]
        category="fraud" if kind == "report" else "billing", severity=severity,
        status=status, unit=unit, channel="web", opened_at=opened,
        received_at=opened - timedelta(seconds=2),
        content=Sealed(KID, bytes([n % 256]) * 32, b"ciphertext-" + str(n).encode()),
        sealed_by="browser", due_at=due_at, locale="zh-CN",
        receipt_hash=f"{n:064x}", reply_key=b"\x07" * 32,
        triage={"rules": ["keyword:贪污"], "score": 3}, workflow={"name": "report/general"})


def first_events(case: Case, *, at: datetime | None = None) -> list[AuditEvent]:
    """The chained events the router writes with a new case."""
    opened = next_event(case.id, None, at=at or case.opened_at, actor="router",
                        type_="case.opened", data={"severity": case.severity})
    triaged = next_event(case.id, AuditHead(opened.seq, opened.hash), at=at or case.opened_at,
                         actor="router", type_="case.triaged", data={"rules": ["r1"]})
    return [opened, triaged]


def receipt_for(case: Case) -> ReceiptRecord:
    assert case.receipt_hash is not None
    return ReceiptRecord(case.receipt_hash, case.id, case.submission_id)


async def open_case(store: Store, case: Case, prefix: str = "R-2026") -> Case:
    stored, created = await store.cases.open(case, first_events(case), receipt_for(case),
                                             reference_prefix=prefix)
    assert created
    return stored


def event_after(case: Case, head: AuditHead, *, minutes: int = 1,
                type_: str = "case.viewed") -> AuditEvent:
    return next_event(case.id, head, at=case.opened_at + timedelta(minutes=minutes),
                      actor="officer-1", type_=type_)


# --- opening cases -------------------------------------------------------------------


async def test_open_allocates_gap_free_references_per_prefix(store: Store) -> None:
    """References count 000001, 000002 … separately for each prefix."""
    references = [
        (await open_case(store, make_case(1))).reference,
        (await open_case(store, make_case(2))).reference,
        (await open_case(store, make_case(3, kind="complaint"), "C-2026")).reference,
        (await open_case(store, make_case(4))).reference,
    ]
    assert ["R-2026-000001", "R-2026-000002", "C-2026-000001", "R-2026-000003"] == references


async def test_open_stores_the_case_its_events_and_its_receipt(store: Store) -> None:
    """The opened case reads back whole by id, submission and reference, with head and receipt."""
    case = make_case(1, due_at=T0 + timedelta(days=3))
    events = first_events(case)
    stored, created = await store.cases.open(case, events, receipt_for(case),
                                             reference_prefix="R-2026")
    expected = replace(case, reference="R-2026-000001",
                       audit_head=AuditHead(events[-1].seq, events[-1].hash))
    assert created
    assert expected == stored
    assert expected == await store.cases.get(case.id)
    assert expected == await store.cases.by_submission(case.submission_id)
    assert expected == await store.cases.by_reference("R-2026-000001")
    assert events == await store.audit.events(case.id)
    assert receipt_for(case) == await store.receipts.get(f"{1:064x}")
    assert 1 == await store.cases.count()


async def test_open_without_receipt_or_events(store: Store) -> None:
    """A case may come without a receipt (manual intake); its head then stays unset."""
    case = replace(make_case(1), receipt_hash=None)
    stored, created = await store.cases.open(case, [], None, reference_prefix="R-2026")
    assert (replace(case, reference="R-2026-000001"), True) == (stored, created)
    assert [] == await store.audit.events(case.id)


async def test_open_again_returns_the_existing_case_and_changes_nothing(store: Store) -> None:
    """A redelivered submission gets (existing, False), no second case and no burnt number."""
    first = await open_case(store, make_case(1))
    events = await store.audit.events(first.id)
    later = replace(make_case(1), severity="major", opened_at=T0 + timedelta(hours=1))
    again, created = await store.cases.open(
        later, first_events(later, at=T0 + timedelta(hours=1)), receipt_for(later),
        reference_prefix="R-2026")
    assert (first, False) == (again, created)
    assert 1 == await store.cases.count()
    assert events == await store.audit.events(first.id)
    assert "R-2026-000002" == (await open_case(store, make_case(2))).reference


async def test_concurrent_opens_get_distinct_consecutive_references(store: Store) -> None:
    """20 opens at once of distinct submissions take references 1..20 with no gap."""
    cases = [make_case(n) for n in range(1, 21)]
    stored = await asyncio.gather(*(open_case(store, case) for case in cases))
    expected = [f"R-2026-{n:06d}" for n in range(1, 21)]
    assert expected == sorted(case.reference for case in stored)
    assert 20 == await store.cases.count()


async def test_concurrent_opens_of_one_submission_create_one_case(store: Store) -> None:
    """Ten routers opening the same submission at once create exactly one case."""
    case = make_case(1)
    results = await asyncio.gather(*(
        store.cases.open(case, first_events(case), receipt_for(case), reference_prefix="R-2026")
        for _ in range(10)))
    assert 1 == sum(created for _, created in results)
    assert 1 == len({(stored.id, stored.reference) for stored, _ in results})
    assert 1 == await store.cases.count()
    stored = await store.cases.get(case.id)
    assert stored is not None
    events = await store.audit.events(case.id)
    assert first_events(case) == events
    assert verify_chain(case.id, events, stored.audit_head) is None
    assert receipt_for(case) == await store.receipts.get(f"{1:064x}")


async def test_one_failing_open_among_concurrent_ones_fails_alone(store: Store) -> None:
    """Opens at the same moment may share a transaction (SQLite's group commit): a case
    that cannot be stored (its id is taken by another submission's case) fails for its
    caller only; the others are stored whole, with their events and receipts."""
    taken = await open_case(store, make_case(1))
    clash = replace(make_case(2), id=taken.id)
    good = [make_case(n) for n in (3, 4, 5)]
    results = await asyncio.gather(
        *(store.cases.open(c, first_events(c), receipt_for(c), reference_prefix="R-2026")
          for c in [good[0], clash, *good[1:]]), return_exceptions=True)
    assert isinstance(results[1], Exception)
    assert [True, True, True] == [r[1] for r in (results[0], *results[2:])]  # type: ignore[index]
    assert 4 == await store.cases.count()
    assert await store.cases.by_submission(clash.submission_id) is None
    assert await store.receipts.get(f"{2:064x}") is None
    for case in good:
        assert first_events(case) == await store.audit.events(case.id)
        assert receipt_for(case) == await store.receipts.get(case.receipt_hash or "")
    assert taken == await store.cases.get(taken.id)


async def test_sqlite_runs_a_transaction_in_one_trip_to_its_thread(tmp_path: Any) -> None:
    """The SQLite adapter uses aiosqlite's internal queue (not public API) to run a whole
    transaction in one hop: fail here, loudly, if an aiosqlite release changes it."""
    from hotline.adapters._sqlite import connect, in_connection_thread

    db = await connect(tmp_path / "hop.db", synchronous="NORMAL")
    try:
        assert 3 == await in_connection_thread(
            db, lambda conn: conn.execute("SELECT 1 + 2").fetchone()[0])
    finally:
        await db.close()


async def test_lookups_of_unknown_things_return_none(store: Store) -> None:
    """get, by_submission, by_reference, receipts.get and accounts.get answer None."""
    await open_case(store, make_case(1))
    assert [None] * 5 == [
        await store.cases.get("c_nothing"),
        await store.cases.by_submission("nothing"),
        await store.cases.by_reference("R-2026-000099"),
        await store.receipts.get("f" * 64),
        await store.accounts.get("nobody"),
    ]


# --- audit ---------------------------------------------------------------------------


async def test_append_orders_events_and_moves_the_head(store: Store) -> None:
    """Appended events come back ordered by seq and the case's head points at the last."""
    case = await open_case(store, make_case(1))
    assert case.audit_head is not None
    third = event_after(case, case.audit_head)
    fourth = event_after(case, AuditHead(third.seq, third.hash), minutes=2)
    await store.audit.append(third)
    await store.audit.append(fourth)
    events = await store.audit.events(case.id)
    stored = await store.cases.get(case.id)
    assert stored is not None
    assert [1, 2, 3, 4] == [event.seq for event in events]
    assert [*first_events(make_case(1)), third, fourth] == events
    assert AuditHead(4, fourth.hash) == stored.audit_head
    assert verify_chain(case.id, events, stored.audit_head) is None


async def test_append_of_a_taken_seq_conflicts(store: Store) -> None:
    """Two writers appending the same seq: the second gets ConcurrencyConflict."""
    case = await open_case(store, make_case(1))
    assert case.audit_head is not None
    await store.audit.append(event_after(case, case.audit_head, type_="case.viewed"))
    with pytest.raises(ConcurrencyConflict):
        await store.audit.append(event_after(case, case.audit_head, type_="case.noted"))
    events = await store.audit.events(case.id)
    assert ["case.opened", "case.triaged", "case.viewed"] == [event.type for event in events]


async def test_the_head_never_moves_backwards(store: Store) -> None:
    """An append that finishes after a later seq leaves the head on the later seq."""
    case = await open_case(store, make_case(1))
    assert case.audit_head is not None
    third = event_after(case, case.audit_head)
    fourth = event_after(case, AuditHead(third.seq, third.hash), minutes=2)
    await store.audit.append(fourth)
    await store.audit.append(third)
    stored = await store.cases.get(case.id)
    assert stored is not None
    assert AuditHead(4, fourth.hash) == stored.audit_head


async def test_append_to_an_unknown_case_is_not_found(store: Store) -> None:
    """An event for a case that does not exist raises NotFound and is not kept."""
    ghost = make_case(9)
    with pytest.raises(NotFound):
        await store.audit.append(first_events(ghost)[0])
    assert [] == await store.audit.events(ghost.id)


async def test_case_ids_lists_every_case(store: Store) -> None:
    """audit.case_ids yields each case id once, in order."""
    ids = sorted([(await open_case(store, make_case(n))).id for n in (2, 1, 3)])
    assert ids == [case_id async for case_id in store.audit.case_ids()]


async def test_heads_since_none_is_the_last_event_of_every_chain(store: Store) -> None:
    """Every case's and the system chain's last (seq, hash); all of them started."""
    a = await open_case(store, make_case(1))
    b = await open_case(store, make_case(2))
    assert a.audit_head is not None
    third = event_after(a, a.audit_head)
    await store.audit.append(third)
    system = next_event("_system", None, at=T0, actor="admin", type_="account.created")
    await store.audit.append(system)
    found = await store.audit.heads_since(None)
    assert {a.id: AuditHead(3, third.hash), b.id: b.audit_head,
            "_system": AuditHead(1, system.hash)} == dict(found.heads)
    assert {a.id, b.id, "_system"} == found.started


async def test_heads_since_a_mark_has_every_chain_appended_to_after_it(store: Store) -> None:
    """A chain moved or begun after the mark is returned with its new head; only a new
    chain counts as started; a garbled mark reads everything."""
    a = await open_case(store, make_case(1))
    b = await open_case(store, make_case(2))
    mark = (await store.audit.heads_since(None)).mark
    assert a.audit_head is not None
    third = event_after(a, a.audit_head)
    await store.audit.append(third)
    c = await open_case(store, make_case(3))
    found = await store.audit.heads_since(mark)
    assert (AuditHead(3, third.hash), c.audit_head) == (found.heads[a.id], found.heads[c.id])
    assert c.id in found.started
    assert found.started <= found.heads.keys()
    # A store may repeat chains from just before the mark, but never with a stale head.
    stored = {chain: await store.cases.get(chain) for chain in found.heads}
    assert {chain: case.audit_head for chain, case in stored.items() if case} == found.heads
    later = await store.audit.heads_since(found.mark)
    assert set(later.heads) <= {a.id, b.id, c.id}
    assert {a.id, b.id, c.id} == set((await store.audit.heads_since("garbled")).heads)


# --- queries -------------------------------------------------------------------------

PAST, FUTURE = T0 - timedelta(days=1), T0 + timedelta(days=30)
NOW = T0 + timedelta(days=2)
QUERY_CASES: dict[str, dict[str, Any]] = {
    "a": dict(kind="report", unit="GD", status="new", severity="major", due_at=PAST),
    "b": dict(kind="complaint", unit="GD", status="in_progress", severity="general"),
    "c": dict(kind="report", unit="BJ", status="closed", severity="high", due_at=PAST),
    "d": dict(kind="report", unit="BJ", status="new", severity="general", due_at=PAST),
    "e": dict(kind="complaint", unit="HQ", status="new", severity="low", due_at=FUTURE),
    "f": dict(kind="report", unit="GD-DESIGN", status="archived", severity="low", due_at=PAST),
}


async def open_query_cases(store: Store) -> dict[str, str]:
    """Open the cases of QUERY_CASES, a first and f last; their ids by label."""
    ids = {}
    for n, (label, fields) in enumerate(QUERY_CASES.items(), start=1):
        prefix = "R-2026" if fields["kind"] == "report" else "C-2026"
        ids[label] = (await open_case(store, make_case(n, **fields), prefix)).id
    return ids


@pytest.mark.parametrize(("query", "expected"), [
    (CaseQuery(units=None), "fedcba"),
    (CaseQuery(units=None, kind="complaint"), "eb"),
    (CaseQuery(units=None, status="new"), "eda"),
    (CaseQuery(units=None, severity="low"), "fe"),
    (CaseQuery(units=None, unit="GD"), "ba"),
    (CaseQuery(units=frozenset({"GD", "GD-DESIGN"})), "fba"),
    (CaseQuery(units=frozenset({"BJ"}), status="new"), "d"),
    (CaseQuery(units=frozenset()), ""),
    (CaseQuery(units=None, overdue_at=NOW), "da"),
    (CaseQuery(units=frozenset({"GD"}), overdue_at=NOW), "a"),
    (CaseQuery(units=None, overdue_at=T0 + timedelta(days=60)), "eda"),
    (CaseQuery(units=None, limit=2), "fe"),
], ids=["all", "kind", "status", "severity", "unit", "scope", "scope+status", "empty-scope",
        "overdue", "overdue-in-scope", "overdue-later", "limit"])
async def test_query_filters(store: Store, query: CaseQuery, expected: str) -> None:
    """Each filter, the unit scope and the overdue clock select the right cases, newest first."""
    ids = await open_query_cases(store)
    found = await store.cases.query(query)
    assert [ids[label] for label in expected] == [case.id for case in found]


async def test_query_archived_and_past_retention(store: Store) -> None:
    """archived=True/False splits closed cases on the archive flag; retention_before finds the
    archived cases whose retention ended, tombstones excluded."""
    ids = await open_query_cases(store)
    ended, running = T0 - timedelta(days=1), T0 + timedelta(days=1826)
    for label, until in (("c", ended), ("b", running)):
        case = await store.cases.get(ids[label])
        assert case is not None
        await store.cases.update(replace(case, status="closed", archived_at=T0,
                                         retention_until=until), expected_version=case.version)

    async def labels(query: CaseQuery) -> str:
        by_id = {case_id: label for label, case_id in ids.items()}
        return "".join(by_id[case.id] for case in await store.cases.query(query))

    assert "cb" == await labels(CaseQuery(units=None, status="closed", archived=True))
    assert "fedcba" == await labels(CaseQuery(units=None))
    assert "feda" == await labels(CaseQuery(units=None, archived=False))
    assert "c" == await labels(CaseQuery(units=None, retention_before=T0))
    assert "cb" == await labels(CaseQuery(units=None, retention_before=running
                                          + timedelta(seconds=1)))
    tombstone = await store.cases.get(ids["c"])
    assert tombstone is not None
    await store.cases.purge(replace(tombstone, status="purged"),
                            expected_version=tombstone.version)
    assert "" == await labels(CaseQuery(units=None, retention_before=T0))
    with pytest.raises(ContractError):
        await store.cases.query(CaseQuery(units=None, archived="yes"))  # type: ignore[arg-type]


async def test_query_pages_each_case_exactly_once_newest_first(store: Store) -> None:
    """Keyset pages of 10 over 25 cases (some opened at the same instant) miss and repeat none."""
    cases = [make_case(n, opened_at=T0 + timedelta(minutes=n // 3)) for n in range(1, 26)]
    for case in cases:
        await open_case(store, case)
    expected = [case.id for case in sorted(cases, key=lambda c: (c.opened_at, c.id),
                                           reverse=True)]
    pages: list[list[str]] = []
    after: tuple[datetime, str] | None = None
    for _ in range(5):  # bounded: a cursor that repeats its last case must fail, not hang
        page = await store.cases.query(CaseQuery(units=None, after=after, limit=10))
        if not page:
            break
        pages.append([case.id for case in page])
        after = (page[-1].opened_at, page[-1].id)
    assert [10, 10, 5] == [len(page) for page in pages]
    assert expected == [case_id for page in pages for case_id in page]


@pytest.mark.parametrize("field", ["kind", "status", "severity", "unit", "channel",
                                   "assignee"])
async def test_query_with_an_operator_string_matches_nothing(store: Store, field: str) -> None:
    """A filter value that looks like a MongoDB operator is only a string that matches no case."""
    await open_query_cases(store)
    looks_like_operator: Any = '{"$gt": ""}'
    query = replace(CaseQuery(units=None), **{field: looks_like_operator})
    assert [] == await store.cases.query(query)


@pytest.mark.parametrize("field", ["kind", "status", "severity", "unit", "channel",
                                   "assignee"])
async def test_query_with_an_operator_object_is_refused(store: Store, field: str) -> None:
    """A filter value that is an object (operator injection) raises ContractError."""
    await open_query_cases(store)
    injected: Any = {"$gt": ""}
    query = replace(CaseQuery(units=None), **{field: injected})
    with pytest.raises(ContractError):
        await store.cases.query(query)


async def test_query_scope_with_a_non_string_unit_is_refused(store: Store) -> None:
    """A unit scope holding anything but strings raises ContractError."""
    await open_query_cases(store)
    with pytest.raises(ContractError):
        await store.cases.query(CaseQuery(units=frozenset({1})))  # type: ignore[arg-type]


@pytest.mark.parametrize("lookup", ["get", "by_submission", "by_reference", "receipt",
                                    "account", "messages", "events"])
async def test_lookups_with_an_operator_object_are_refused(store: Store, lookup: str) -> None:
    """Single-key lookups given an object instead of a string raise ContractError."""
    await open_case(store, make_case(1))
    injected: Any = {"$gt": ""}
    calls = {
        "get": store.cases.get, "by_submission": store.cases.by_submission,
        "by_reference": store.cases.by_reference, "receipt": store.receipts.get,
        "account": store.accounts.get, "messages": store.cases.messages,
        "events": store.audit.events,
    }
    with pytest.raises(ContractError):
        await calls[lookup](injected)


# --- messages and status ---------------------------------------------------------------


def make_message(n: int, case: Case, *, minutes: int) -> CaseMessage:
    return CaseMessage(id=f"msg-{n}", case_id=case.id, at=T0 + timedelta(minutes=minutes),
                       author="officer", actor="officer-1",
                       sealed_for_org=Sealed(KID, b"\x02" * 32, b"org-" + bytes([n])),
                       sealed_for_reporter=Sealed(KID, b"\x03" * 32, b"rep-" + bytes([n])))


async def test_add_message_is_idempotent_and_messages_are_ordered_by_time(store: Store) -> None:
    """A redelivered message id is refused once; messages() lists one case's by time."""
    case = await open_case(store, make_case(1))
    other = await open_case(store, make_case(2))
    late, early = make_message(1, case, minutes=9), make_message(2, case, minutes=3)
    anonymous = replace(make_message(3, case, minutes=5), author="reporter", actor="reporter",
                        sealed_for_reporter=None)
    added = [await store.cases.add_message(m) for m in (late, early, anonymous, late)]
    await store.cases.add_message(make_message(4, other, minutes=1))
    assert [True, True, True, False] == added
    assert [early, anonymous, late] == await store.cases.messages(case.id)


async def test_set_status_with_the_current_version(store: Store) -> None:
    """The right version changes the status and moves the version on by one."""
    case = await open_case(store, make_case(1))
    updated = await store.cases.set_status(case.id, "in_progress", expected_version=1)
    assert replace(case, status="in_progress", version=2) == updated
    assert updated == await store.cases.get(case.id)


async def test_set_status_with_a_stale_version_conflicts(store: Store) -> None:
    """A stale version raises ConcurrencyConflict and leaves the case as it was."""
    case = await open_case(store, make_case(1))
    await store.cases.set_status(case.id, "in_progress", expected_version=1)
    with pytest.raises(ConcurrencyConflict):
        await store.cases.set_status(case.id, "closed", expected_version=1)
    stored = await store.cases.get(case.id)
    assert stored is not None
    assert ("in_progress", 2) == (stored.status, stored.version)


async def test_set_status_of_an_unknown_case_is_not_found(store: Store) -> None:
    """set_status on a case id that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        await store.cases.set_status("c_nothing", "closed", expected_version=1)


async def test_update_stores_mutable_fields_only(store: Store) -> None:
    """update changes triage, workflow, unit, clocks and exclusions but never identity,
    content or the audit head, and moves the version on."""
    case = await open_case(store, make_case(1))
    due = T0 + timedelta(days=5)
    changed = replace(case, severity="major", status="acknowledged", unit="HQ", due_at=due,
                      triage={"rules": ["leader"]}, workflow={"state": "acknowledged"},
                      fingerprint="f" * 64, excluded=("E1001", "E1002"),
                      reference="R-1999-999999", content=Sealed("other", b"x" * 32, b"y"),
                      audit_head=AuditHead(99, "0" * 64))
    updated = await store.cases.update(changed, expected_version=1)
    expected = replace(case, severity="major", status="acknowledged", unit="HQ", due_at=due,
                       triage={"rules": ["leader"]}, workflow={"state": "acknowledged"},
                       fingerprint="f" * 64, excluded=("E1001", "E1002"), version=2)
    assert expected == updated
    assert expected == await store.cases.get(case.id)


async def test_stub_units_find_cases_forwarded_away(store: Store) -> None:
    """A case escalated away from a unit is found by that unit as a stub, and only so."""
    first = await open_case(store, make_case(1, unit="HQ"))
    await open_case(store, make_case(2, unit="GD"))
    await store.cases.update(replace(first, stub_unit="GD"), expected_version=1)
    stubs = await store.cases.query(CaseQuery(units=None, stub_units=frozenset({"GD"})))
    assert [(first.id, "HQ", "GD")] == [(c.id, c.unit, c.stub_unit) for c in stubs]


async def test_update_with_a_stale_version_conflicts(store: Store) -> None:
    """Two writers from the same version: the second gets ConcurrencyConflict."""
    case = await open_case(store, make_case(1))
    await store.cases.update(replace(case, severity="high"), expected_version=1)
    with pytest.raises(ConcurrencyConflict):
        await store.cases.update(replace(case, severity="low"), expected_version=1)
    with pytest.raises(NotFound):
        await store.cases.update(replace(case, id="c_missing"), expected_version=1)


async def test_query_by_fingerprint_and_viewer_exclusion(store: Store) -> None:
    """Cases are found by fingerprint; a viewer named in a case's exclusions never sees it."""
    first = await open_case(store, make_case(1))
    second = await open_case(store, make_case(2))
    await store.cases.update(replace(first, fingerprint="a" * 64, excluded=("E7",)),
                             expected_version=1)
    await store.cases.update(replace(second, fingerprint="b" * 64), expected_version=1)
    assert [first.id] == [c.id for c in await store.cases.query(
        CaseQuery(units=None, fingerprint="a" * 64))]
    assert [second.id] == [c.id for c in await store.cases.query(CaseQuery(units=None,
                                                                           viewer=("E7",)))]
    assert {first.id, second.id} == {c.id for c in await store.cases.query(
        CaseQuery(units=None, viewer=("E8", "user:someone")))}
    assert [] == await store.cases.query(CaseQuery(units=None, viewer=("E8",),
                                                   stub_units=frozenset({"GD"})))
    with pytest.raises(ContractError):
        await store.cases.query(CaseQuery(units=None, viewer=({"$ne": ""},)))  # type: ignore[arg-type]


async def test_query_by_channel_and_assignee(store: Store) -> None:
    """The queue's channel and assigned-to filters, alone, together and with the scope."""
    web = await open_case(store, make_case(1))
    post = await open_case(store, replace(make_case(2), channel="post"))
    phone = await open_case(store, replace(make_case(3, unit="BJ"), channel="phone"))
    for case, assignee in ((web, "li"), (post, "li"), (phone, "wang")):
        await store.cases.update(replace(case, workflow={**case.workflow, "assignee": assignee}),
                                 expected_version=1)

    async def found(**filters: Any) -> list[str]:
        return [c.id for c in await store.cases.query(CaseQuery(**{"units": None, **filters}))]

    assert [post.id] == await found(channel="post")
    assert [post.id, web.id] == await found(assignee="li")
    assert [post.id] == await found(assignee="li", channel="post")
    assert [] == await found(assignee="li", units=frozenset({"BJ"}))
    assert [] == await found(assignee="nobody")
    assert [phone.id] == await found(assignee="wang", after=(T0 + timedelta(minutes=4), "c_"))
    # Unassigning (as a recusal does) takes the case out of the assignee's list.
    current = await store.cases.get(web.id)
    assert current is not None
    await store.cases.update(replace(current, workflow={"name": "report/general"}),
                             expected_version=current.version)
    assert [post.id] == await found(assignee="li")


# --- large contents (issue 7) -----------------------------------------------------------

LARGE = 1 << 20  # far above the size up to which an adapter may keep a ciphertext inline


def large_case(n: int) -> Case:
    """Case number ``n`` with a 1 MiB sealed content."""
    ciphertext = (f"large-ciphertext-{n}-".encode() * (LARGE // 16))[:LARGE]
    return replace(make_case(n), content=Sealed(KID, bytes([n]) * 32, ciphertext))


async def test_a_large_content_reads_back_whole(store: Store) -> None:
    """A large sealed content reads back the same by id, submission and reference, after
    a redelivered open, an update and a status change."""
    case = large_case(1)
    stored = await open_case(store, case)
    assert case.content == stored.content
    again, created = await store.cases.open(case, first_events(case), receipt_for(case),
                                            reference_prefix="R-2026")
    assert (stored, False) == (again, created)
    assert [stored] * 3 == [await store.cases.get(case.id),
                            await store.cases.by_submission(case.submission_id),
                            await store.cases.by_reference(stored.reference)]
    updated = await store.cases.update(replace(stored, severity="major"), expected_version=1)
    closed = await store.cases.set_status(case.id, "closed", expected_version=2)
    assert (case.content, case.content) == (updated.content, closed.content)
    assert closed == await store.cases.get(case.id)


async def test_a_list_of_cases_carries_no_ciphertext(store: Store) -> None:
    """Cases of a query have their content's key id and enc but no ciphertext (opening it
    raises ContentNotLoaded), large or small; read by id they have it."""
    large = await open_case(store, large_case(1))
    small = await open_case(store, make_case(2))
    listed = await store.cases.query(CaseQuery(units=None))
    assert [small.id, large.id] == [c.id for c in listed]
    for case, whole in zip(listed, (small, large), strict=True):
        assert case.content.is_withheld
        assert (whole.content.kid, whole.content.enc) == (case.content.kid, case.content.enc)
        assert replace(whole, content=case.content) == case
        with pytest.raises(ContentNotLoaded):
            case.content.ciphertext  # noqa: B018 — reading it is the test
    assert large == await store.cases.get(large.id)


# --- accounts, keys, proof of work, sequences --------------------------------------------


def make_account(username: str, **changes: Any) -> Account:
    account = Account(username=username, password_hash="$argon2id$v=19$dummy", role="officer",
                      unit="GD", created_at=T0)
    return replace(account, **changes)


async def test_accounts_add_get_and_list(store: Store) -> None:
    """Accounts read back whole, one by username and all ordered by username."""
    bob = make_account("bob", role="supervisor", must_change_password=True)
    alice = make_account("alice", unit="HQ", disabled=True)
    await store.accounts.add(bob)
    await store.accounts.add(alice)
    assert bob == await store.accounts.get("bob")
    assert [alice, bob] == await store.accounts.list()


async def test_duplicate_username_conflicts(store: Store) -> None:
    """Adding a username that exists raises ConcurrencyConflict and keeps the first account."""
    await store.accounts.add(make_account("alice"))
    with pytest.raises(ConcurrencyConflict):
        await store.accounts.add(make_account("alice", role="admin"))
    assert [make_account("alice")] == await store.accounts.list()


async def test_keys_add_makes_only_the_newest_active(store: Store) -> None:
    """Each added key becomes the only active one; list returns every key, oldest first."""
    records = [KeyRecord(f"kid-{n}", bytes([n]) * 32, bytes([n + 10]) * 60,
                         T0 + timedelta(days=n), active=True) for n in range(3)]
    for record in records:
        await store.keys.add(record)
    expected = [replace(records[0], active=False), replace(records[1], active=False), records[2]]
    assert expected == await store.keys.list()


async def test_pow_challenge_burns_once(store: Store) -> None:
    """The first burn of a challenge succeeds, a replay does not, another challenge does."""
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    assert [True, False, True] == [
        await store.pow.burn("challenge-1", expires),
        await store.pow.burn("challenge-1", expires),
        await store.pow.burn("challenge-2", expires),
    ]


async def test_sequences_under_concurrency(store: Store) -> None:
    """50 concurrent next() calls yield 1..50 exactly; another name starts at 1."""
    numbers = await asyncio.gather(*(store.sequences.next("export") for _ in range(50)))
    assert list(range(1, 51)) == sorted(numbers)
    assert 1 == await store.sequences.next("other")


async def test_ping(store: Store) -> None:
    """An open store answers ping True, a closed one False."""
    assert await store.ping()
    await store.close()
    assert not await store.ping()


# --- casework records, account updates, system chains (issue 5) ------------------------


async def test_account_update_replaces_the_stored_account(store: Store) -> None:
    """update stores role, unit, password and disabled; an unknown account is NotFound."""
    await store.accounts.add(make_account("alice"))
    changed = make_account("alice", role="supervisor", unit="HQ", disabled=True,
                           password_hash="$argon2id$v=19$other", must_change_password=True)
    await store.accounts.update(changed)
    assert changed == await store.accounts.get("alice")
    with pytest.raises(NotFound):
        await store.accounts.update(make_account("nobody"))


async def test_records_create_replace_and_conflict(store: Store) -> None:
    """put creates at version 1, replaces only the expected version, lists by key per kind."""
    first = await store.records.put("totp", "bob", {"enabled": False}, expected_version=0)
    assert (1, {"enabled": False}) == (first.version, dict(first.doc))
    with pytest.raises(ConcurrencyConflict):
        await store.records.put("totp", "bob", {"enabled": True}, expected_version=0)
    second = await store.records.put("totp", "bob", {"enabled": True, "codes": ["a"]},
                                     expected_version=1)
    with pytest.raises(ConcurrencyConflict):
        await store.records.put("totp", "bob", {"enabled": False}, expected_version=1)
    await store.records.put("totp", "alice", {"enabled": False}, expected_version=0)
    await store.records.put("other", "carol", {"n": 1}, expected_version=0)
    assert second == await store.records.get("totp", "bob")
    assert ["alice", "bob"] == [r.key for r in await store.records.list("totp")]
    assert await store.records.get("totp", "carol") is None


async def test_records_list_pages_by_key(store: Store) -> None:
    """``start`` is the first key listed (inclusive), ``limit`` the page size; per kind."""
    for key in ("000000000003", "000000000001", "000000000010", "000000000002"):
        await store.records.put("page", key, {"k": key}, expected_version=0)
    await store.records.put("other", "000000000005", {}, expected_version=0)

    async def keys(**page: Any) -> list[str]:
        return [r.key for r in await store.records.list("page", **page)]

    assert ["000000000001", "000000000002", "000000000003", "000000000010"] == await keys()
    assert ["000000000002", "000000000003"] == await keys(start="000000000002", limit=2)
    assert ["000000000010"] == await keys(start="000000000004")
    assert ["000000000001"] == await keys(limit=1)
    assert [] == await keys(start="000000000011", limit=5)
    assert {"k": "000000000003"} == dict(
        (await store.records.list("page", start="000000000003", limit=1))[0].doc)


@pytest.mark.parametrize("page", [{"limit": 0}, {"limit": -1}, {"limit": True},
                                  {"limit": "5"}, {"start": {"$gt": ""}}])
async def test_records_list_refuses_bad_pages(store: Store, page: dict[str, Any]) -> None:
    """0 or -1 would mean "everything" to a store; an operator object is not a key."""
    with pytest.raises(ContractError):
        await store.records.list("page", **page)


async def test_records_refuse_operator_objects(store: Store) -> None:
    """A record key that is not a string is refused, not used as an operator."""
    with pytest.raises(ContractError):
        await store.records.get("totp", {"$gt": ""})  # type: ignore[arg-type]


async def test_system_chain_appends_without_a_case(store: Store) -> None:
    """A chain named '_system' takes events with no case; a taken seq still conflicts."""
    first = next_event("_system", None, at=T0, actor="admin", type_="account.created")
    second = next_event("_system", AuditHead(1, first.hash), at=T0, actor="admin",
                        type_="account.disabled")
    await store.audit.append(first)
    await store.audit.append(second)
    with pytest.raises(ConcurrencyConflict):
        await store.audit.append(first)
    events = await store.audit.events("_system")
    assert [first, second] == events
    assert verify_chain("_system", events, AuditHead(2, second.hash)) is None
    assert "_system" in [cid async for cid in store.audit.case_ids()]
