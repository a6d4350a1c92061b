from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError
from typing import TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from hotline.errors import ContentNotLoaded, ContractError, SealError

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


_B64URL_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CHECKED_BY_DELETION = 1 << 16  # symbols


def _in_b64url_alphabet(text: str) -> bool:
    if len(text) <= _CHECKED_BY_DELETION:
        # Deleting the alphabet leaves nothing: the same answer as the regex, in a third
        # of its time (an envelope's ciphertext is checked on every report, issue 7).
        return text.isascii() and not text.encode("ascii").translate(None, _B64URL_BYTES)
    # A large value: no whole-size temporary copies (issue 7: copies of a large report).
    return _B64URL.fullmatch(text) is not None


_B64URL_ASCII = re.compile(rb"[A-Za-z0-9_-]*")
# A wire text: what a JSON document gave (str), or the ASCII bytes of it left in the
# message that carried it (a large ciphertext, see Submission.from_bytes).
WireText: TypeAlias = str | memoryview


def _check_b64_view(view: memoryview, field: str) -> memoryview:
    """:func:`_check_b64` of ASCII bytes, without copying them."""
    if view.ndim != 1 or view.itemsize != 1 or _B64URL_ASCII.fullmatch(view) is None \
            or len(view) % 4 == 1:
        raise ContractError(f"{field} must be base64url without padding", field=field)
    tail = len(view) % 4
    if tail and _B64_VALUE[chr(view[-1])] & (0b1111 if tail == 2 else 0b11):
        raise ContractError(f"{field} is not canonical base64url", field=field)
    return view


def _check_b64(text: object, field: str) -> str:
    """``text`` if it is canonical base64url without padding, else :class:`ContractError`.

    Checked without decoding: the alphabet, a length a decoder accepts, and zero unused
    bits in the last symbol (otherwise two spellings would name one value).
    """
    if not isinstance(text, str) or not _in_b64url_alphabet(text) or len(text) % 4 == 1:
        raise ContractError(f"{field} must be base64url without padding", field=field)
    tail = len(text) % 4
    if tail and _B64_VALUE[text[-1]] & (0b1111 if tail == 2 else 0b11):
        raise ContractError(f"{field} is not canonical base64url", field=field)
    return text


_DECODE_SLICE = 1 << 16  # symbols; a multiple of 4, so slices decode independently
_ENCODE_SLICE = 3 << 14  # bytes; a multiple of 3, so slices encode without padding


def _padded(piece: str | memoryview) -> str | bytes:
    if isinstance(piece, str):
        return piece + "=" * (-len(piece) % 4)
    return bytes(piece) + b"=" * (-len(piece) % 4)


def _decoded_pieces(text: WireText) -> Iterator[bytes]:
    """Base64url ``text`` decoded slice by slice: 64 KiB temporaries instead of three
    full-size copies (padded text, its bytes, the translated bytes)."""
    for start in range(0, len(text), _DECODE_SLICE):
        yield base64.urlsafe_b64decode(_padded(text[start:start + _DECODE_SLICE]))


