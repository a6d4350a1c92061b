"""The router decodes an opened payload in pieces exactly as json.loads decodes bytes."""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from router import worker

pytestmark = pytest.mark.unit

_TEXTS = st.text(alphabet=st.sampled_from(["a", "\u00e9", "王", "\U0001f600", "\n", '"', "x"]),
                 max_size=40)


def _whole(plaintext: bytes) -> str | type[UnicodeDecodeError]:
    try:
        return plaintext.decode(json.detect_encoding(plaintext), "surrogatepass")
    except UnicodeDecodeError:
        return UnicodeDecodeError


def _pieces(plaintext: bytes) -> str | type[UnicodeDecodeError]:
    try:
        return "".join(worker._text_pieces(plaintext))
    except UnicodeDecodeError:
        return UnicodeDecodeError


@settings(max_examples=400, deadline=None)
@given(text=_TEXTS, junk=st.binary(max_size=6), at=st.integers(min_value=0, max_value=40),
       bom=st.booleans(), size=st.integers(min_value=1, max_value=7))
@example(text="王" * 5, junk=b"", at=0, bom=True, size=2)
@example(text="ab", junk=b"\xed\xa0\x80", at=1, bom=False, size=1)  # surrogatepass lets it by
def test_pieces_join_up_to_what_json_decodes(text: str, junk: bytes, at: int, bom: bool,
                                             size: int) -> None:
    """Valid or not, with or without a BOM, cut small: the pieces are json's text, or both
    fail to decode."""
    encoded = text.encode("utf-8")
    plaintext = (codecs.BOM_UTF8 if bom else b"") + encoded[:at] + junk + encoded[at:]
    original = worker._DECODE_PIECE
    worker._DECODE_PIECE = size
    try:
        assert _whole(plaintext) == _pieces(plaintext)
    finally:
        worker._DECODE_PIECE = original


def test_a_large_payload_is_decoded_in_pieces() -> None:
    """Beyond _DECODE_PIECE bytes the text comes in several pieces, none cut in a character."""
    plaintext = json.dumps({"description": "王" * worker._DECODE_PIECE}).encode()
    pieces = worker._text_pieces(plaintext)
    assert len(pieces) > 1
    assert plaintext.decode() == "".join(pieces)
