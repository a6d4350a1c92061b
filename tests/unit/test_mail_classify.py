"""Automatic-mail classification, auto-reply policy, threading and language guessing."""

from __future__ import annotations

import pytest

from hotline.mail import (
    Language,
    guess_language,
    parse_mail,
    reference_tags,
    should_auto_reply,
    thread_ids,
)

pytestmark = pytest.mark.unit

OUR_DOMAIN = "hotline.localhost"


def crlf(text: str) -> bytes:
    """A mail written with ``\\n`` line ends, sent with CRLF."""
    return text.lstrip("\n").replace("\n", "\r\n").encode("utf-8")


HUMAN = crlf("""
From: Chan Tai Man <tm.chan@example.com.hk>
To: complaints-gd@hotline.localhost
Subject: Broken meter at my flat
Message-ID: <CAF=human1@mail.example.com.hk>
Date: Mon, 2 Mar 2026 09:15:00 +0800
Content-Type: text/plain; charset=utf-8

The meter has been broken for two weeks and nobody came.
""")


def test_person_gets_an_auto_reply() -> None:
    """A plain complaint from a person is not automated and may be acknowledged."""
    parsed = parse_mail(HUMAN)
    assert "none" == parsed.automation.kind
    assert should_auto_reply(parsed, OUR_DOMAIN)


EXCHANGE_OOF = crlf("""
From: Wong Siu Ming <sm.wong@corp.example>
To: complaints-gd@hotline.localhost
Subject: Automatic reply: [C-2026-000042] Your complaint was received
Thread-Topic: [C-2026-000042] Your complaint was received
Message-ID: <oof-1@corp.example>
In-Reply-To: <ack-42@hotline.localhost>
References: <ack-42@hotline.localhost>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: sm.wong@corp.example
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday.
""")


def test_exchange_out_of_office() -> None:
    """An Exchange out-of-office is recognised, tied to our mail, and never answered."""
    parsed = parse_mail(EXCHANGE_OOF)
    assert ("out_of_office", "<ack-42@hotline.localhost>") == (
        parsed.automation.kind,
        parsed.automation.original_message_id,
    )
    assert parsed.automation.suppress_auto_reply
    assert not should_auto_reply(parsed, OUR_DOMAIN)
    assert ["C-2026-000042"] == reference_tags(parsed.subject)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Subject: 自動回覆: 投訴\nAuto-Submitted: auto-replied", "out_of_office"),
        ("Subject: 自动答复: 投诉", "out_of_office"),
        ("Subject: Out of Office: complaint", "out_of_office"),
        ("Subject: 自动回复：您的邮件已收到", "auto_reply"),
        ("Subject: Thanks\nAuto-Submitted: auto-replied", "auto_reply"),
        ("Subject: Thanks\nX-Autoreply: yes", "auto_reply"),
        ("Subject: Thanks\nX-Autorespond: yes", "auto_reply"),
        ("Subject: Thanks\nPrecedence: auto_reply", "auto_reply"),
        ("Subject: Thanks\nReturn-Path: <>", "auto_reply"),
        ("Subject: News\nList-Id: <news.example.org>", "list"),
        ("Subject: News\nList-Unsubscribe: <mailto:u@example.org>", "list"),
        ("Subject: News\nPrecedence: bulk", "list"),
        ("Subject: Thanks\nAuto-Submitted: no", "none"),
        ("Subject: Out of hours billing is wrong", "none"),
    ],
)
def test_automation_kinds(headers: str, expected: str) -> None:
    """Headers and subject patterns decide the automation kind."""
    raw = crlf(f"From: x@example.org\nMessage-ID: <k@example.org>\n{headers}\n\nbody\n")
    parsed = parse_mail(raw)
    assert expected == parsed.automation.kind
    assert (expected == "none") == should_auto_reply(parsed, OUR_DOMAIN)


POSTFIX_DSN = crlf("""
Return-Path: <>
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: complaints-gd@hotline.localhost
Subject: Undelivered Mail Returned to Sender
Message-ID: <20260302091600.ABC@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="DSN.boundary"

--DSN.boundary
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com.
I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--DSN.boundary
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Final-Recipient: rfc822; nobody@example.com
Action: failed
Status: 5.1.1

--DSN.boundary
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: complaints-gd@hotline.localhost
To: nobody@example.com
Subject: [C-2026-000042] Your complaint was received
Message-ID: <ack-42@hotline.localhost>
Auto-Submitted: auto-replied

Thank you.

--DSN.boundary--
""")


def test_postfix_dsn_is_a_bounce_with_the_original_id() -> None:
    """A Postfix DSN is a bounce naming the Message-ID of the mail it returns."""
    parsed = parse_mail(POSTFIX_DSN)
    assert ("bounce", "<ack-42@hotline.localhost>") == (
        parsed.automation.kind,
        parsed.automation.original_message_id,
    )
    assert not should_auto_reply(parsed, OUR_DOMAIN)
    assert parsed.text.startswith("This is the mail system")


