"""An independent reference implementation of HPKE (RFC 9180) base mode for one suite.

Suite: KEM 0x0020 DHKEM(X25519, HKDF-SHA256), KDF 0x0001 HKDF-SHA256, AEAD 0x0002
AES-256-GCM — the one CONTRACT §6 fixes. Written from the RFC text using only primitives
(X25519 and AES-GCM from ``cryptography``, HMAC-SHA256 from the standard library), so
that tests can play a client that shares no code with the product's sealing. It must
never import ``hotline``.

Section numbers in comments refer to RFC 9180.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "AEAD_ID",
    "KDF_ID",
    "KEM_ID",
    "MODE_BASE",
    "Context",
    "HpkeError",
    "derive_key_pair",
    "open_single",
    "seal_single",
    "setup_base_r",
    "setup_base_s",
]

KEM_ID = 0x0020
KDF_ID = 0x0001
AEAD_ID = 0x0002

MODE_BASE = 0x00
N_SECRET = 32  # DHKEM(X25519): shared secret length
N_ENC = 32  # DHKEM(X25519): length of enc
N_PK = 32
N_SK = 32
N_H = 32  # HKDF-SHA256: hash output length
N_K = 32  # AES-256-GCM key length
N_N = 12  # AES-256-GCM nonce length

_VERSION_LABEL = b"HPKE-v1"


def _i2osp(value: int, length: int) -> bytes:
    """I2OSP (§3): ``value`` as a big-endian byte string of ``length`` bytes."""
    return value.to_bytes(length, "big")


# §4.1: the KEM uses its own suite id; the key schedule and AEAD use the full one (§5.1).
KEM_SUITE_ID = b"KEM" + _i2osp(KEM_ID, 2)
HPKE_SUITE_ID = b"HPKE" + _i2osp(KEM_ID, 2) + _i2osp(KDF_ID, 2) + _i2osp(AEAD_ID, 2)


class HpkeError(Exception):
    """Opening failed (bad tag, bad enc) or the context was used against its role."""


def _extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2); an empty salt means ``N_H`` zero bytes."""
    return hmac.new(salt or bytes(N_H), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    if length > 255 * N_H:
        raise ValueError("HKDF-Expand length too large")
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """LabeledExtract (§4)."""
    return _extract(salt, _VERSION_LABEL + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """LabeledExpand (§4)."""
    labeled_info = _i2osp(length, 2) + _VERSION_LABEL + suite_id + label + info
    return _expand(prk, labeled_info, length)


def _public_bytes(private_key: bytes) -> bytes:
    """SerializePublicKey(pk(sk)) for X25519 (§7.1.1): the raw 32-byte u-coordinate."""
    public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _dh(private_key: bytes, public_key: bytes) -> bytes:
    """DH (§4.1, §7.1.4): X25519, refusing the all-zero output of a small-order point."""
    try:
        shared = X25519PrivateKey.from_private_bytes(private_key).exchange(
            X25519PublicKey.from_public_bytes(public_key))
    except ValueError as exc:  # cryptography refuses an all-zero result itself
        raise HpkeError("X25519 produced no valid shared secret") from exc
    if shared == bytes(len(shared)):
        raise HpkeError("X25519 produced the all-zero shared secret")
    return shared


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    """DeriveKeyPair (§7.1.3) for X25519: ``(skXm, pkXm)`` as raw bytes."""
    dkp_prk = _labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    sk = _labeled_expand(KEM_SUITE_ID, dkp_prk, b"sk", b"", N_SK)
    return sk, _public_bytes(sk)


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    """ExtractAndExpand (§4.1)."""
    eae_prk = _labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, N_SECRET)


def _encap(pk_r: bytes, sk_e: bytes) -> tuple[bytes, bytes]:
    """Encap (§4.1) with the ephemeral private key given: ``(shared_secret, enc)``."""
    enc = _public_bytes(sk_e)
    dh = _dh(sk_e, pk_r)
    return _extract_and_expand(dh, enc + pk_r), enc


def _decap(enc: bytes, sk_r: bytes) -> bytes:
    """Decap (§4.1): the shared secret."""
    if len(enc) != N_ENC:
        raise HpkeError(f"enc must be {N_ENC} bytes")
    dh = _dh(sk_r, enc)
    return _extract_and_expand(dh, enc + _public_bytes(sk_r))


@dataclass
class Context:
    """An HPKE encryption context (§5.2) with the values a test vector lists.

    A sender context only seals and a receiver context only opens; each call uses the
    next sequence number.
    """

    role: Literal["S", "R"]
    shared_secret: bytes
    key_schedule_context: bytes
    secret: bytes
    key: bytes
    base_nonce: bytes
    exporter_secret: bytes
    seq: int = field(default=0)

    def compute_nonce(self, seq: int) -> bytes:
        """ComputeNonce (§5.2): ``base_nonce`` XOR the sequence number."""
        seq_bytes = _i2osp(seq, N_N)
        return bytes(a ^ b for a, b in zip(self.base_nonce, seq_bytes, strict=True))

    def _increment_seq(self) -> None:
        if self.seq >= (1 << (8 * N_N)) - 1:
            raise HpkeError("message limit reached")
        self.seq += 1

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        """ContextS.Seal (§5.2)."""
        if self.role != "S":
            raise HpkeError("a receiver context cannot seal")
        ct = AESGCM(self.key).encrypt(self.compute_nonce(self.seq), pt, aad)
        self._increment_seq()
        return ct

    def open(self, aad: bytes, ct: bytes) -> bytes:
        """ContextR.Open (§5.2); raises :class:`HpkeError` if it does not authenticate."""
        if self.role != "R":
            raise HpkeError("a sender context cannot open")
        try:
            pt = AESGCM(self.key).decrypt(self.compute_nonce(self.seq), ct, aad)
        except InvalidTag as exc:
            raise HpkeError("ciphertext does not authenticate") from exc
        self._increment_seq()
        return pt


def _key_schedule(role: Literal["S", "R"], shared_secret: bytes, info: bytes) -> Context:
    """KeySchedule (§5.1) for mode_base: empty psk and psk_id."""
    psk = b""
    psk_id = b""
    psk_id_hash = _labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", psk_id)
    info_hash = _labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info)
    key_schedule_context = _i2osp(MODE_BASE, 1) + psk_id_hash + info_hash
    secret = _labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", psk)
    return Context(
        role=role,
        shared_secret=shared_secret,
        key_schedule_context=key_schedule_context,
        secret=secret,
        key=_labeled_expand(HPKE_SUITE_ID, secret, b"key", key_schedule_context, N_K),
        base_nonce=_labeled_expand(HPKE_SUITE_ID, secret, b"base_nonce",
                                   key_schedule_context, N_N),
        exporter_secret=_labeled_expand(HPKE_SUITE_ID, secret, b"exp",
                                        key_schedule_context, N_H),
    )


