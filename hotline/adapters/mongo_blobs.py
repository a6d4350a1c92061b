"""Sealed attachments in MongoDB: GridFS's layout (a file document plus chunks), kept thin.

Chunks are written first and the file document last, so a blob is visible only once it
is whole; a crash in between leaves orphan chunks that a later ``put`` of the same blob
overwrites (ids are content addresses). Written against ``pymongo.AsyncMongoClient``'s
collections, like :mod:`hotline.adapters.mongo_store`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from hotline.blobs import blob_id, decode_blob, encode_blob, valid_blob_id
from hotline.clock import utcnow
from hotline.crypto import Sealed
from hotline.errors import ContractError

__all__ = ["MongoBlobStore"]

CHUNK = 4 * 1024 * 1024  # well under MongoDB's 16 MiB document limit


class MongoBlobStore:
    """:class:`hotline.blobs.BlobStore` on two collections, ``blobs`` and ``blob_chunks``."""

    def __init__(self, collection: Callable[[str], Any]) -> None:
        self._files = collection("blobs")
        self._chunks = collection("blob_chunks")

    async def open(self) -> None:
        await self._chunks.create_index([("blob", ASCENDING), ("n", ASCENDING)], unique=True)

    async def put(self, sealed: Sealed) -> str:
        blob = blob_id(sealed)
        if await self._files.find_one({"_id": blob}, {"_id": 1}) is not None:
            return blob
        raw = encode_blob(sealed)
        size = CHUNK
        count = max(1, -(-len(raw) // size))
        for n in range(count):
            await self._chunks.update_one(
                {"_id": f"{blob}:{n}"},
                {"$set": {"blob": blob, "n": n, "data": raw[n * size:(n + 1) * size]}},
                upsert=True)
        # Another writer may have stored the same content first: same blob, fine.
        with contextlib.suppress(DuplicateKeyError):
            await self._files.insert_one({"_id": blob, "length": len(raw), "chunks": count,
                                          "uploaded_at": utcnow()})
        return blob

    async def get(self, blob: str) -> Sealed | None:
        if not isinstance(blob, str) or not valid_blob_id(blob):
            raise ContractError("blob id must be 64 hex digits", field="blob")
        head = await self._files.find_one({"_id": blob})
        if head is None:
            return None
        cursor = self._chunks.find({"blob": blob}).sort("n", ASCENDING)
        chunks = await cursor.to_list(None)
        raw = b"".join(bytes(c["data"]) for c in chunks[:head["chunks"]])
        if len(raw) != head["length"]:
            raise ContractError("stored blob is incomplete", field="blob")
        return decode_blob(raw)

    async def delete(self, blob: str) -> bool:
        """The file document first (the blob is gone for readers), then its chunks."""
        if not isinstance(blob, str) or not valid_blob_id(blob):
            raise ContractError("blob id must be 64 hex digits", field="blob")
        result = await self._files.delete_many({"_id": blob})
        await self._chunks.delete_many({"blob": blob})
        return bool(result.deleted_count)
