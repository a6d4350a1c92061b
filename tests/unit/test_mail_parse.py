"""parse_mail: charsets, MIME structure, limits and bombs, with mails built in the test."""

from __future__ import annotations

import base64
import hashlib
import logging
import struct
import time
import urllib.parse

import pytest

from hotline.mail import MailLimits, parse_mail

pytestmark = pytest.mark.unit


def mail(headers: str, body: bytes = b"body\r\n", *, head_bytes: bytes = b"") -> bytes:
    """A mail from ASCII header lines (``\\n``-separated), extra raw header bytes and a body."""
    head = headers.strip("\n").replace("\n", "\r\n").encode("ascii") + b"\r\n"
    return head + head_bytes + b"\r\n" + body


def plain(charset: str | None, body: bytes, subject: str = "t") -> bytes:
    """A single-part text/plain mail with the given charset label (or none)."""
    label = f"; charset={charset}" if charset else ""
    return mail(
        f"From: a@example.org\nSubject: {subject}\nMessage-ID: <m1@example.org>\n"
        f"MIME-Version: 1.0\nContent-Type: text/plain{label}\n"
        "Content-Transfer-Encoding: 8bit",
        body,
    )


# --- charsets ---------------------------------------------------------------------------


def test_gb2312_label_reads_gb18030_characters() -> None:
    """A body labelled gb2312 holding GBK and GB18030-only characters decodes fully."""
    text = "朱镕基 𠀋 投诉"
    with pytest.raises(UnicodeDecodeError):
        text.encode("gb18030").decode("gb2312")
    parsed = parse_mail(plain("gb2312", text.encode("gb18030")))
    assert text == parsed.text
    assert "charset_guessed" not in parsed.flags


def test_big5_label_reads_hkscs_characters() -> None:
    """A body labelled big5 holding a Hong Kong (HKSCS) character decodes fully."""
    text = "我哋嘅服務好差㗎"
    with pytest.raises(UnicodeEncodeError):
        text.encode("big5")
    assert text == parse_mail(plain("big5", text.encode("big5hkscs"))).text


def test_iso2022jp_with_nec_vendor_characters() -> None:
    """ISO-2022-JP carrying NEC row-13 characters (①, ㈱) decodes through CP932."""
    raw = b"\x1b$B-!%F%9%H-j\x1b(B ok"
    with pytest.raises(UnicodeDecodeError):
        raw.decode("iso2022_jp_2")
    assert "①テスト㈱ ok" == parse_mail(plain("ISO-2022-JP", raw)).text


def test_plain_iso2022jp_still_uses_the_standard_codec() -> None:
    """Ordinary ISO-2022-JP text decodes with the standard codec."""
    text = "こんにちは、苦情です"
    assert text == parse_mail(plain('"iso-2022-jp"', text.encode("iso2022_jp"))).text


def test_ks_c_5601_reads_as_cp949() -> None:
    """ks_c_5601-1987 text with a CP949-only syllable decodes fully."""
    raw = "안녕하세요 갂".encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("euc_kr")
    assert "안녕하세요 갂" == parse_mail(plain("ks_c_5601-1987", raw)).text


def test_utf7_body() -> None:
    """A UTF-7 body decodes."""
    assert "Hello 世界" == parse_mail(plain("utf-7", "Hello 世界".encode("utf-7"))).text


def test_wrong_label_is_detected_and_flagged() -> None:
    """GBK bytes labelled utf-8 are detected as Chinese and the mail is flagged."""
    text = "您好，我们的服务质量很差，请尽快处理这个问题，谢谢。"
    parsed = parse_mail(plain("utf-8", text.encode("gbk")))
    assert text == parsed.text
    assert "charset_guessed" in parsed.flags


def test_utf8_labelled_latin1_is_read_as_utf8() -> None:
    """UTF-8 bytes labelled iso-8859-1 (a common mislabel) are read as UTF-8."""
    parsed = parse_mail(plain("iso-8859-1", "Grüße aus Köln".encode()))
    assert "Grüße aus Köln" == parsed.text
    assert "charset_guessed" in parsed.flags


def test_missing_label_is_detected() -> None:
    """Big5 bytes without any charset label are detected and flagged."""
    text = "您好，我是香港的客戶。我們的服務質量很差，請儘快處理這個問題。"
    parsed = parse_mail(plain(None, text.encode("big5")))
    assert text == parsed.text
    assert "charset_guessed" in parsed.flags


def test_unknown_label_never_crashes() -> None:
    """An unknown charset label falls back to detection."""
    assert "plain words" == parse_mail(plain("x-no-such-charset", b"plain words")).text


