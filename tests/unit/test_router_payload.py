"""Large JSON values parsed without a whole-document text: what json.loads gives, or refuses.

The router parses an opened payload, and the contract a message body, with
:class:`hotline._large_json.LargeJson` (issue 7: copies of a large report); these tests
hold it to ``json.loads`` of the same bytes, valid or not.
"""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import codecs
import json
import os
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hotline._large_json import LargeJson, LargeString
from hotline.contract import Submission
from hotline.crypto import Sealed, open_sealed, seal
from hotline.errors import MalformedMessage
from router.worker import Router

pytestmark = pytest.mark.unit

_TEXTS = st.text(alphabet=st.sampled_from(["a", "\u00e9", "王", "\U0001f600", "\n", '"', "\\",
                                           "x", "\x00", "\x1f", "/"]), max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXTS, inner, max_size=4),
    max_leaves=12)


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ValueError


def _large(data: bytes, min_size: int) -> Any:
    try:
        return LargeJson(data, min_size=min_size).value()
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ValueError


@settings(max_examples=400, deadline=None)
@given(doc=_JSON, ascii_only=st.booleans(), junk=st.binary(max_size=4),
       at=st.integers(min_value=0, max_value=400), bom=st.booleans(),
       min_size=st.integers(min_value=1, max_value=12))
@example(doc={"description": "x" * 30, "name": "王某"}, ascii_only=False, junk=b"", at=0,
         bom=False, min_size=4)
@example(doc=["ab" * 10], ascii_only=False, junk=b"\xed\xa0\x80", at=8, bom=False, min_size=2)
@example(doc={"k" * 20: "v"}, ascii_only=True, junk=b"", at=0, bom=False, min_size=4)
@example(doc="top-level string", ascii_only=True, junk=b"", at=0, bom=False, min_size=4)
@example(doc=["x" * 20], ascii_only=True, junk=b'"', at=5, bom=False, min_size=4)
@example(doc=["x" * 20, "y" * 20], ascii_only=True, junk=b"\\", at=15, bom=False, min_size=4)
def test_what_json_loads_gives_or_refuses(doc: Any, ascii_only: bool, junk: bytes, at: int,
                                          bom: bool, min_size: int) -> None:
    """Any document, spoilt or not by a few bytes anywhere, with or without a BOM, with
    long strings decoded apart: the value json.loads gives, or both refuse it."""
    encoded = json.dumps(doc, ensure_ascii=ascii_only).encode()
    data = (codecs.BOM_UTF8 if bom else b"") + encoded[:at] + junk + encoded[at:]
    assert _loads(data) == _large(data, min_size)


def test_long_strings_stay_in_the_bytes_until_asked_for() -> None:
    """Long values are LargeStrings in the document; base64url ones can be taken as views."""
    data = json.dumps({"text": "王" * 50, "ct": "AbC-_9" * 20, "short": "s"},
                      ensure_ascii=False).encode()
    parsed = LargeJson(data, min_size=64)
    doc = parsed.document
    assert isinstance(doc["text"], LargeString)
    assert isinstance(doc["ct"], LargeString)
    assert "s" == doc["short"]
    assert doc["text"].b64url_view() is None
    view = doc["ct"].b64url_view()
    assert view is not None
    assert b"AbC-_9" * 20 == bytes(view)
    assert {"text": "王" * 50, "ct": "AbC-_9" * 20, "short": "s"} == parsed.value()


def test_a_document_spelling_a_placeholder_is_parsed_the_plain_way() -> None:
    """A NUL escape anywhere (how a placeholder would be spelt) takes json.loads itself."""
    data = json.dumps({"a": "\x00large:0", "b": "x" * 100}).encode()
    assert json.loads(data) == LargeJson(data, min_size=10).value()


def test_a_large_payload_is_parsed_without_a_text_of_the_whole() -> None:
    """An ASCII description beside one Chinese name: the payload's bytes and the value,
    not a two-bytes-per-character text of the whole payload besides."""
    size = 2_000_000
    plaintext = json.dumps({"description": "x" * size, "subjects": [{"name": "王某"}]},
                           ensure_ascii=False).encode()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        parsed = LargeJson(plaintext)
        payload = Router._payload(parsed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert json.loads(plaintext) == payload
    # The description (1 byte a character) and small things; the text of the whole
    # payload alone was 2 bytes a character.
    assert peak - before < 1.2 * size


_AT = datetime(2026, 11, 25, 9, 30, 0, 123000, tzinfo=UTC)
_PRIVATE = X25519PrivateKey.generate()


def _submission(sealed: Sealed, reporter_copy: Sealed | None = None) -> Submission:
    return Submission(
        id="sub_0123456789abcdef", occurred_at=_AT, correlation_id="corr_0123456789",
        kind="followup", channel="web", sealed=sealed, sealed_by="intake",
        receipt_hash="ab" * 32, reporter_copy=reporter_copy)


def test_a_large_body_keeps_its_ciphertexts_as_views() -> None:
    """from_bytes of a large body: the same submission, its ciphertexts left in the body,
    and what they seal opens."""
    plaintext = os.urandom(300_000)
    sealed = seal(plaintext, _PRIVATE.public_key(), kid="k1", purpose="message")
    copy = seal(os.urandom(200_000), _PRIVATE.public_key(), kid="receipt", purpose="message")
    item = _submission(sealed, copy)
    body = item.to_bytes()
    parsed = Submission.from_bytes(body)
    assert item == parsed
    assert parsed == Submission.from_wire(json.loads(body))
    assert isinstance(parsed.sealed._wire[1], memoryview)  # type: ignore[index]
    assert isinstance(parsed.reporter_copy._wire[1], memoryview)  # type: ignore[union-attr,index]
    assert item.to_wire() == parsed.to_wire()
    assert body == parsed.to_bytes()
    assert plaintext == open_sealed(parsed.sealed, _PRIVATE, purpose="message")
    assert sealed.ciphertext == b"".join(parsed.sealed.ciphertext_pieces())


@pytest.mark.parametrize("spoil", [
    lambda text: text[:-1] + "B",  # unused bits set: not canonical
    lambda text: text + "A",  # a length no decoder takes
    lambda text: text[:100] + "=" + text[101:],  # not the alphabet
    lambda text: text[:100] + "\\u0041" + text[101:],  # an escape: decoded, then checked
])
def test_a_large_body_is_checked_as_a_small_one(spoil: Any) -> None:
    """A spoilt ciphertext in a large body is refused as in a small one (or taken, when
    an escape spells a valid symbol)."""
    sealed = seal(os.urandom(200_000), _PRIVATE.public_key(), kid="k1", purpose="message")
    body = _submission(sealed).to_bytes().decode()
    text = sealed.to_wire()["ciphertext"]
    spoilt = body.replace(text, spoil(text)).encode()
    try:
        expected: Any = Submission.from_wire(json.loads(spoilt))
    except MalformedMessage as exc:
        expected = (MalformedMessage, exc.field)
    try:
        got: Any = Submission.from_bytes(spoilt)
    except MalformedMessage as exc:
        got = (MalformedMessage, exc.field)
    assert expected == got