def setup_base_s(pk_r: bytes, info: bytes, sk_e: bytes | None = None) -> tuple[bytes, Context]:
    """SetupBaseS (§5.1.1): ``(enc, sender context)``.

    ``sk_e`` fixes the ephemeral private key (for test vectors); without it a fresh one
    is generated (§7.1.2 GenerateKeyPair).
    """
    if len(pk_r) != N_PK:
        raise HpkeError(f"the recipient public key must be {N_PK} bytes")
    if sk_e is None:
        sk_e = X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption())
    shared_secret, enc = _encap(pk_r, sk_e)
    return enc, _key_schedule("S", shared_secret, info)


def setup_base_r(enc: bytes, sk_r: bytes, info: bytes) -> Context:
    """SetupBaseR (§5.1.1): the receiver context."""
    return _key_schedule("R", _decap(enc, sk_r), info)


def seal_single(pk_r: bytes, info: bytes, pt: bytes) -> tuple[bytes, bytes]:
    """Single-shot Seal (§6.1) with empty aad: ``(enc, ct)``."""
    enc, context = setup_base_s(pk_r, info)
    return enc, context.seal(b"", pt)


def open_single(sk_r: bytes, enc: bytes, info: bytes, ct: bytes) -> bytes:
    """Single-shot Open (§6.1) with empty aad; raises :class:`HpkeError` on failure."""
    return setup_base_r(enc, sk_r, info).open(b"", ct)
