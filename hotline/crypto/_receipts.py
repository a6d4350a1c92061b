from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_scalarmult_base

from hotline.errors import SettingsError


def load_secret_file(path: Path, variable: str, *, create: bool) -> bytes:
    """Read a 32-byte secret file, creating it (mode 0600) atomically when allowed.

    The file is written under a temporary name and linked into place, so a concurrent
    reader never sees it half-written and a concurrent creator simply loses the race.
    """
    if not path.exists():
        if not create:
            raise SettingsError(f"{variable}: {path} does not exist; "
                                "run 'hotline keys rotate' or 'hotline dev' to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if len(raw) != 32:
        raise SettingsError(f"{variable}: {path} must hold exactly 32 bytes, found {len(raw)}")
    return raw


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_TRANSLATE = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


# Byte -> the symbol of its low five bits: 256 is a multiple of 32, so a uniform random
# byte gives a uniform symbol, and 20 bytes give 100 random bits in one C call.
_SYMBOL_OF_BYTE = bytes(ord(_ALPHABET[b & 31]) for b in range(256))


def new_receipt() -> tuple[str, str]:
    """A fresh receipt as shown to the reporter and in canonical form (what
    :func:`normalise_receipt` makes of it): the symbols without the hyphens."""
    symbols = secrets.token_bytes(20).translate(_SYMBOL_OF_BYTE).decode("ascii")
    return f"{symbols[:5]}-{symbols[5:10]}-{symbols[10:15]}-{symbols[15:]}", symbols


def generate_receipt() -> str:
    """20 Crockford base32 symbols (100 random bits) in four groups of five."""
    return new_receipt()[0]


def normalise_receipt(text: str) -> str | None:
    """Canonical 20-symbol form of what a person typed, or None if it cannot be one."""
    if not isinstance(text, str) or len(text) > 64 or not text.isascii():
        return None
    canonical = "".join(text.upper().translate(_TRANSLATE).split())
    if len(canonical) != 20 or any(c not in _ALPHABET for c in canonical):
        return None
    return canonical


def _reply_seed(canonical_receipt: str) -> bytes:
    return HKDF(SHA256(), 32, salt=b"hotline/1 receipt", info=b"reply key").derive(
        canonical_receipt.encode("ascii"))


def receipt_reply_private_key(canonical_receipt: str) -> X25519PrivateKey:
    """The X25519 key only the receipt can derive; replies to the reporter are sealed to it."""
    return X25519PrivateKey.from_private_bytes(_reply_seed(canonical_receipt))


def receipt_reply_public_key(canonical_receipt: str) -> bytes:
    """The raw public half of :func:`receipt_reply_private_key` (what a submission carries).

    Computed by libsodium's X25519 base-point multiplication, not by building an OpenSSL
    key: the same 32 bytes (RFC 7748 clamps the seed either way; a unit test compares
    the two), at about half the CPU warm and a fifth cold, as it is between requests —
    it was intake's largest cost per report (issue 7).
    """
    return crypto_scalarmult_base(_reply_seed(canonical_receipt))


class ReceiptKeys:
    """The intake-side secret for the keyed receipt hash (a file shared by intakes)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> ReceiptKeys:
        return cls(load_secret_file(path, "HOTLINE_RECEIPT_KEY_FILE", create=create))

    def receipt_hash(self, canonical_receipt: str) -> str:
        return hmac.new(self._key, canonical_receipt.encode("ascii"), hashlib.sha256).hexdigest()

    def subkey(self, purpose: str) -> bytes:
        return HKDF(SHA256(), 32, salt=None, info=f"hotline/1 intake {purpose}".encode()).derive(
            self._key)
