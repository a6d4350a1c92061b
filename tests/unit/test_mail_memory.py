"""A large complaint mail is parsed, sealed and queued without many copies of itself."""

from __future__ import annotations

import base64
import binascii
import json
import os
import random
import re
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hotline.contract import Submission
from hotline.crypto import KeyRecord, open_sealed
from hotline.mail import parse_mail
from hotline.mail._mime import Budget, decode_transfer, parse_entity
from hotline.mail._model import DEFAULT_LIMITS
from hotline.mail.config import Mailbox
from hotline.mail.ingest import MailIngest, mail_payload, mail_plaintext
from hotline.ports import Message

pytestmark = pytest.mark.unit

DOMAIN = "hotline.localhost"
MAILBOX = Mailbox(f"complaints-gd@{DOMAIN}", "GD", "zh-Hans")
PRIVATE = X25519PrivateKey.generate()
MB = 1024 * 1024
TEXT = ("某省公司采购部负责人多次向特定供应商透露标底，并收受现金及购物卡。 The same supplier "
        "won four tenders in a row; \"invoices\" were split \\ below the threshold.\t\x01 ")


def attachment_mail(payload: bytes, *, text: str = "投诉内容见附件。") -> bytes:
    encoded = base64.b64encode(payload)
    lines = b"\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    return (b"From: a@example.org\r\nTo: complaints-gd@hotline.localhost\r\n"
            b"Subject: evidence\r\nMessage-ID: <m1@example.org>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode() + b"\r\n"
            b"--b1\r\nContent-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename=\"evidence.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + lines + b"\r\n--b1--\r\n")


def text_mail(text: str, *, content_type: str = "text/plain") -> bytes:
    return (b"From: a@example.org\r\nSubject: =?utf-8?b?5oqV6K+J?=\r\n"
            b"Message-ID: <m2@example.org>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: " + content_type.encode() + b"; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode())


# --- base64 decoding --------------------------------------------------------------------


def reference_base64(body: bytes) -> bytes:
    """The lenient decoding as it was written before it went slice by slice."""
    cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", body)
    padding = cleaned.find(b"=")
    if padding >= 0:
        cleaned = cleaned[:padding]
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError):
        return body


def base64_part(body: bytes) -> tuple[Any, memoryview]:
    part = parse_entity(b"Content-Transfer-Encoding: base64\r\n\r\n" + body,
                        Budget(DEFAULT_LIMITS))
    assert part is not None
    return part.headers, part.body


def noisy_base64(rng: random.Random, size: int) -> bytes:
    """Base64 of random bytes with line breaks, junk bytes, cuts and early padding."""
    encoded = bytearray(base64.b64encode(rng.randbytes(size)))
    for _ in range(rng.randrange(0, 6)):
        encoded.insert(rng.randrange(len(encoded) + 1), rng.choice(b"\r\n \t*\x00\xff-_.="))
    if rng.random() < 0.3:
        del encoded[rng.randrange(len(encoded) + 1):]
    return bytes(encoded).replace(b"A", b"A\r\n", rng.randrange(0, 50))


@pytest.mark.parametrize("seed", range(40))
def test_base64_decodes_as_before(seed: int) -> None:
    """Slice-wise lenient decoding gives exactly what whole-body decoding gave."""
    rng = random.Random(seed)
    size = rng.choice([0, 1, 2, 3, 100, 49_151, 49_152, 49_153, 200_000])
    body = noisy_base64(rng, size)
    headers, view = base64_part(body)
    assert reference_base64(bytes(view)) == decode_transfer(headers, view)


def test_base64_decoding_holds_no_cleaned_copy() -> None:
    """Decoding a 4 MB attachment costs about its decoded size, not a cleaned copy more."""
    payload = os.urandom(4 * MB)
    encoded = base64.b64encode(payload)
    headers, view = base64_part(b"\r\n".join(encoded[i:i + 76]
                                             for i in range(0, len(encoded), 76)))
    tracemalloc.start()
    try:
        decoded = decode_transfer(headers, view)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert payload == decoded
    assert peak < 1.3 * len(payload)


