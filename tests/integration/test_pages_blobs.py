"""The sealed blob store and the no-JavaScript metadata removal behind attachments."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from PIL import Image, PngImagePlugin

from hotline.blobs import FileBlobStore, blob_id, decode_blob, encode_blob, strip_metadata
from hotline.crypto import open_sealed, seal
from tests.support.browser import exif_of, gps_jpeg

pytestmark = pytest.mark.integration


async def test_file_blob_store_is_content_addressed_and_round_trips(tmp_path: Path) -> None:
    """A sealed file is stored under the SHA-256 of enc||ct and opens again."""
    private = X25519PrivateKey.generate()
    sealed = seal(b"%PDF-1.7 minutes", private.public_key(), kid="k1", purpose="attachment")
    store = FileBlobStore(tmp_path / "blobs")
    blob = await store.put(sealed)
    assert blob_id(sealed) == blob
    assert blob == await store.put(sealed)  # idempotent
    stored = (tmp_path / "blobs" / blob[:2] / blob).read_bytes()
    assert b"minutes" not in stored
    assert sealed == decode_blob(stored) == decode_blob(encode_blob(sealed))
    again = await store.get(blob)
    assert again is not None
    assert b"%PDF-1.7 minutes" == open_sealed(again, private, purpose="attachment")
    assert await store.get("0" * 64) is None


def test_jpeg_loses_exif_and_gps_but_stays_a_picture() -> None:
    """JPEG metadata segments go; the image still decodes to the same size."""
    original = gps_jpeg()
    cleaned, removed = strip_metadata(original, "image/jpeg")
    assert removed is True
    assert ({}, {}) == exif_of(cleaned)
    with Image.open(io.BytesIO(cleaned)) as image:
        assert (96, 64) == image.size


def test_png_text_chunks_are_removed() -> None:
    """PNG tEXt/iTXt/zTXt/eXIf chunks (where editors put authors and places) are dropped."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Zhang San")
    info.add_itxt("Location", "Plant 3, Guangzhou")
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    cleaned, removed = strip_metadata(out.getvalue(), "image/png")
    assert removed is True
    assert b"Zhang San" not in cleaned
    assert b"Guangzhou" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as image:
        assert {} == {k: v for k, v in image.info.items() if isinstance(v, str)}


@pytest.mark.parametrize("data", [b"%PDF-1.7\n", b"\xff\xd8\xff\xe1\x00", zlib.compress(b"x")])
def test_other_or_broken_files_are_left_as_they_are(data: bytes) -> None:
    """What is not a well-formed JPEG or PNG is not touched, and is reported as not cleaned."""
    assert (data, False) == strip_metadata(data, "image/jpeg")
