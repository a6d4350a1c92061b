from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from hotline.errors import ContractError, SealError

SUITE_NAME = "HPKE-base-X25519-SHA256-AES256GCM"
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_ENC_LEN = 32
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# "workflow": free-text values officers record in a case's workflow (hotline/casefile.py).
# "survey": a complainant's satisfaction survey answer (hotline/surveys.py, issue 5)
PURPOSES = frozenset({"report", "complaint", "message", "identity", "attachment", "workflow",
                      "survey"})


def b64e(raw: bytes) -> str:
    """Base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64d(text: str, *, field: str = "value") -> bytes:
    """Decode base64url without padding; raise :class:`ContractError` naming ``field``."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ContractError(f"{field} must be base64url without padding", field=field)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ContractError(f"{field} is not valid base64url", field=field) from None
    if b64e(raw) != text:  # non-canonical trailing bits: two spellings of one value
        raise ContractError(f"{field} is not canonical base64url", field=field)
    return raw


def _info(purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sealing purpose {purpose!r}")
    return f"hotline/1 {purpose}".encode()


@dataclass(frozen=True)
class Sealed:
    """A single-shot HPKE ciphertext as it travels and rests: key id, enc, ciphertext."""

    kid: str
    enc: bytes
    ciphertext: bytes

    def to_wire(self) -> dict[str, str]:
        return {"kid": self.kid, "enc": b64e(self.enc), "ciphertext": b64e(self.ciphertext)}

    @classmethod
    def from_wire(cls, doc: object, *, field: str = "sealed") -> Sealed:
        if not isinstance(doc, dict) or set(doc) != {"kid", "enc", "ciphertext"}:
            raise ContractError(f"{field} must be an object with kid, enc and ciphertext",
                                field=field)
        kid = doc["kid"]
        if not isinstance(kid, str) or not 1 <= len(kid) <= 64:
            raise ContractError(f"{field}.kid must be a short string", field=f"{field}.kid")
        enc = b64d(doc["enc"], field=f"{field}.enc")
        if len(enc) != _ENC_LEN:
            raise ContractError(f"{field}.enc must be 32 bytes", field=f"{field}.enc")
        return cls(kid, enc, b64d(doc["ciphertext"], field=f"{field}.ciphertext"))


def seal(plaintext: bytes, public_key: X25519PublicKey, *, kid: str, purpose: str) -> Sealed:
    """Seal ``plaintext`` to ``public_key`` (HPKE base mode, single shot, empty aad)."""
    blob = _SUITE.encrypt(plaintext, public_key, info=_info(purpose))
    return Sealed(kid, blob[:_ENC_LEN], blob[_ENC_LEN:])


def open_sealed(sealed: Sealed, private_key: X25519PrivateKey, *, purpose: str) -> bytes:
    """Open a :class:`Sealed`; raise :class:`SealError` if it does not authenticate."""
    info = _info(purpose)
    try:
        return _SUITE.decrypt(sealed.enc + sealed.ciphertext, private_key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed payload does not open with this key") from exc
