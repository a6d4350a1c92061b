"""HPKE (CONTRACT §6) against the RFC 9180 vector, and product ↔ reference interop."""

# House style (STYLE.md) is `assert expected == actual`, which SIM300 calls a Yoda
# condition when the expected value is a literal or constant.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from hotline.crypto import Sealed, open_sealed, seal
from hotline.errors import SealError
from tests.support import hpke_ref

pytestmark = pytest.mark.unit

VECTOR_FILE = (Path(__file__).parents[1] / "data" / "vectors"
               / "hpke-base-x25519-sha256-aes256gcm.json")
PURPOSES = ["report", "complaint", "message", "identity", "attachment", "workflow"]
PLAINTEXT = '{"description": "Die Kasse stimmt nicht — 账目不符"}'.encode()


def _load_vector() -> dict[str, Any]:
    entries: list[dict[str, Any]] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    (entry,) = entries
    return entry


VECTOR = _load_vector()
ENCRYPTIONS: list[dict[str, str]] = VECTOR["encryptions"]


def _hex(name: str) -> bytes:
    value: str = VECTOR[name]
    return bytes.fromhex(value)


def _info(purpose: str) -> bytes:
    return f"hotline/1 {purpose}".encode()


def _raw_private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def _flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


@pytest.fixture
def recipient() -> X25519PrivateKey:
    """A fresh organisation key pair."""
    return X25519PrivateKey.generate()


# --- the reference implementation reproduces the vector ---------------------------------


def test_vector_is_the_contract_suite_in_base_mode() -> None:
    """The stored vector is for mode 0, KEM 0x0020, KDF 0x0001, AEAD 0x0002."""
    expected = (0, 0x0020, 0x0001, 0x0002)
    reference_suite = (hpke_ref.MODE_BASE, hpke_ref.KEM_ID, hpke_ref.KDF_ID, hpke_ref.AEAD_ID)

    assert expected == (VECTOR["mode"], VECTOR["kem_id"], VECTOR["kdf_id"], VECTOR["aead_id"])
    assert expected == reference_suite


@pytest.mark.parametrize(("ikm", "sk", "pk"), [("ikmR", "skRm", "pkRm"), ("ikmE", "skEm", "pkEm")])
def test_reference_derive_key_pair_matches_vector(ikm: str, sk: str, pk: str) -> None:
    """DeriveKeyPair (§7.1.3) turns the vector's ikm into its serialized key pair."""
    assert (_hex(sk), _hex(pk)) == hpke_ref.derive_key_pair(_hex(ikm))


def test_reference_sender_key_schedule_matches_vector() -> None:
    """SetupBaseS with the vector's ephemeral key yields every listed secret."""
    enc, context = hpke_ref.setup_base_s(_hex("pkRm"), _hex("info"), sk_e=_hex("skEm"))

    assert _hex("enc") == enc
    assert _hex("shared_secret") == context.shared_secret
    assert _hex("key_schedule_context") == context.key_schedule_context
    assert _hex("secret") == context.secret
    assert _hex("key") == context.key
    assert _hex("base_nonce") == context.base_nonce
    assert _hex("exporter_secret") == context.exporter_secret


def test_reference_receiver_key_schedule_matches_vector() -> None:
    """SetupBaseR from the vector's enc and skRm yields every listed secret."""
    context = hpke_ref.setup_base_r(_hex("enc"), _hex("skRm"), _hex("info"))

    assert _hex("shared_secret") == context.shared_secret
    assert _hex("key_schedule_context") == context.key_schedule_context
    assert _hex("secret") == context.secret
    assert _hex("key") == context.key
    assert _hex("base_nonce") == context.base_nonce
    assert _hex("exporter_secret") == context.exporter_secret


@pytest.mark.parametrize("seq", range(len(ENCRYPTIONS)))
def test_reference_seal_matches_each_vector_encryption(seq: int) -> None:
    """The seq-th Seal uses the listed nonce and produces the listed ct for its aad."""
    _, context = hpke_ref.setup_base_s(_hex("pkRm"), _hex("info"), sk_e=_hex("skEm"))
    for earlier in ENCRYPTIONS[:seq]:
        context.seal(bytes.fromhex(earlier["aad"]), bytes.fromhex(earlier["pt"]))
    encryption = ENCRYPTIONS[seq]

    assert bytes.fromhex(encryption["nonce"]) == context.compute_nonce(context.seq)
    assert bytes.fromhex(encryption["ct"]) == context.seal(
        bytes.fromhex(encryption["aad"]), bytes.fromhex(encryption["pt"]))


