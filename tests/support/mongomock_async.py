"""TEST ONLY: the slice of ``pymongo.AsyncMongoClient`` that MongoStore uses, over mongomock.

mongomock is synchronous and in-memory. Each operation here first yields to the event
loop once, so coroutines run under ``asyncio.gather`` interleave between operations the
way they would against a server (a check-then-insert can lose a race), while each single
operation stays atomic as it is in MongoDB. Errors are pymongo's own types (mongomock
raises ``pymongo.errors.DuplicateKeyError`` already); a closed client raises
``InvalidOperation`` like PyMongo's.

Not emulated: TTL expiry (the index is accepted and ignored), sub-millisecond rounding
differences, server-side upsert retries, transactions and sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import mongomock
from pymongo.errors import InvalidOperation

__all__ = ["AsyncMockClient"]

Document = dict[str, Any]


class AsyncMockCursor:
    """``find()``: not a coroutine; ``sort``/``limit`` chain, ``to_list`` is awaited."""

    def __init__(self, client: AsyncMockClient, cursor: Any) -> None:
        self._client = client
        self._cursor = cursor

    def sort(self, key_or_list: Any, direction: int | None = None) -> AsyncMockCursor:
        self._cursor = self._cursor.sort(key_or_list, direction)
        return self

    def limit(self, limit: int) -> AsyncMockCursor:
        self._cursor = self._cursor.limit(limit)
        return self

    async def to_list(self, length: int | None = None) -> list[Document]:
        await self._client.checkpoint()
        docs = list(self._cursor)
        return docs if length is None else docs[:length]

    async def __aiter__(self) -> AsyncIterator[Document]:
        for doc in await self.to_list(None):
            yield doc


class AsyncMockCollection:
    def __init__(self, client: AsyncMockClient, collection: Any) -> None:
        self._client = client
        self._collection = collection

    @property
    def name(self) -> str:
        return str(self._collection.name)

    def find(self, filter: Mapping[str, Any] | None = None, projection: Any = None,
             **kwargs: Any) -> AsyncMockCursor:
        return AsyncMockCursor(self._client, self._collection.find(filter, projection, **kwargs))

    async def find_one(self, filter: Mapping[str, Any] | None = None, projection: Any = None,
                       **kwargs: Any) -> Document | None:
        await self._client.checkpoint()
        result: Document | None = self._collection.find_one(filter, projection, **kwargs)
        return result

    async def insert_one(self, document: Document, **kwargs: Any) -> Any:
        await self._client.checkpoint()
        return self._collection.insert_one(document, **kwargs)

    async def update_one(self, filter: Mapping[str, Any], update: Mapping[str, Any],
                         upsert: bool = False, **kwargs: Any) -> Any:
        await self._client.checkpoint()
        return self._collection.update_one(filter, update, upsert=upsert, **kwargs)

    async def update_many(self, filter: Mapping[str, Any], update: Mapping[str, Any],
                          upsert: bool = False, **kwargs: Any) -> Any:
        await self._client.checkpoint()
        return self._collection.update_many(filter, update, upsert=upsert, **kwargs)

    async def find_one_and_update(self, filter: Mapping[str, Any], update: Mapping[str, Any],
                                  projection: Any = None, **kwargs: Any) -> Document | None:
        await self._client.checkpoint()
        result: Document | None = self._collection.find_one_and_update(
            filter, update, projection, **kwargs)
        return result

    async def delete_many(self, filter: Mapping[str, Any], **kwargs: Any) -> Any:
        await self._client.checkpoint()
        return self._collection.delete_many(filter, **kwargs)

    async def count_documents(self, filter: Mapping[str, Any], **kwargs: Any) -> int:
        await self._client.checkpoint()
        return int(self._collection.count_documents(filter, **kwargs))

    async def distinct(self, key: str, filter: Mapping[str, Any] | None = None,
                       **kwargs: Any) -> list[Any]:
        await self._client.checkpoint()
        return list(self._collection.distinct(key, filter, **kwargs))

    async def create_index(self, keys: Any, **kwargs: Any) -> str:
        await self._client.checkpoint()
        return str(self._collection.create_index(keys, **kwargs))


class AsyncMockDatabase:
    def __init__(self, client: AsyncMockClient, database: Any) -> None:
        self._client = client
        self._database = database

    @property
    def name(self) -> str:
        return str(self._database.name)

    def __getitem__(self, name: str) -> AsyncMockCollection:
        return AsyncMockCollection(self._client, self._database[name])

    def get_collection(self, name: str) -> AsyncMockCollection:
        return self[name]

    async def command(self, command: str | Mapping[str, Any], **kwargs: Any) -> Document:
        await self._client.checkpoint()
        result: Document = self._database.command(command, **kwargs)
        return result


class AsyncMockClient:
    """``AsyncMongoClient(tz_aware=...)`` as far as MongoStore and its tests use it."""

    def __init__(self, *, tz_aware: bool = True) -> None:
        self._client: Any = mongomock.MongoClient(tz_aware=tz_aware)
        self._closed = False

    async def checkpoint(self) -> None:
        if self._closed:
            raise InvalidOperation("Cannot use AsyncMongoClient after close")
        await asyncio.sleep(0)

    def __getitem__(self, name: str) -> AsyncMockDatabase:
        return AsyncMockDatabase(self, self._client[name])

    def get_database(self, name: str) -> AsyncMockDatabase:
        return self[name]

    @property
    def admin(self) -> AsyncMockDatabase:
        return self["admin"]

    async def drop_database(self, name: str) -> None:
        await self.checkpoint()
        self._client.drop_database(name)

    async def close(self) -> None:
        self._closed = True
        self._client.close()
