"""A case list page costs the same with ten cases or a million (SQLite query plans).

An officer's queue is read newest first, a page at a time. For a wide scope (HQ sees
every unit) the query must walk the opened_at index and stop at the page, not read and
sort every case in scope on each page view.
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hotline.adapters.sqlite_store import SqliteStore
from hotline.domain.case import CaseQuery
from hotline.org import load_org

pytestmark = pytest.mark.integration


async def _plan(tmp_path: Path, query: CaseQuery) -> list[str]:
    """SQLite's plan for the statement ``cases.query(query)`` runs."""
    store = SqliteStore(tmp_path / "store.sqlite3")
    await store.open()
    statements: list[tuple[str, list[Any]]] = []
    fetch = store.fetch

    async def recording(sql: str, params: Any = ()) -> Any:
        statements.append((sql, list(params)))
        return await fetch(sql, params)

    store.fetch = recording  # type: ignore[method-assign]
    try:
        await store.cases.query(query)
    finally:
        await store.close()
    sql, params = statements[-1]
    with sqlite3.connect(tmp_path / "store.sqlite3") as db:
        return [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


async def test_a_wide_scope_walks_the_opened_at_index(tmp_path: Path) -> None:
    """HQ's page: no sort of the whole scope (no temporary B-tree), newest-first index."""
    org = load_org()
    plan = await _plan(tmp_path, CaseQuery(units=org.subtree(org.root.code), limit=21,
                                           viewer=("admin",)))
    assert ([], True) == ([step for step in plan if "TEMP B-TREE" in step],
                          any("cases_by_opened" in step for step in plan))


async def test_a_narrow_scope_uses_the_unit_index(tmp_path: Path) -> None:
    """A single unit's page reads that unit's cases through cases_by_unit."""
    plan = await _plan(tmp_path, CaseQuery(units=frozenset({"GD"}), limit=21))
    assert any("cases_by_unit" in step for step in plan)