def test_dsn_with_returned_headers_only() -> None:
    """A DSN returning only text/rfc822-headers still yields the original Message-ID."""
    raw = (
        POSTFIX_DSN.replace(b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers")
        .replace(b"\r\n\r\nThank you.", b"")
        .replace(b"Return-Path: <>\r\n", b"")
        .replace(b"MAILER-DAEMON@mx.example.com", b"relay@mx.example.com")
    )
    parsed = parse_mail(raw)
    assert ("bounce", "<ack-42@hotline.localhost>") == (
        parsed.automation.kind,
        parsed.automation.original_message_id,
    )


def test_plain_text_bounce_from_postmaster() -> None:
    """A non-standard bounce from postmaster quoting the Message-ID is understood."""
    raw = crlf("""
From: postmaster@legacy.example.net
Subject: failure notice
Message-ID: <b1@legacy.example.net>

Sorry, we were unable to deliver your message.
--- Below this line is a copy of the message.
Message-ID: <ack-7@hotline.localhost>
Subject: [C-2026-000007]
""")
    parsed = parse_mail(raw)
    assert ("bounce", "<ack-7@hotline.localhost>") == (
        parsed.automation.kind,
        parsed.automation.original_message_id,
    )


def test_loop_on_our_domain() -> None:
    """X-Loop naming our domain is a loop; another domain's X-Loop is not."""
    ours = crlf("From: x@example.org\nX-Loop: complaints-gd@hotline.localhost\n\nhi\n")
    theirs = crlf("From: x@example.org\nX-Loop: helpdesk@example.org\n\nhi\n")
    assert "loop" == parse_mail(ours, our_domain=OUR_DOMAIN).automation.kind
    assert "none" == parse_mail(theirs, our_domain=OUR_DOMAIN).automation.kind
    assert not should_auto_reply(parse_mail(ours), OUR_DOMAIN)
    assert should_auto_reply(parse_mail(theirs), OUR_DOMAIN)


def test_auto_response_suppress_is_honoured() -> None:
    """X-Auto-Response-Suppress: OOF on a person's mail stops the auto-reply only."""
    parsed = parse_mail(HUMAN.replace(b"Date:", b"X-Auto-Response-Suppress: DR, OOF\r\nDate:"))
    assert "none" == parsed.automation.kind
    assert not should_auto_reply(parsed, OUR_DOMAIN)


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@example.com",
        "no-reply@example.com",
        "do-not-reply@example.com",
        "MAILER-DAEMON@example.com",
        "postmaster@example.com",
        "list-bounces@example.com",
        "office@hotline.localhost",
    ],
)
def test_system_senders_get_no_auto_reply(sender: str) -> None:
    """No-reply, system and own-domain senders never get an auto-reply."""
    parsed = parse_mail(HUMAN.replace(b"tm.chan@example.com.hk", sender.encode()))
    assert not should_auto_reply(parsed, OUR_DOMAIN)


OUTLOOK_REPLY_WITHOUT_TAG = crlf("""
From: Chan Tai Man <tm.chan@example.com.hk>
To: complaints-gd@hotline.localhost
Subject: RE: Your complaint was received
Message-ID: <SG2PR01MB1234@apcprd01.prod.outlook.com>
In-Reply-To: <ack-42@hotline.localhost>
References: <CAF=human1@mail.example.com.hk>
 <ack-42@hotline.localhost>
Thread-Index: AQHZ
Content-Type: text/plain; charset=utf-8

The meter is still broken.
""")


def test_outlook_reply_without_tag_threads_by_references() -> None:
    """A reply that lost the tag still names our acknowledgement in its thread ids."""
    parsed = parse_mail(OUTLOOK_REPLY_WITHOUT_TAG)
    assert [] == reference_tags(parsed.subject)
    assert ["<ack-42@hotline.localhost>", "<CAF=human1@mail.example.com.hk>"] == thread_ids(parsed)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [C-2026-000042] Your complaint", ["C-2026-000042"]),
        ("回覆：【C-2026-000042】您的投訴", ["C-2026-000042"]),
        ("答复：［Ｃ－２０２６－００００４２］您的投诉", ["C-2026-000042"]),
        (
            "Fwd: [r-2025-000001] and [C-2026-000002] [C-2026-000002]",
            ["R-2025-000001", "C-2026-000002"],
        ),
        ("[C-2026-42] too short, C-2026-000042 without brackets", []),
    ],
)
def test_reference_tags(subject: str, expected: list[str]) -> None:
    """Case tags are found in ASCII and full-width brackets, deduplicated, normalised."""
    assert expected == reference_tags(subject)


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        (
            "您好，我是香港的客戶。上個月的帳單金額不正確，已經打電話三次都沒有人回覆，請儘快處理。",
            "en",
            "zh-Hant",
        ),
        (
            "您好，我是广州的客户。上个月的账单金额不正确，已经打电话三次都没有人回复，请尽快处理。",
            "zh-Hant",
            "zh-Hans",
        ),
        ("Hello, my bill for last month is wrong and nobody answers the phone.", "zh-Hant", "en"),
        ("好的", "en", "en"),
        ("Hi 你好 thanks 謝謝 ok 是 yes 的", "en", "en"),
        ("这个问题我们要处理", "zh-Hant", "zh-Hans"),
        ("你好我是在的人有他", "en", "en"),
    ],
)
def test_guess_language(text: str, default: Language, expected: str) -> None:
    """繁體, 简体 and English are told apart; short, mixed or script-neutral text: default."""
    assert expected == guess_language(text, default)


def test_guess_language_short_text_uses_default() -> None:
    """The same short text follows whatever default the mailbox has."""
    assert ("en", "zh-Hant") == (guess_language("好", "en"), guess_language("好", "zh-Hant"))


def test_parsed_mail_carries_the_language() -> None:
    """parse_mail guesses the language of subject and text."""
    parsed = parse_mail(
        crlf("""
From: a@example.cn
Subject: 投诉：服务太差
Content-Type: text/plain; charset=utf-8

你们的工作人员态度很差，我要求退款并道歉。
""")
    )
    assert "zh-Hans" == parsed.language