def test_undecodable_bytes_are_replaced() -> None:
    """Bytes invalid in every reading become U+FFFD, not an exception."""
    parsed = parse_mail(plain("utf-8", b"ok \xff\xfe\xfa\x80 end"))
    assert parsed.text.startswith("ok ")
    assert parsed.text.endswith(" end")


def test_rfc2047_gb2312_header() -> None:
    """Encoded words labelled gb2312 decode as GB18030, also when split mid-character."""
    encoded = "投诉：朱镕基".encode("gb18030")
    first, second = base64.b64encode(encoded[:5]).decode(), base64.b64encode(encoded[5:]).decode()
    raw = mail(
        f"From: =?gb2312?B?{base64.b64encode('张三'.encode('gb2312')).decode()}?= <z@example.cn>\n"
        f"Subject: =?GB2312?B?{first}?= =?gb2312?B?{second}?=\nMessage-ID: <a@b>",
    )
    parsed = parse_mail(raw)
    assert "投诉：朱镕基" == parsed.subject
    assert "张三" == parsed.from_name
    assert "z@example.cn" == parsed.from_address
    assert "charset_guessed" not in parsed.flags


def test_raw_8bit_header_uses_body_charset() -> None:
    """An unencoded GBK subject is read with the body's charset."""
    raw = mail(
        "From: a@example.org\nMIME-Version: 1.0\nContent-Type: text/plain; charset=gbk",
        "正文".encode("gbk"),
        head_bytes=b"Subject: " + "服务投诉".encode("gbk") + b"\r\n",
    )
    parsed = parse_mail(raw)
    assert "服务投诉" == parsed.subject
    assert "正文" == parsed.text
    assert "header_defects" in parsed.flags


# --- structure --------------------------------------------------------------------------


def multipart(
    parts: list[bytes], subtype: str = "mixed", extra: str = "", boundary: str = "BOUND"
) -> bytes:
    """A multipart mail around ready-made parts."""
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n"
    return mail(
        "From: a@example.org\nSubject: multi\nMessage-ID: <multi@example.org>\n"
        f'MIME-Version: 1.0\nContent-Type: multipart/{subtype}; boundary="{boundary}"{extra}',
        body,
    )


def test_rfc2231_continued_chinese_filename() -> None:
    """A GB2312 file name split over RFC 2231 continuations is decoded."""
    quoted = urllib.parse.quote_from_bytes("投诉材料（第一份）.docx".encode("gb2312"))
    half = len(quoted) // 2
    while quoted[half - 1] == "%" or quoted[half - 2] == "%":
        half += 1
    attachment = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment;\r\n"
        b" filename*0*=gb2312''" + quoted[:half].encode() + b";\r\n"
        b" filename*1*=" + quoted[half:].encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"DOC")
    )
    parsed = parse_mail(multipart([b"Content-Type: text/plain\r\n\r\nsee file", attachment]))
    assert ["投诉材料（第一份）.docx"] == [a.filename for a in parsed.attachments]
    assert b"DOC" == parsed.attachments[0].payload
    assert "see file" == parsed.text


def test_nested_message_is_an_attachment_not_body() -> None:
    """An attached mail is listed as message/rfc822, its text not merged into the body."""
    inner = mail(
        "From: x@example.org\nSubject: Forwarded bill\nMessage-ID: <inner@x>", b"inner secret text"
    )
    raw = multipart(
        [
            b"Content-Type: text/plain\r\n\r\nouter text",
            b"Content-Type: message/rfc822\r\n\r\n" + inner,
        ]
    )
    parsed = parse_mail(raw)
    assert "outer text" == parsed.text
    assert [("message/rfc822", "Forwarded bill.eml")] == [
        (a.content_type, a.filename) for a in parsed.attachments
    ]
    assert inner == parsed.attachments[0].payload


def test_parts_of_attached_mails_count_toward_the_limit() -> None:
    """Parts inside an attached mail are counted: a small part budget is exceeded."""
    inner = multipart([b"Content-Type: text/plain\r\n\r\nx"] * 5, boundary="INNER")
    raw = multipart(
        [b"Content-Type: text/plain\r\n\r\nouter", b"Content-Type: message/rfc822\r\n\r\n" + inner]
    )
    parsed = parse_mail(raw, limits=MailLimits(max_parts=5))
    assert "too_many_parts" in parsed.flags
    assert "outer" == parsed.text


def test_mbox_from_line_is_tolerated() -> None:
    """A leading mbox ``From `` line does not hide the headers."""
    raw = b"From someone@example.org Mon Jan  1 00:00:00 2024\n" + plain(None, b"hi", "mbox")
    parsed = parse_mail(raw)
    assert ("mbox", "a@example.org", "hi") == (parsed.subject, parsed.from_address, parsed.text)