def test_reference_open_recovers_every_vector_plaintext_in_order() -> None:
    """A receiver context opens the listed cts in sequence order."""
    context = hpke_ref.setup_base_r(_hex("enc"), _hex("skRm"), _hex("info"))

    opened = [context.open(bytes.fromhex(e["aad"]), bytes.fromhex(e["ct"])) for e in ENCRYPTIONS]

    assert [bytes.fromhex(e["pt"]) for e in ENCRYPTIONS] == opened


def test_reference_open_rejects_out_of_order_ciphertext() -> None:
    """Opening the second ct first fails: the sequence number is part of the nonce."""
    context = hpke_ref.setup_base_r(_hex("enc"), _hex("skRm"), _hex("info"))
    second = ENCRYPTIONS[1]

    with pytest.raises(hpke_ref.HpkeError):
        context.open(bytes.fromhex(second["aad"]), bytes.fromhex(second["ct"]))


def test_reference_open_rejects_wrong_aad() -> None:
    """The first ct does not open under the second encryption's aad."""
    context = hpke_ref.setup_base_r(_hex("enc"), _hex("skRm"), _hex("info"))

    with pytest.raises(hpke_ref.HpkeError):
        context.open(bytes.fromhex(ENCRYPTIONS[1]["aad"]), bytes.fromhex(ENCRYPTIONS[0]["ct"]))


def test_reference_uses_a_fresh_ephemeral_key_per_seal(recipient: X25519PrivateKey) -> None:
    """Without a fixed ephemeral key two seals of the same text differ."""
    first = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)
    second = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    assert first[0] != second[0]
    assert first[1] != second[1]


# --- the product's library and sealing agree with the vector -------------------------------


def test_cryptography_hpke_opens_vector_keys_with_empty_aad() -> None:
    """cryptography's HPKE opens AES-GCM(vector key, base_nonce, pt, aad="") sent as enc."""
    plaintext = bytes.fromhex(ENCRYPTIONS[0]["pt"])
    ct = AESGCM(_hex("key")).encrypt(_hex("base_nonce"), plaintext, b"")
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)

    opened = suite.decrypt(_hex("enc") + ct, X25519PrivateKey.from_private_bytes(_hex("skRm")),
                           info=_hex("info"))

    assert plaintext == opened


def test_reference_with_vector_keys_and_empty_aad_matches_direct_aes_gcm() -> None:
    """The reference's single-shot ct equals AES-GCM under the vector's key and base_nonce."""
    plaintext = bytes.fromhex(ENCRYPTIONS[0]["pt"])
    _, context = hpke_ref.setup_base_s(_hex("pkRm"), _hex("info"), sk_e=_hex("skEm"))

    assert AESGCM(_hex("key")).encrypt(_hex("base_nonce"), plaintext, b"") == context.seal(
        b"", plaintext)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_product_opens_reference_seal_with_vector_keys(purpose: str) -> None:
    """open_sealed opens what the reference sealed with the vector's fixed key pairs."""
    plaintext = bytes.fromhex(ENCRYPTIONS[0]["pt"])
    enc, context = hpke_ref.setup_base_s(_hex("pkRm"), _info(purpose), sk_e=_hex("skEm"))
    sealed = Sealed("vector", enc, context.seal(b"", plaintext))

    opened = open_sealed(sealed, X25519PrivateKey.from_private_bytes(_hex("skRm")),
                         purpose=purpose)

    assert _hex("enc") == enc
    assert plaintext == opened


# --- product ↔ reference interop ---------------------------------------------------------