def _decode_checked(text: WireText) -> bytes:
    if len(text) <= _DECODE_SLICE:
        return base64.urlsafe_b64decode(_padded(text))
    decoded = bytearray()
    for piece in _decoded_pieces(text):
        decoded += piece
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
    and copies of a large report). One made by :func:`seal` keeps HPKE's output (enc
    followed by the ciphertext) and cuts the ciphertext out only when it is first read.
    """

    __slots__ = ("_blob", "_ciphertext", "_enc", "_wire", "kid")

    kid: str
    _enc: bytes | None
    _ciphertext: bytes | None
    _wire: tuple[str, WireText] | None
    _blob: bytes | None

    def __init__(self, kid: str, enc: bytes, ciphertext: bytes) -> None:
        object.__setattr__(self, "kid", kid)
        object.__setattr__(self, "_enc", enc)
        object.__setattr__(self, "_ciphertext", ciphertext)
        object.__setattr__(self, "_wire", None)
        object.__setattr__(self, "_blob", None)

    @classmethod
    def _of_blob(cls, kid: str, blob: bytes) -> Sealed:
        """``Sealed(kid, blob[:32], blob[32:])`` without copying the ciphertext yet."""
        sealed = cls.__new__(cls)
        object.__setattr__(sealed, "kid", kid)
        object.__setattr__(sealed, "_enc", blob[:_ENC_LEN])
        object.__setattr__(sealed, "_ciphertext", None)
        object.__setattr__(sealed, "_wire", None)
        object.__setattr__(sealed, "_blob", blob)
        return sealed

    @classmethod
    def withheld(cls, kid: str, enc: bytes) -> Sealed:
        """Key id and enc of a sealed value whose ciphertext was not read (the content of a
        case in a list of cases): reading ``ciphertext``, and so opening it, raises
        :class:`~hotline.errors.ContentNotLoaded`. Equal only to another withheld value
        with the same key id and enc."""
        sealed = cls.__new__(cls)
        for name in cls.__slots__:
            object.__setattr__(sealed, name, None)
        object.__setattr__(sealed, "kid", kid)
        object.__setattr__(sealed, "_enc", enc)
        return sealed

    @property
    def is_withheld(self) -> bool:
        """Whether this is a :meth:`withheld` value (no ciphertext to read)."""
        return all(getattr(self, name) is None
                   for name in self.__slots__ if name not in ("kid", "_enc"))

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
            if self._blob is not None:
                object.__setattr__(self, "_ciphertext", self._blob[_ENC_LEN:])
                object.__setattr__(self, "_blob", None)  # enc is cut out already
            else:
                if self._wire is None:
                    raise ContentNotLoaded("this sealed value's ciphertext was not read")
                object.__setattr__(self, "_ciphertext", _decode_checked(self._wire[1]))
        assert self._ciphertext is not None
        return self._ciphertext

    @property
    def ciphertext_size(self) -> int:
        """``len(self.ciphertext)``, without decoding the wire text or copying."""
        if self._ciphertext is None:
            if self._blob is not None:
                return len(self._blob) - _ENC_LEN
            if self._wire is not None:
                return len(self._wire[1]) * 3 // 4
        return len(self.ciphertext)

    @property
    def wire_ciphertext_size(self) -> int:
        """``len(self.to_wire()["ciphertext"])``, without encoding the ciphertext."""
        if self._wire is not None:
            return len(self._wire[1])
        return -(-self.ciphertext_size * 4 // 3)

    def wire_ciphertext(self) -> Iterator[bytes]:
        """``to_wire()["ciphertext"]`` as ASCII bytes in slices, so that a large
        ciphertext's text is never held whole (issue 7: copies of a large report)."""
        if self._wire is not None:
            text = self._wire[1]
            step = _ENCODE_SLICE // 3 * 4
            for start in range(0, len(text), step):
                piece = text[start:start + step]
                yield piece.encode("ascii") if isinstance(piece, str) else bytes(piece)
            return
        blob = self._blob
        view = memoryview(blob)[_ENC_LEN:] if blob is not None else memoryview(self.ciphertext)
        for start in range(0, len(view), _ENCODE_SLICE):
            yield base64.urlsafe_b64encode(view[start:start + _ENCODE_SLICE]).rstrip(b"=")

    def ciphertext_pieces(self) -> Iterator[bytes | memoryview]:
        """``ciphertext`` in consecutive pieces of at most 48 KiB, without decoding the
        wire text whole or keeping what was decoded (issue 7: copies of a large report)."""
        if self._ciphertext is None and self._blob is None:
            if self._wire is None:
                raise ContentNotLoaded("this sealed value's ciphertext was not read")
            yield from _decoded_pieces(self._wire[1])
            return
        blob = self._blob
        view = memoryview(blob)[_ENC_LEN:] if blob is not None else memoryview(self.ciphertext)
        for start in range(0, len(view), _DECODE_SLICE // 4 * 3):
            yield view[start:start + _DECODE_SLICE // 4 * 3]

    def _fields(self) -> tuple[str, bytes, bytes]:
        return self.kid, self.enc, self.ciphertext

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sealed):
            return NotImplemented
        if self.is_withheld or other.is_withheld:
            return self.is_withheld and other.is_withheld and (self.kid, self.enc) == (
                other.kid, other.enc)
        if self._wire is not None and other._wire is not None:  # canonical: text equality
            return (self.kid, self._wire[0]) == (other.kid, other._wire[0]) and _same_text(
                self._wire[1], other._wire[1])
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.kid, self.enc))  # equal values share these; withheld ones too

    def __repr__(self) -> str:
        ciphertext = "<withheld>" if self.is_withheld else repr(self.ciphertext)
        return f"Sealed(kid={self.kid!r}, enc={self.enc!r}, ciphertext={ciphertext})"

    def __reduce__(self) -> tuple[Callable[..., Sealed], tuple[str | bytes, ...]]:
        # copy, deepcopy (dataclasses.asdict) and pickle rebuild through __init__: the
        # default would set the slots one by one, which __setattr__ refuses.
        if self.is_withheld:
            return Sealed.withheld, (self.kid, self.enc)
        return Sealed, self._fields()

    def to_wire(self) -> dict[str, str]:
        if self._wire is not None:
            text = self._wire[1]
            return {"kid": self.kid, "enc": self._wire[0],
                    "ciphertext": text if isinstance(text, str) else str(text, "ascii")}
        return {"kid": self.kid, "enc": b64e(self.enc), "ciphertext": b64e(self.ciphertext)}

    @classmethod
    def from_wire(cls, doc: object, *, field: str = "sealed") -> Sealed:
        """Check and keep a wire document's key id, enc and ciphertext (not decoded).

        The ciphertext may be given as the ASCII bytes of its text (a ``memoryview`` into
        the message that carried it): it is then kept as that view, not copied.
        """
        if not isinstance(doc, dict) or set(doc) != {"kid", "enc", "ciphertext"}:
            raise ContractError(f"{field} must be an object with kid, enc and ciphertext",
                                field=field)
        kid = doc["kid"]
        if not isinstance(kid, str) or not 1 <= len(kid) <= 64:
            raise ContractError(f"{field}.kid must be a short string", field=f"{field}.kid")
        enc = _check_b64(doc["enc"], f"{field}.enc")
        if len(enc) * 3 // 4 != _ENC_LEN:
            raise ContractError(f"{field}.enc must be 32 bytes", field=f"{field}.enc")
        raw = doc["ciphertext"]
        ciphertext: WireText = (_check_b64_view(raw, f"{field}.ciphertext")
                                if isinstance(raw, memoryview)
                                else _check_b64(raw, f"{field}.ciphertext"))
        sealed = cls.__new__(cls)
        object.__setattr__(sealed, "kid", kid)
        object.__setattr__(sealed, "_enc", None)
        object.__setattr__(sealed, "_ciphertext", None)
        object.__setattr__(sealed, "_wire", (enc, ciphertext))
        object.__setattr__(sealed, "_blob", None)
        return sealed