def test_html_only_mail_gives_text_and_keeps_html() -> None:
    """An HTML-only mail yields readable text, and the HTML itself is kept."""
    html = "<html><body><p>您好，</p><p>Bill is <b>wrong</b>.</p><script>x()</script></body></html>"
    parsed = parse_mail(plain("utf-8", html.encode()).replace(b"text/plain", b"text/html"))
    assert "您好，\n\nBill is wrong." == parsed.text
    assert html == parsed.html


def test_alternative_prefers_plain_text_and_keeps_html() -> None:
    """In multipart/alternative the plain part is the text and the HTML is kept."""
    parsed = parse_mail(
        multipart(
            [
                b"Content-Type: text/plain; charset=utf-8\r\n\r\nplain version",
                b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>html version</p>",
            ],
            "alternative",
        )
    )
    assert ("plain version", "<p>html version</p>") == (parsed.text, parsed.html)
    assert () == parsed.attachments


def test_inline_image_of_related_html() -> None:
    """An image of multipart/related is an inline attachment with its Content-ID."""
    parsed = parse_mail(
        multipart(
            [
                b"Content-Type: text/html\r\n\r\n<img src=cid:logo@x> hello",
                b"Content-Type: image/png\r\nContent-ID: <logo@x>\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x89PNG"),
            ],
            "related",
        )
    )
    assert [("image/png", "<logo@x>", True, b"\x89PNG")] == [
        (a.content_type, a.content_id, a.is_inline, a.payload) for a in parsed.attachments
    ]
    assert "hello" == parsed.text


def test_headers_are_normalised() -> None:
    """Message-ID, In-Reply-To, References and Date come out normalised."""
    parsed = parse_mail(
        mail(
            'From: "Li, Lei" <li@example.cn>\nTo: a@x.org, B <b@y.org>\nCc: c@z.org\n'
            "Message-ID:   <abc@example.cn>  \nIn-Reply-To: <prev@hotline.localhost>\n"
            "References: <first@x>\n <prev@hotline.localhost>\nDate: Tue, 7 Apr 2026 10:00:01 -0000"
        )
    )
    assert "<abc@example.cn>" == parsed.message_id
    assert ("Li, Lei", "li@example.cn") == (parsed.from_name, parsed.from_address)
    assert (("a@x.org", "b@y.org"), ("c@z.org",)) == (parsed.to, parsed.cc)
    assert "<prev@hotline.localhost>" == parsed.in_reply_to
    assert ("<first@x>", "<prev@hotline.localhost>") == parsed.references
    assert parsed.date is not None
    assert 0.0 == parsed.date.utcoffset().total_seconds()  # type: ignore[union-attr]


def test_missing_message_id_is_a_stable_hash() -> None:
    """Without a Message-ID the id is derived from the raw bytes, the same every time."""
    raw = mail("From: a@example.org\nSubject: no id")
    expected = f"<{hashlib.sha256(raw).hexdigest()}@hotline.invalid>"
    assert expected == parse_mail(raw).message_id
    assert expected == parse_mail(raw).message_id


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 100, b"\r\n\r\n", b"From \n", b"=?x?q?"])
def test_garbage_never_raises(raw: bytes) -> None:
    """Empty, binary and nonsense input still gives a ParsedMail with an id."""
    assert parse_mail(raw).message_id.endswith("@hotline.invalid>")


def tnef_blob(filename: bytes, data: bytes) -> bytes:
    """A minimal TNEF stream with one attachment (title and data attributes)."""

    def attribute(level: int, name: int, kind: int, payload: bytes) -> bytes:
        checksum = sum(payload) & 0xFFFF
        return (
            struct.pack("<BHHI", level, name, kind, len(payload))
            + payload
            + struct.pack("<H", checksum)
        )

    return (
        struct.pack("<IH", 0x223E9F78, 0x0001)
        + attribute(2, 0x9002, 0x0006, b"\x00" * 14)
        + attribute(2, 0x8010, 0x0001, filename + b"\x00")
        + attribute(2, 0x800F, 0x0006, data)
    )


def test_tnef_winmail_dat_is_expanded() -> None:
    """An Outlook winmail.dat is replaced by the files it carries."""
    blob = tnef_blob(b"invoice.txt", b"hello from TNEF")
    parsed = parse_mail(
        multipart(
            [
                b"Content-Type: text/plain\r\n\r\nsee attachment",
                b'Content-Type: application/ms-tnef; name="winmail.dat"\r\n'
                b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(blob),
            ]
        )
    )
    assert [("invoice.txt", b"hello from TNEF")] == [
        (a.filename, a.payload) for a in parsed.attachments
    ]


