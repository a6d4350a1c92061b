"""Sealed attachments at rest: a content-addressed blob store (never the bus).

A blob is one HPKE ciphertext (purpose ``attachment``) of one file. Its id is the
hex SHA-256 of ``enc || ciphertext``, so a browser that sealed the file can name it in
the (sealed) report before uploading it, and anyone can check a blob against its id.
Embedded mode keeps blobs as files under ``DATA_DIR/blobs``; the MongoDB deployment keeps
them in the database in GridFS's layout (:mod:`hotline.adapters.mongo_blobs`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from hotline.crypto import Sealed
from hotline.errors import ContractError

__all__ = ["BlobStore", "FileBlobStore", "blob_id", "decode_blob", "encode_blob",
           "strip_metadata", "valid_blob_id"]

_MAGIC = b"HLB1"
_ID = re.compile(r"^[0-9a-f]{64}$")


def valid_blob_id(text: str) -> bool:
    return bool(_ID.match(text))


def blob_id(sealed: Sealed) -> str:
    """The content address of a sealed attachment: hex SHA-256 of ``enc || ciphertext``."""
    digest = hashlib.sha256(sealed.enc)
    digest.update(sealed.ciphertext)  # not enc + ciphertext: no copy of a large file
    return digest.hexdigest()


def _blob_head(sealed: Sealed) -> bytes:
    kid = sealed.kid.encode("ascii")
    return _MAGIC + bytes([len(kid)]) + kid + sealed.enc


def encode_blob(sealed: Sealed) -> bytes:
    """``HLB1 | len(kid) | kid | enc(32) | ciphertext`` — compact, no base64 inflation."""
    return _blob_head(sealed) + sealed.ciphertext


def decode_blob(raw: bytes) -> Sealed:
    if len(raw) < 5 or raw[:4] != _MAGIC:
        raise ContractError("not a sealed blob", field="blob")
    size = raw[4]
    kid = raw[5:5 + size].decode("ascii", errors="replace")
    rest = raw[5 + size:]
    if len(rest) < 32 + 16:
        raise ContractError("sealed blob is truncated", field="blob")
    return Sealed(kid, rest[:32], rest[32:])


class BlobStore(Protocol):
    async def put(self, sealed: Sealed) -> str:
        """Store a sealed attachment durably; return its id (idempotent)."""
        ...

    async def get(self, blob: str) -> Sealed | None: ...

    async def delete(self, blob: str) -> bool:
        """Remove a blob (the purge after retention); False if there was none."""
        ...


class FileBlobStore:
    """Blobs as files ``ROOT/ab/abcdef…`` written atomically (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, blob: str) -> Path:
        if not isinstance(blob, str) or not _ID.match(blob):
            raise ContractError("blob id must be 64 hex digits", field="blob")
        return self.root / blob[:2] / blob

    async def put(self, sealed: Sealed) -> str:
        blob = blob_id(sealed)
        path = self._path(blob)
        if path.exists():
            return blob
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{blob}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                # encode_blob(sealed) in two writes, without a copy of the ciphertext
                fh.write(_blob_head(sealed))
                fh.write(sealed.ciphertext)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return blob

    async def get(self, blob: str) -> Sealed | None:
        path = self._path(blob)
        if not path.exists():
            return None
        return decode_blob(path.read_bytes())

    async def delete(self, blob: str) -> bool:
        path = self._path(blob)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


# --- metadata removal for the no-JavaScript path ------------------------------------------
# Browsers with JavaScript re-encode images before sealing. Without JavaScript, intake
# removes the metadata blocks of JPEG and PNG files (no re-encoding: no decoder attack
# surface, no quality loss). Other file types are stored as they are, and the page says so.

_JPEG_DROP = {0xE1, *range(0xE3, 0xEE), 0xEF, 0xFE}  # APP1 (EXIF/XMP), APP3–13, APP15, COM
_PNG_DROP = {b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"tIME"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _strip_jpeg(data: bytes) -> bytes | None:
    if data[:2] != b"\xff\xd8":
        return None
    out = bytearray(data[:2])
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is image data
            out += data[pos:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[pos:pos + 2]
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            return None
        if marker not in _JPEG_DROP:
            out += data[pos:pos + 2 + length]
        pos += 2 + length
    return None


def _strip_png(data: bytes) -> bytes | None:
    if data[:8] != _PNG_SIGNATURE:
        return None
    out = bytearray(data[:8])
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind not in _PNG_DROP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    return None


def strip_metadata(data: bytes, content_type: str) -> tuple[bytes, bool]:
    """``(data without EXIF/GPS/XMP/text blocks, True)`` for JPEG and PNG; else unchanged.

    The file's own signature decides, not the declared type; a file that does not parse
    is returned unchanged with False.
    """
    del content_type  # declared types lie; the magic bytes decide
    for strip in (_strip_jpeg, _strip_png):
        cleaned = strip(data)
        if cleaned is not None:
            return cleaned, True
    return data, False