def test_part_bodies_are_views_of_the_raw_mail() -> None:
    """Splitting a mail into parts copies no body: each is a view into the raw bytes."""
    raw = attachment_mail(os.urandom(100_000))
    root = parse_entity(raw, Budget(DEFAULT_LIMITS))
    assert root is not None
    assert [raw, raw, raw] == [p.body.obj for p in (root, *root.children)]
    assert 2 == len(root.children)


# --- the sealed JSON --------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    attachment_mail(os.urandom(300_000)),
    attachment_mail(b"", text="  \r\n "),
    text_mail(TEXT * 3000),
    text_mail("\r\n\t  " + TEXT * 1000 + "\u3000 \r\n" * 40_000),
    text_mail("<p>" + TEXT * 1000 + "</p>", content_type="text/html"),
    text_mail(""),
    b"not a mail at all \xff\xfe",
])
def test_plaintext_is_the_payload(raw: bytes) -> None:
    """The sealed JSON, written piece by piece, reads back as mail_payload's document."""
    parsed = parse_mail(raw, our_domain=DOMAIN)
    expected = mail_payload(parsed, raw, MAILBOX, our_domain=DOMAIN, envelope_from="", via="imap")
    plaintext = mail_plaintext(parsed, raw, MAILBOX, our_domain=DOMAIN, envelope_from="",
                               via="imap")
    assert expected == json.loads(plaintext)
    assert json.dumps(expected, ensure_ascii=False).encode().__len__() == len(plaintext)


# --- the whole ingestion ----------------------------------------------------------------


class _Keys:
    def __init__(self) -> None:
        public = PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.record = KeyRecord("k1", public, b"", datetime(2026, 1, 1, tzinfo=UTC), True)

    async def list(self) -> list[KeyRecord]:
        return [self.record]


class _Store:
    keys = _Keys()


class _Bus:
    def __init__(self) -> None:
        self.published: list[Message] = []

    async def publish(self, message: Message) -> None:
        self.published.append(message)


async def accepted_copies(raw: bytes, payload_size: int) -> tuple[float, _Bus]:
    """Peak of traced memory while the mail is accepted, in copies of the payload."""
    bus = _Bus()
    ingest = MailIngest(_Store(), bus, mail_domain=DOMAIN)  # type: ignore[arg-type]
    await ingest.accept(text_mail(TEXT * 10), MAILBOX, via="smtp")  # first-use tables
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        await ingest.accept(raw, MAILBOX, via="smtp")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / payload_size, bus


async def test_a_large_attachment_is_queued_with_few_copies() -> None:
    """A 4 MB attachment: peak ≈ sealed blob + queued body (base64 twice over), was ≈ 10."""
    raw = attachment_mail(os.urandom(4 * MB))
    copies, bus = await accepted_copies(raw, 4 * MB)
    assert copies < 5.0
    submission = Submission.from_bytes(bus.published[-1].body)
    opened = json.loads(open_sealed(submission.sealed, PRIVATE, purpose="complaint"))
    expected = mail_payload(parse_mail(raw, our_domain=DOMAIN), raw, MAILBOX,
                            our_domain=DOMAIN, envelope_from=None, via="smtp")
    assert expected == opened
    assert 4 * MB == opened["attachments"][0]["size"]


async def test_a_large_text_body_is_queued_with_few_copies() -> None:
    """A 4 MB text body (text and raw mail both sealed): peak ≈ 6.5 copies, was ≈ 14."""
    text = TEXT * (4 * MB // len(TEXT.encode()))
    raw = text_mail(text)
    copies, bus = await accepted_copies(raw, len(raw))
    assert copies < 7.5
    submission = Submission.from_bytes(bus.published[-1].body)
    opened = json.loads(open_sealed(submission.sealed, PRIVATE, purpose="complaint"))
    assert text.strip() == opened["description"]