def _same_text(a: WireText, b: WireText) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if len(a) != len(b):
        return False
    # Mixed or both bytes: compared in slices, without a whole-size copy of either.
    for start in range(0, len(a), _DECODE_SLICE):
        x, y = a[start:start + _DECODE_SLICE], b[start:start + _DECODE_SLICE]
        if (x.encode("ascii") if isinstance(x, str) else bytes(x)) != (
                y.encode("ascii") if isinstance(y, str) else bytes(y)):
            return False
    return True


def seal(plaintext: bytes, public_key: X25519PublicKey, *, kid: str, purpose: str) -> Sealed:
    """Seal ``plaintext`` to ``public_key`` (HPKE base mode, single shot, empty aad)."""
    return Sealed._of_blob(kid, _SUITE.encrypt(plaintext, public_key, info=_info(purpose)))


def open_sealed(sealed: Sealed, private_key: X25519PrivateKey, *, purpose: str) -> bytes:
    """Open a :class:`Sealed`; raise :class:`SealError` if it does not authenticate."""
    info = _info(purpose)
    try:
        return _SUITE.decrypt(_hpke_input(sealed), private_key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed payload does not open with this key") from exc


def _hpke_input(sealed: Sealed) -> bytes | bytearray:
    """``sealed.enc + sealed.ciphertext`` built in one buffer: one sealed by this process
    is that already, one from the wire is decoded into it piece by piece, and neither
    keeps a decoded copy of its ciphertext (issue 7: copies of a large report)."""
    if sealed._blob is not None:
        return sealed._blob
    enc = sealed.enc
    data = bytearray(len(enc) + sealed.ciphertext_size)
    data[:len(enc)] = enc
    end = len(enc)
    for piece in sealed.ciphertext_pieces():
        data[end:end + len(piece)] = piece
        end += len(piece)
    if end != len(data):  # a size that does not fit is not ours to open
        raise ValueError("ciphertext size mismatch")
    return data
