"""Large sealed values on the wire: the same bytes as before, without full-size copies."""

from __future__ import annotations

import os
import pickle
import tracemalloc
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hotline._buffers import BytesBuilder
from hotline.contract import _WIRE_ENCODER, Submission
from hotline.crypto import Sealed, b64e, open_sealed, seal

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 25, 9, 30, 0, 123000, tzinfo=UTC)
PRIVATE = X25519PrivateKey.generate()


def submission(sealed: Sealed, *, correlation_id: str = "corr_0123456789",
               reporter_copy: Sealed | None = None) -> Submission:
    return Submission(
        id="sub_0123456789abcdef", occurred_at=AT, correlation_id=correlation_id,
        kind="report", channel="web", sealed=sealed, sealed_by="client",
        category="fraud", unit="GD", locale="zh-Hans", receipt_hash="ab" * 32,
        reply_key=bytes(range(32)), reporter_copy=reporter_copy)


def plain_bytes(item: Submission) -> bytes:
    """The encoding before large ciphertexts were streamed: the reference."""
    return _WIRE_ENCODER.encode(item.to_wire()).encode()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 64 * 1024 + 1, 3 << 14, (3 << 14) + 1,
                                  200_003, 1_000_000])
def test_sealed_by_seal_reads_like_one_built_from_its_parts(size: int) -> None:
    """seal() output: enc, ciphertext, sizes, wire text (whole and sliced) agree."""
    plaintext = os.urandom(size)
    sealed = seal(plaintext, PRIVATE.public_key(), kid="k1", purpose="report")
    assert size + 16 == sealed.ciphertext_size
    assert len(sealed.to_wire()["ciphertext"]) == sealed.wire_ciphertext_size
    assert sealed.to_wire()["ciphertext"].encode() == b"".join(sealed.wire_ciphertext())
    rebuilt = Sealed(sealed.kid, sealed.enc, sealed.ciphertext)
    assert rebuilt == sealed
    assert hash(rebuilt) == hash(sealed)
    assert sealed == pickle.loads(pickle.dumps(sealed))
    assert plaintext == open_sealed(sealed, PRIVATE, purpose="report")


@pytest.mark.parametrize("size", [1, (3 << 14) - 1, 3 << 14, 300_001])
def test_wire_text_slices_join_into_the_wire_text(size: int) -> None:
    """A value read from the wire gives back exactly its text, slice by slice."""
    original = Sealed("k1", bytes(32), os.urandom(size))
    parsed = Sealed.from_wire(original.to_wire())
    assert original.to_wire()["ciphertext"].encode() == b"".join(parsed.wire_ciphertext())
    assert size * 4 // 3 + (size % 3 > 0) == parsed.wire_ciphertext_size


@pytest.mark.parametrize("size", [1000, 64 * 1024, 64 * 1024 + 1, 2_000_001])
def test_to_bytes_is_the_plain_encoding(size: int) -> None:
    """Fresh, wire-parsed and with a reporter copy: to_bytes gives the same bytes."""
    fresh = seal(os.urandom(size), PRIVATE.public_key(), kid="k1", purpose="report")
    copy = Sealed("k1", bytes(32), os.urandom(100))
    for sealed in (fresh, Sealed.from_wire(fresh.to_wire())):
        item = submission(sealed, reporter_copy=copy)
        assert plain_bytes(item) == item.to_bytes()
        assert item == Submission.from_bytes(item.to_bytes())


def test_a_value_spelling_the_mark_falls_back_to_the_plain_encoding() -> None:
    """A field holding the placeholder text cannot misplace the ciphertext."""
    sealed = seal(os.urandom(100_000), PRIVATE.public_key(), kid="k1", purpose="report")
    item = submission(sealed, correlation_id="\x00ciphertext\x00")
    assert plain_bytes(item) == item.to_bytes()


def test_to_bytes_of_a_large_submission_holds_no_extra_copy() -> None:
    """Encoding a 4 MB ciphertext costs about its base64 once, not three times."""
    sealed = seal(os.urandom(4_000_000), PRIVATE.public_key(), kid="k1", purpose="report")
    item = submission(sealed)
    item.to_bytes()  # warm up
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        body = item.to_bytes()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The body itself (≈ 4/3 of the ciphertext) and slices; the plain encoding held the
    # base64 text, the encoded JSON text and its UTF-8 bytes at once (≈ 4 ×).
    assert peak - before < 1.2 * len(body)


def test_bytes_builder_gives_what_was_written() -> None:
    """Fewer, exactly as many or more bytes than announced: the result is what was written."""
    for capacity, pieces in ((10, [b"abc"]), (6, [b"abc", b"def"]), (2, [b"abc", b"def"]),
                             (0, []), (0, [b"x"])):
        builder = BytesBuilder(capacity)
        for piece in pieces:
            builder.write(memoryview(piece))
        assert b"".join(pieces) == builder.value()


def test_sliced_base64url_of_a_value_is_its_b64e() -> None:
    """The sliced base64url of a built value has no padding inside (slices of 3 × n)."""
    data = os.urandom((3 << 14) * 2 + 2)
    sealed = Sealed("k1", bytes(32), data)
    assert b64e(data).encode() == b"".join(sealed.wire_ciphertext())
