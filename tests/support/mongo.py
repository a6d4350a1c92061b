"""pytest plugin: the ``store`` fixture, one parameter per Store adapter.

* ``sqlite`` — :class:`SqliteStore` on a file in ``tmp_path``;
* ``mongomock`` — :class:`MongoStore` over the in-memory shim, a fresh database per test;
* ``mongodb`` — :class:`MongoStore` on a real server named by ``HOTLINE_TEST_MONGO_URL``,
  in a database of its own that is dropped afterwards (skipped when the variable is unset).

``mongo_store`` is the same without SQLite, for tests of MongoDB-only behaviour.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pytest

from hotline.ports import Store

MONGO_URL_VARIABLE = "HOTLINE_TEST_MONGO_URL"


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@asynccontextmanager
async def _open_store(kind: str, tmp_path: Path) -> AsyncIterator[Any]:
    database = f"hotline_test_{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        from hotline.adapters.sqlite_store import SqliteStore

        store: Any = SqliteStore(tmp_path / "store.sqlite3")
    elif kind == "mongomock":
        from hotline.adapters.mongo_store import MongoStore
        from tests.support.mongomock_async import AsyncMockClient

        store = MongoStore(cast(Any, AsyncMockClient()), database)
    elif kind == "mongodb":
        from hotline.adapters.mongo_store import MongoStore

        url = os.environ.get(MONGO_URL_VARIABLE)
        if not url:
            pytest.skip(f"no MongoDB server: set {MONGO_URL_VARIABLE}=mongodb://host:port "
                        "to run the store contract against a real one")
        store = MongoStore.from_url(_with_database(url, database))
    else:
        raise ValueError(f"unknown store kind {kind!r}")
    try:
        await store.open()
        yield store
    finally:
        await store.close()  # a test may have closed it already; closing twice is fine
        if kind == "mongodb":
            from pymongo import AsyncMongoClient

            admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
            async with admin:
                await admin.drop_database(database)


@pytest.fixture(params=["sqlite", "mongomock", "mongodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, empty store of each kind; closed after the test."""
    async with _open_store(request.param, tmp_path) as opened:
        yield cast(Store, opened)


@pytest.fixture(params=["mongomock", "mongodb"])
async def mongo_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An open, empty MongoStore (shim or real server); closed after the test."""
    async with _open_store(request.param, tmp_path) as opened:
        yield opened
