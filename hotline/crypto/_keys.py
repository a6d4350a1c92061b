from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.crypto._receipts import load_secret_file
from hotline.errors import SealError, SettingsError, UnknownKey

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw


class MasterKey:
    """The 32-byte key that wraps private keys at rest (a file, mode 0600).

    Losing it makes every sealed report unreadable, so operators back it up apart
    from the database.
    """

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise SettingsError("HOTLINE_MASTER_KEY_FILE: the master key must be 32 bytes")
        self._raw = raw

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> MasterKey:
        return cls(load_secret_file(path, "HOTLINE_MASTER_KEY_FILE", create=create))

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A subkey for ``purpose`` (token signing, …), so the master key does one job."""
        return HKDF(SHA256(), length, salt=None, info=f"hotline/1 {purpose}".encode()).derive(
            self._raw)

    def wrap(self, plaintext: bytes, *, label: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self._raw).encrypt(nonce, plaintext, label.encode())

    def unwrap(self, blob: bytes, *, label: str) -> bytes:
        if len(blob) < 12 + 16:
            raise SealError(f"key {label} is truncated")
        try:
            return AESGCM(self._raw).decrypt(blob[:12], blob[12:], label.encode())
        except (InvalidTag, ValueError):
            raise SealError(f"key {label} does not unwrap with this master key") from None


def fingerprint(public_key: bytes) -> str:
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


def kid_for(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRecord:
    """An organisation key pair as stored: public half in clear, private half wrapped."""

    kid: str
    public_key: bytes
    wrapped_private_key: bytes
    created_at: datetime
    active: bool

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def new_key_record(master: MasterKey, now: datetime) -> KeyRecord:
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(_RAW, _RAW_PUB)
    kid = kid_for(public)
    raw_private = private.private_bytes(_RAW, _RAW_PRIV, serialization.NoEncryption())
    return KeyRecord(kid, public, master.wrap(raw_private, label=kid), now, True)


class KeyRing:
    """Private keys by kid, unwrapped in memory, for router and casework only."""

    def __init__(self, records: list[KeyRecord], master: MasterKey) -> None:
        self._private: dict[str, X25519PrivateKey] = {}
        self._records = {r.kid: r for r in records}
        for record in records:
            raw = master.unwrap(record.wrapped_private_key, label=record.kid)
            self._private[record.kid] = X25519PrivateKey.from_private_bytes(raw)

    def private_key(self, kid: str) -> X25519PrivateKey:
        try:
            return self._private[kid]
        except KeyError:
            raise UnknownKey(f"no private key with kid {kid!r}") from None

    def __contains__(self, kid: object) -> bool:
        return kid in self._private

    @property
    def active(self) -> KeyRecord:
        actives = sorted((r for r in self._records.values() if r.active),
                         key=lambda r: r.created_at)
        if not actives:
            raise UnknownKey("no active key; run 'hotline keys rotate'")
        return actives[-1]

    def active_public_key(self) -> tuple[str, X25519PublicKey]:
        record = self.active
        return record.kid, X25519PublicKey.from_public_bytes(record.public_key)