def test_unreadable_tnef_is_kept_as_is() -> None:
    """A winmail.dat the library cannot read stays one attachment."""
    parsed = parse_mail(
        multipart(
            [
                b'Content-Type: application/ms-tnef; name="winmail.dat"\r\n\r\nnot tnef at all',
            ]
        )
    )
    assert [("winmail.dat", b"not tnef at all")] == [
        (a.filename, a.payload) for a in parsed.attachments
    ]


# --- limits and bombs -------------------------------------------------------------------


def nested(depth: int) -> bytes:
    """A mail nesting multipart/mixed ``depth`` levels deep."""
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--" % i for i in reversed(range(depth)))
    return (
        b"From: a@example.org\r\nSubject: deep\r\n"
        + opening
        + (b"Content-Type: text/plain\r\n\r\nbottom")
        + closing
        + b"\r\n"
    )


def timed(raw: bytes) -> tuple[float, frozenset[str]]:
    """Seconds spent parsing ``raw`` (default limits) and the flags it got."""
    start = time.perf_counter()
    parsed = parse_mail(raw)
    return time.perf_counter() - start, frozenset(parsed.flags)


def test_depth_bomb_is_flagged_fast() -> None:
    """1000 nested multiparts are cut at the depth limit, flagged, quickly."""
    seconds, flags = timed(nested(1000))
    assert "too_deep" in flags
    assert seconds < 2.0


def test_moderate_nesting_reaches_the_bottom() -> None:
    """Nesting within the limit is fully read."""
    parsed = parse_mail(nested(5))
    assert ("bottom", frozenset()) == (parsed.text, parsed.flags)


def test_part_bomb_is_flagged_fast() -> None:
    """10,000 parts stop at the part limit, flagged, quickly."""
    raw = multipart([b"Content-Type: application/octet-stream\r\n\r\nx"] * 10_000)
    start = time.perf_counter()
    parsed = parse_mail(raw)
    assert time.perf_counter() - start < 2.0
    assert "too_many_parts" in parsed.flags
    assert 199 == len(parsed.attachments)


def test_huge_attachment_over_the_limit_is_flagged_not_kept() -> None:
    """A base64 part beyond the decoded-attachment budget is listed with its size, empty."""
    payload = base64.encodebytes(b"\x00" * 3 * 1024 * 1024)
    raw = multipart(
        [
            b"Content-Type: text/plain\r\n\r\nstill here",
            b"Content-Type: application/zip; name=big.zip\r\nContent-Transfer-Encoding: base64"
            b"\r\n\r\n" + payload,
        ]
    )
    parsed = parse_mail(raw, limits=MailLimits(max_attachment_bytes=1024 * 1024))
    assert "attachments_over_size" in parsed.flags
    assert ("still here", "big.zip", True, b"") == (
        parsed.text,
        parsed.attachments[0].filename,
        parsed.attachments[0].truncated,
        parsed.attachments[0].payload,
    )
    assert parsed.attachments[0].size >= 3 * 1024 * 1024


def test_mail_over_the_size_limit_is_parsed_in_part() -> None:
    """A mail bigger than max_bytes keeps its headers and is flagged over_size/truncated."""
    raw = plain("utf-8", b"x" * 200_000, "big one")
    parsed = parse_mail(raw, limits=MailLimits(max_bytes=100_000))
    assert {"over_size", "truncated"} <= parsed.flags
    assert "big one" == parsed.subject


# --- privacy ----------------------------------------------------------------------------


def test_parsing_logs_no_mail_content(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing of a mail's content reaches a log record, even at DEBUG from libraries."""
    secret = "SECRET-7f3a 举报内容"
    tnef = tnef_blob(b"SECRET-7f3a.txt", secret.encode())
    raw = multipart(
        [
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + secret.encode("gbk"),
            b"Content-Type: text/html\r\n\r\n<p>" + secret.encode() + b"</p>",
            b"Content-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(tnef),
        ]
    ).replace(b"Subject: multi", b"Subject: " + secret.encode())
    with caplog.at_level(logging.DEBUG):
        parse_mail(raw)
        parse_mail(raw[: len(raw) // 2])
    assert [] == [r.getMessage() for r in caplog.records if "SECRET-7f3a" in r.getMessage()]


@pytest.mark.parametrize(
    "raw",
    [
        b"From: " + b"a@b, " * 1_000_000 + b"\r\nSubject: x\r\n\r\nbody",
        b"X-A: b\r\n" * 500_000 + b"\r\nbody",
        b"x" * 5_000_000,
    ],
    ids=["5MB-address-header", "500k-header-fields", "5MB-without-line-breaks"],
)
def test_header_bombs_are_flagged_fast(raw: bytes) -> None:
    """Giant header blocks are cut, flagged and parsed quickly."""
    start = time.perf_counter()
    parsed = parse_mail(raw)
    assert time.perf_counter() - start < 2.0
    assert "header_defects" in parsed.flags
