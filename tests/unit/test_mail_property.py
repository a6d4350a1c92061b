"""Property tests: no input, however broken, makes parse_mail raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.mail import MailLimits, parse_mail, should_auto_reply

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
SEEDS = [
    (DATA / name).read_bytes()
    for name in (
        "stalwart/rfc/000.eml",
        "stalwart/thirdparty/013.eml",
        "php-mime-mail-parser/failure.eml",
        "php-mime-mail-parser/issue116",
        "spamscope/mail_test_9",
        "mime4j/testmsgs/base64encoded-rfc822message-nested.msg",
    )
]
SMALL = MailLimits(max_bytes=200_000, max_depth=4, max_parts=20, max_attachment_bytes=50_000)
# No example database: unit tests leave no files behind in the work tree.
FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def mutated_mail(draw: st.DrawFn) -> bytes:
    """A real mail with a few random byte edits: overwrite, insert, delete, truncate."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, max(len(raw) - 1, 0)))
        edit = draw(st.sampled_from(["overwrite", "insert", "delete", "truncate"]))
        chunk = draw(st.binary(min_size=1, max_size=16))
        if edit == "overwrite":
            raw[position : position + len(chunk)] = chunk
        elif edit == "insert":
            raw[position:position] = chunk
        elif edit == "delete":
            del raw[position : position + len(chunk)]
        else:
            del raw[position:]
    return bytes(raw)


MIME_NOISE = st.lists(
    st.sampled_from(
        [
            b"Content-Type: multipart/mixed; boundary=b\r\n",
            b"Content-Type: message/rfc822\r\n",
            b"Content-Type: text/plain; charset=gb2312\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Subject: =?utf-8?B?5L2g5aW9?= =?gb2312?Q?=C4=E3?=\r\n",
            b"\r\n",
            b"--b\r\n",
            b"--b--\r\n",
            b"From: =?x?q?\xff?= <a@b>\r\n",
            b"\xe4\xbd\xa0\xff\x1b$B-!\r\n",
        ]
    ),
    max_size=40,
).map(b"".join)


def check(raw: bytes) -> None:
    """Parse with default and small limits and use the result; nothing may raise."""
    for limits in (MailLimits(), SMALL):
        parsed = parse_mail(raw, limits=limits, our_domain="hotline.localhost")
        assert parsed.message_id.startswith("<")
        assert isinstance(parsed.text, str)
        should_auto_reply(parsed, "hotline.localhost")


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    """Arbitrary bytes parse without an exception."""
    check(raw)


@FAST
@given(MIME_NOISE)
def test_mime_shaped_noise_never_raises(raw: bytes) -> None:
    """Random sequences of MIME header and boundary lines parse without an exception."""
    check(raw)


@FAST
@given(mutated_mail())
def test_mutated_real_mails_never_raise(raw: bytes) -> None:
    """Real mails with random byte edits parse without an exception."""
    check(raw)
