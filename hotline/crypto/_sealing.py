from __future__ import annotations

import base64
import binascii
import re
from dataclasses import FrozenInstanceError

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from hotline.errors import ContractError, SealError

SUITE_NAME = "HPKE-base-X25519-SHA256-AES256GCM"
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_ENC_LEN = 32
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64_VALUE = {symbol: value for value, symbol in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
# "workflow": free-text values officers record in a case's workflow (hotline/casefile.py).
# "survey": a complainant's satisfaction survey answer (hotline/surveys.py, issue 5)
PURPOSES = frozenset({"report", "complaint", "message", "identity", "attachment", "workflow",
                      "survey"})


def b64e(raw: bytes) -> str:
    """Base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _check_b64(text: object, field: str) -> str:
    """``text`` if it is canonical base64url without padding, else :class:`ContractError`.

    Checked without decoding: the alphabet, a length a decoder accepts, and zero unused
    bits in the last symbol (otherwise two spellings would name one value).
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ContractError(f"{field} must be base64url without padding", field=field)
    tail = len(text) % 4
    if tail and _B64_VALUE[text[-1]] & (0b1111 if tail == 2 else 0b11):
        raise ContractError(f"{field} is not canonical base64url", field=field)
    return text


_DECODE_SLICE = 1 << 16  # symbols; a multiple of 4, so slices decode independently


def _decode_checked(text: str) -> bytes:
    if len(text) <= _DECODE_SLICE:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # A large value slice by slice: 64 KiB temporaries instead of three full-size copies
    # (padded text, its bytes, the translated bytes) next to the text and the result.
    decoded = bytearray()
    for start in range(0, len(text), _DECODE_SLICE):
        piece = text[start:start + _DECODE_SLICE]
        decoded += base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4))
    return bytes(decoded)


def b64d(text: str, *, field: str = "value") -> bytes:
    """Decode base64url without padding; raise :class:`ContractError` naming ``field``."""
    try:
        return _decode_checked(_check_b64(text, field))
    except (binascii.Error, ValueError):
        raise ContractError(f"{field} is not valid base64url", field=field) from None


def _info(purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sealing purpose {purpose!r}")
    return f"hotline/1 {purpose}".encode()


class Sealed:
    """A single-shot HPKE ciphertext as it travels and rests: key id, enc, ciphertext.

    Immutable. One parsed by :meth:`from_wire` keeps the base64url text it was given and
    decodes it only when ``enc`` or ``ciphertext`` is first read, so intake checks an
    envelope and passes it on without decoding it or encoding it again (issue 7: CPU
    and copies of a large report).
    """

    __slots__ = ("_ciphertext", "_enc", "_wire", "kid")

    kid: str
    _enc: bytes | None
    _ciphertext: bytes | None
    _wire: tuple[str, str] | None

    def __init__(self, kid: str, enc: bytes, ciphertext: bytes) -> None:
        object.__setattr__(self, "kid", kid)
        object.__setattr__(self, "_enc", enc)
        object.__setattr__(self, "_ciphertext", ciphertext)
        object.__setattr__(self, "_wire", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def enc(self) -> bytes:
        if self._enc is None:
            assert self._wire is not None
            object.__setattr__(self, "_enc", _decode_checked(self._wire[0]))
        assert self._enc is not None
        return self._enc

    @property
    def ciphertext(self) -> bytes:
        if self._ciphertext is None:
            assert self._wire is not None
            object.__setattr__(self, "_ciphertext", _decode_checked(self._wire[1]))
        assert self._ciphertext is not None
        return self._ciphertext

    @property
    def ciphertext_size(self) -> int:
        """``len(self.ciphertext)``, without decoding the wire text."""
        if self._ciphertext is None and self._wire is not None:
            return len(self._wire[1]) * 3 // 4
        return len(self.ciphertext)

    def _fields(self) -> tuple[str, bytes, bytes]:
        return self.kid, self.enc, self.ciphertext

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sealed):
            return NotImplemented
        if self._wire is not None and other._wire is not None:  # canonical: text equality
            return (self.kid, self._wire) == (other.kid, other._wire)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Sealed(kid={self.kid!r}, enc={self.enc!r}, ciphertext={self.ciphertext!r})"

    def __reduce__(self) -> tuple[type[Sealed], tuple[str, bytes, bytes]]:
        # copy, deepcopy (dataclasses.asdict) and pickle rebuild through __init__: the
        # default would set the slots one by one, which __setattr__ refuses.
        return Sealed, self._fields()

    def to_wire(self) -> dict[str, str]:
        if self._wire is not None:
            return {"kid": self.kid, "enc": self._wire[0], "ciphertext": self._wire[1]}
        return {"kid": self.kid, "enc": b64e(self.enc), "ciphertext": b64e(self.ciphertext)}

    @classmethod
    def from_wire(cls, doc: object, *, field: str = "sealed") -> Sealed:
        if not isinstance(doc, dict) or set(doc) != {"kid", "enc", "ciphertext"}:
            raise ContractError(f"{field} must be an object with kid, enc and ciphertext",
                                field=field)
        kid = doc["kid"]
        if not isinstance(kid, str) or not 1 <= len(kid) <= 64:
            raise ContractError(f"{field}.kid must be a short string", field=f"{field}.kid")
        enc = _check_b64(doc["enc"], f"{field}.enc")
        if len(enc) * 3 // 4 != _ENC_LEN:
            raise ContractError(f"{field}.enc must be 32 bytes", field=f"{field}.enc")
        ciphertext = _check_b64(doc["ciphertext"], f"{field}.ciphertext")
        sealed = cls.__new__(cls)
        object.__setattr__(sealed, "kid", kid)
        object.__setattr__(sealed, "_enc", None)
        object.__setattr__(sealed, "_ciphertext", None)
        object.__setattr__(sealed, "_wire", (enc, ciphertext))
        return sealed


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