@pytest.mark.parametrize("purpose", PURPOSES)
def test_product_opens_reference_seal(recipient: X25519PrivateKey, purpose: str) -> None:
    """open_sealed opens a single-shot ciphertext made by the reference implementation."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info(purpose), PLAINTEXT)

    assert PLAINTEXT == open_sealed(Sealed("k1", enc, ct), recipient, purpose=purpose)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_reference_opens_product_seal(recipient: X25519PrivateKey, purpose: str) -> None:
    """The reference implementation opens seal() output with info 'hotline/1 <purpose>'."""
    sealed = seal(PLAINTEXT, recipient.public_key(), kid="k1", purpose=purpose)

    opened = hpke_ref.open_single(_raw_private(recipient), sealed.enc, _info(purpose),
                                  sealed.ciphertext)

    assert ("k1", 32, PLAINTEXT) == (sealed.kid, len(sealed.enc), opened)


def test_product_and_reference_roundtrip_empty_plaintext(recipient: X25519PrivateKey) -> None:
    """An empty plaintext survives both directions (ciphertext is just the 16-byte tag)."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info("message"), b"")
    sealed = seal(b"", recipient.public_key(), kid="k1", purpose="message")

    assert b"" == open_sealed(Sealed("k1", enc, ct), recipient, purpose="message")
    assert b"" == hpke_ref.open_single(_raw_private(recipient), sealed.enc, _info("message"),
                                       sealed.ciphertext)
    assert 16 == len(sealed.ciphertext)


def test_reference_refuses_product_seal_under_other_info(recipient: X25519PrivateKey) -> None:
    """The info string binds the purpose: a report ciphertext is not a complaint."""
    sealed = seal(PLAINTEXT, recipient.public_key(), kid="k1", purpose="report")

    with pytest.raises(hpke_ref.HpkeError):
        hpke_ref.open_single(_raw_private(recipient), sealed.enc, _info("complaint"),
                             sealed.ciphertext)


# --- the product refuses what does not authenticate ----------------------------------------


@pytest.mark.parametrize("other", [p for p in PURPOSES if p != "report"])
def test_product_refuses_wrong_purpose(recipient: X25519PrivateKey, other: str) -> None:
    """A ciphertext sealed for 'report' does not open as any other purpose."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", enc, ct), recipient, purpose=other)


@pytest.mark.parametrize("info", [b"", b"hotline/1 report ", b"hotline/2 report", b"report",
                                  b"Hotline/1 report"])
def test_product_refuses_foreign_info(recipient: X25519PrivateKey, info: bytes) -> None:
    """A ciphertext sealed under an info near 'hotline/1 report' does not open as a report."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), info, PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", enc, ct), recipient, purpose="report")


@pytest.mark.parametrize("index", [0, 15, 31])
def test_product_refuses_flipped_bit_in_enc(recipient: X25519PrivateKey, index: int) -> None:
    """Flipping one bit of enc makes the ciphertext unopenable."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", _flip_bit(enc, index), ct), recipient, purpose="report")


@pytest.mark.parametrize("index", [0, len(PLAINTEXT) // 2, len(PLAINTEXT) + 15])
def test_product_refuses_flipped_bit_in_ciphertext(recipient: X25519PrivateKey,
                                                   index: int) -> None:
    """Flipping one bit of the ciphertext or its tag makes it unopenable."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", enc, _flip_bit(ct, index)), recipient, purpose="report")


@pytest.mark.parametrize("cut", [1, 16, 10_000])
def test_product_refuses_truncated_ciphertext(recipient: X25519PrivateKey, cut: int) -> None:
    """A ciphertext missing its last bytes (or everything) does not open."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", enc, ct[:-cut]), recipient, purpose="report")


@pytest.mark.parametrize("enc", [bytes(32), b"\x01" + bytes(31), bytes(31), b""])
def test_product_refuses_degenerate_enc(recipient: X25519PrivateKey, enc: bytes) -> None:
    """Small-order points and wrong-length enc values raise SealError, not a crash."""
    _, ct = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", enc, ct), recipient, purpose="report")


def test_product_refuses_wrong_private_key(recipient: X25519PrivateKey) -> None:
    """A ciphertext sealed to one key does not open with another."""
    enc, ct = hpke_ref.seal_single(_raw_public(recipient), _info("report"), PLAINTEXT)

    with pytest.raises(SealError):
        open_sealed(Sealed("k1", enc, ct), X25519PrivateKey.generate(), purpose="report")


def test_product_seal_is_not_opened_by_wrong_private_key(recipient: X25519PrivateKey) -> None:
    """The product's own seal() output does not open with another key either."""
    sealed = seal(PLAINTEXT, recipient.public_key(), kid="k1", purpose="identity")

    with pytest.raises(SealError):
        open_sealed(sealed, X25519PrivateKey.generate(), purpose="identity")
