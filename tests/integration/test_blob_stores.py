"""Sealed attachments at rest: the same contract for the file store and MongoDB's."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

import hotline.adapters.mongo_blobs as mongo_blobs
from hotline.adapters.mongo_blobs import MongoBlobStore
from hotline.blobs import BlobStore, FileBlobStore, blob_id
from hotline.crypto import Sealed
from hotline.errors import ContractError
from tests.support.mongo import _open_store

pytestmark = pytest.mark.integration


@pytest.fixture(params=["file", "mongo"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "file":
        yield FileBlobStore(tmp_path / "blobs")
        return
    async with _open_store("mongomock", tmp_path) as mongo:
        yield MongoBlobStore(cast(Any, mongo).collection)


def sealed(size: int) -> Sealed:
    return Sealed("kid-0001", secrets.token_bytes(32), secrets.token_bytes(size))


async def test_put_get_round_trip_and_content_address(blobs: BlobStore) -> None:
    """A stored blob reads back whole under its content address; storing twice is one blob."""
    blob = sealed(1000)
    first = await blobs.put(blob)
    assert blob_id(blob) == first == await blobs.put(blob)
    assert blob == await blobs.get(first)


async def test_missing_and_malformed_ids(blobs: BlobStore) -> None:
    """An unknown id reads as None; anything but 64 hex digits is refused."""
    assert await blobs.get("0" * 64) is None
    for bad in ("../etc/passwd", "A" * 64, {"$gt": ""}):
        with pytest.raises(ContractError):
            await blobs.get(bad)  # type: ignore[arg-type]


async def test_large_blob_spans_chunks(blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob larger than one chunk is stored in several and reassembled in order."""
    monkeypatch.setattr(mongo_blobs, "CHUNK", 1024)
    blob = sealed(10_000)
    assert blob == await blobs.get(await blobs.put(blob))
