"""Complaint mail in the router: new cases, threading, automatic mail, acknowledgements."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog

from hotline.crypto import open_sealed
from hotline.mail import MailLimits
from hotline.mail.ingest import MailIngest
from hotline.mail.outbound import OutboundMail
from hotline.mail.replies import queue_complaint_reply
from hotline.services import load_keyring
from tests.support.mailflow import DOMAIN, MailFlow, mail_flow

pytestmark = pytest.mark.integration

GD = f"complaints-gd@{DOMAIN}"
CUSTOMER = "li.ming@example.cn"

SIMPLIFIED = (
    "From: =?UTF-8?B?5p2O5piO?= <li.ming@example.cn>\r\n"
    f"To: {GD}\r\n"
    "Subject: =?UTF-8?B?5a625Lit5a695bim57u05L+u5LiA55u05rKh5pyJ5Lq65p2l?=\r\n"
    "Message-ID: <20260301093000.1@mail.example.cn>\r\n"
    "Date: Sun, 01 Mar 2026 09:30:00 +0800\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=GB2312\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
).encode() + (
    "你们好，我家的宽带从上周开始一直断线，报修了三次都没有人来上门维修，"
    "客服电话也一直打不通。请尽快处理，否则我要向消费者协会投诉。\r\n"
).encode("gb18030")

TRADITIONAL = (
    b"From: Chan Tai Man <tm.chan@example.hk>\r\n"
    b"To: complaints-hk@hotline.localhost\r\n"
    b"Subject: =?Big5?B?pHWzebZpq9e6Q6Zo?=\r\n"
    b"Message-ID: <hk-1@example.hk>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=Big5\r\n\r\n"
) + (
    "你們好，我家樓下的工程已經延誤了三個月，噪音問題非常嚴重，"
    "多次聯絡你們的職員都沒有回覆，請盡快處理並給我一個說法。\r\n"
).encode("big5hkscs")

ENGLISH = (
    b"From: Jane Doe <jane.doe@example.com>\r\n"
    b"To: overseas@hotline.localhost\r\n"
    b"Subject: Billing error on my account\r\n"
    b"Message-ID: <CAF=abc123@mail.gmail.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hello, I was charged twice for the installation in March and nobody answers my calls. "
    b"Please refund the second payment and explain what happened.\r\n"
)


def outlook_reply(in_reply_to: str, references: str, *, sender: str = CUSTOMER) -> bytes:
    """An Outlook reply to our acknowledgement whose subject lost the tag."""
    return (
        f"From: Li Ming <{sender}>\r\n"
        f"To: {GD}\r\n"
        "Subject: =?utf-8?B?562U5aSNOiDlrr3luKbpl67popg=?=\r\n"
        "Message-ID: <SN6PR01MB4000.outlook-reply-1@SN6PR01MB4000.namprd01.prod.outlook.com>\r\n"
        f"In-Reply-To: {in_reply_to}\r\n"
        f"References: {references}\r\n"
        "Thread-Topic: =?utf-8?B?5a695bim6Zeu6aKY?=\r\n"
        "Thread-Index: AdoVnA1Ty8yCk2EoRDCj3Yh3aQ==\r\n"
        "X-MS-Has-Attach:\r\n"
        "X-MS-TNEF-Correlator:\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "补充一下：维修师傅今天还是没有来，附上报修单号 8812345。\r\n"
    ).encode()


def exchange_out_of_office(in_reply_to: str) -> bytes:
    """An Exchange automatic reply to our acknowledgement."""
    return (
        f"From: Li Ming <{CUSTOMER}>\r\n"
        f"To: {GD}\r\n"
        "Subject: Automatic reply: [C-2026-000001] Complaint received\r\n"
        "Message-ID: <oof-1@SN6PR01MB4000.namprd01.prod.outlook.com>\r\n"
        f"In-Reply-To: {in_reply_to}\r\n"
        f"References: {in_reply_to}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "X-Auto-Response-Suppress: All\r\n"
        "X-MS-Exchange-Inbox-Rules-Loop: li.ming@example.cn\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "I am out of the office until 10 March with limited access to e-mail.\r\n"
    ).encode()


def postfix_dsn(returned_message_id: str) -> bytes:
    """A Postfix delivery status notification returning our acknowledgement's headers."""
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@mx.example.cn (Mail Delivery System)\r\n"
        f"To: {GD}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-Id: <20260301013001.5F2D3C0123@mx.example.cn>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        "\tboundary=\"5F2D3C0123.1772328601/mx.example.cn\"\r\n\r\n"
        "--5F2D3C0123.1772328601/mx.example.cn\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.example.cn.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        "<li.ming@example.cn>: mailbox full\r\n\r\n"
        "--5F2D3C0123.1772328601/mx.example.cn\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.cn\r\n\r\n"
        "Final-Recipient: rfc822; li.ming@example.cn\r\n"
        "Action: failed\r\n"
        "Status: 5.2.2\r\n\r\n"
        "--5F2D3C0123.1772328601/mx.example.cn\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: {GD}\r\n"
        f"To: {CUSTOMER}\r\n"
        f"Message-ID: {returned_message_id}\r\n"
        "Subject: [C-2026-000001] Complaint received\r\n\r\n"
        "--5F2D3C0123.1772328601/mx.example.cn--\r\n"
    ).encode()


def plain(subject: str, *, sender: str = CUSTOMER, message_id: str = "<p-1@example.cn>",
          extra: str = "", body: str = "我家的宽带已经断线一周了，请尽快派人维修，谢谢。") -> bytes:
    return (
        f"From: {sender}\r\nTo: {GD}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n").encode()


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[MailFlow]:
    async with mail_flow(tmp_path) as instance:
        yield instance


async def _sealed_payload(flow: MailFlow, submission_id: str) -> dict[str, object]:
    case = await flow.case(submission_id)
    private = await flow.router._private_key(case.content.kid)
    doc: dict[str, object] = json.loads(open_sealed(case.content, private, purpose="complaint"))
    return doc


async def test_new_mail_becomes_a_complaint_case_of_the_mailbox_unit(flow: MailFlow) -> None:
    """A mail to complaints-gd@ opens one complaint case of unit GD, content sealed."""
    submission_id = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(submission_id)
    assert ("complaint", "GD", "email") == (case.kind, case.unit, case.channel)
    assert case.reference.startswith("C-")
    payload = await _sealed_payload(flow, submission_id)
    assert CUSTOMER == payload["email"]
    assert "宽带" in str(payload["description"])
    assert "raw" in payload


async def test_acknowledgement_headers_follow_the_contract(flow: MailFlow) -> None:
    """The acknowledgement carries the tag, threading and RFC 3834 headers."""
    submission_id = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(submission_id)
    [ack] = flow.sent()
    assert f"[{case.reference}]" in ack["Subject"]
    assert "<20260301093000.1@mail.example.cn>" == ack["In-Reply-To"]
    assert "<20260301093000.1@mail.example.cn>" == ack["References"]
    assert "auto-replied" == ack["Auto-Submitted"]
    assert "All" == ack["X-Auto-Response-Suppress"]
    assert CUSTOMER == ack["To"].addresses[0].addr_spec
    assert GD == ack["From"].addresses[0].addr_spec
    assert ack["Message-ID"].endswith(f"@{DOMAIN}>")
    assert "mail.sent" in await flow.audit_types(case.id)
    # The acknowledgement clock of the workflow is met by the queued acknowledgement.
    acknowledged = await flow.case(submission_id)
    assert "acknowledged" == acknowledged.status
    assert "workflow.acknowledge" in await flow.audit_types(case.id)


@pytest.mark.parametrize(("raw", "language_text", "reference_phrase"), [
    (SIMPLIFIED, "投诉已受理", "受理编号为"),
    (TRADITIONAL, "投訴已受理", "受理編號為"),
    (ENGLISH, "Complaint received", "Its reference is"),
])
async def test_acknowledgement_language_follows_the_mail(
        flow: MailFlow, raw: bytes, language_text: str, reference_phrase: str) -> None:
    """Traditional, Simplified and English complaints are acknowledged in their language."""
    to = {SIMPLIFIED: GD, TRADITIONAL: f"complaints-hk@{DOMAIN}",
          ENGLISH: f"overseas@{DOMAIN}"}[raw]
    submission_id = await flow.deliver(raw, to=to)
    await flow.settle()
    case = await flow.case(submission_id)
    [ack] = flow.sent()
    body = ack.get_content()
    assert language_text in ack["Subject"]
    assert f"{reference_phrase} {case.reference}" in body.replace("\n", " ")


async def test_mailbox_default_language_when_the_text_does_not_tell(flow: MailFlow) -> None:
    """A too-short mail to the HK mailbox is acknowledged in Traditional Chinese."""
    raw = plain("ok", body="42", message_id="<short@example.hk>").replace(
        GD.encode(), f"complaints-hk@{DOMAIN}".encode())
    await flow.deliver(raw, to=f"complaints-hk@{DOMAIN}")
    await flow.settle()
    [ack] = flow.sent()
    assert "投訴已受理" in ack["Subject"]


async def test_outlook_reply_without_tag_joins_by_references(flow: MailFlow) -> None:
    """A reply naming our acknowledgement's Message-ID joins the case, and gets no new ack."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(first)
    [ack] = flow.sent()
    reply = await flow.deliver(outlook_reply(
        ack["Message-ID"], f"<20260301093000.1@mail.example.cn> {ack['Message-ID']}"))
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
    assert [reply] == [m.id for m in await flow.env.store.cases.messages(case.id)]
    assert 1 == len(flow.sent())
    assert await flow.env.store.cases.by_submission(reply) is None


async def test_reply_to_the_complainants_own_mail_joins(flow: MailFlow) -> None:
    """In-Reply-To naming the complainant's first mail (not ours) joins as well."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    await flow.deliver(plain("Re: 补充", message_id="<p-2@example.cn>",
                             extra="In-Reply-To: <20260301093000.1@mail.example.cn>\r\n"))
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
    assert 1 == len(await flow.env.store.cases.messages((await flow.case(first)).id))


async def test_tag_from_the_complainant_joins(flow: MailFlow) -> None:
    """A new mail with the case tag in the subject from the complainant joins the case."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(first)
    await flow.deliver(plain(f"[{case.reference}] 补充材料", message_id="<p-3@example.cn>"))
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
    assert 1 == len(await flow.env.store.cases.messages(case.id))


async def test_tag_from_a_stranger_does_not_join(flow: MailFlow) -> None:
    """The same tag from a sender who is not the complainant opens a case of its own."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(first)
    other = await flow.deliver(plain(f"[{case.reference}] 我也要投诉", sender="x@evil.example",
                                     message_id="<x-1@evil.example>"))
    await flow.settle()
    assert 2 == await flow.env.store.cases.count()
    assert [] == await flow.env.store.cases.messages(case.id)
    assert case.id != (await flow.case(other)).id


async def test_exchange_out_of_office_joins_without_reply(flow: MailFlow) -> None:
    """An out-of-office answer to our acknowledgement joins the case; no reply, no reopen."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(first)
    [ack] = flow.sent()
    await flow.deliver(exchange_out_of_office(ack["Message-ID"]))
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
    [message] = await flow.env.store.cases.messages(case.id)
    assert "email:automatic" == message.actor
    assert 1 == len(flow.sent())
    assert case.status == (await flow.env.store.cases.get(case.id)).status  # type: ignore[union-attr]


async def test_postfix_bounce_joins_the_case_of_the_returned_message(flow: MailFlow) -> None:
    """A DSN returning our acknowledgement's Message-ID joins that case without a reply."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(first)
    [ack] = flow.sent()
    await flow.deliver(postfix_dsn(ack["Message-ID"]))
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
    assert 1 == len(await flow.env.store.cases.messages(case.id))
    assert 1 == len(flow.sent())


@pytest.mark.parametrize("raw", [
    plain("Newsletter", extra="List-Id: <news.example.cn>\r\nPrecedence: bulk\r\n"),
    plain("通知", sender="no-reply@example.cn"),
    plain("自动回复：我不在办公室", extra="Auto-Submitted: auto-replied\r\n"),
])
async def test_automatic_mail_without_a_case_is_kept_but_not_answered(
        flow: MailFlow, raw: bytes) -> None:
    """Lists, no-reply senders and orphan auto-replies become cases and get no reply."""
    submission_id = await flow.deliver(raw)
    await flow.settle()
    case = await flow.case(submission_id)
    assert [] == flow.sent()
    assert "mail.acknowledgement_skipped" in await flow.audit_types(case.id)


async def test_recipient_cap_limits_acknowledgements(flow: MailFlow) -> None:
    """Five new complaints from one address within an hour get three acknowledgements."""
    for n in range(5):
        await flow.deliver(plain(f"投诉 {n}", message_id=f"<cap-{n}@example.cn>",
                                 body=f"第{n}次投诉：宽带又断线了，请尽快处理。"))
    await flow.settle()
    assert 5 == await flow.env.store.cases.count()
    assert 3 == len(flow.sent())


async def test_redelivered_mail_is_one_case_and_one_acknowledgement(flow: MailFlow) -> None:
    """The same mail queued twice (a crash before flagging) is one case with one ack."""
    first = await flow.deliver(SIMPLIFIED)
    again = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    assert first == again
    assert 1 == await flow.env.store.cases.count()
    assert 1 == len(flow.sent())


class FlakyDelivery:
    """Fails the first ``failures`` attempts, then records the mail."""

    via = "smtp"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[EmailMessage] = []

    async def deliver(self, mail: OutboundMail, message: EmailMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("relay down")
        self.delivered.append(message)


async def test_failed_delivery_is_retried_and_visible_on_the_case(tmp_path: Path) -> None:
    """Two failed attempts are audit events on the case; the third attempt delivers."""
    delivery = FlakyDelivery(failures=2)
    async with mail_flow(tmp_path, delivery=delivery) as flow:
        submission_id = await flow.deliver(SIMPLIFIED)
        await flow.settle()
        case = await flow.case(submission_id)
        events = await flow.env.store.audit.events(case.id)
    failed = [e.data["attempt"] for e in events if e.type == "mail.delivery_failed"]
    assert [1, 2] == failed
    assert 1 == len(delivery.delivered)
    assert 1 == sum(1 for e in events if e.type == "mail.sent")


async def test_no_address_subject_or_text_reaches_the_logs(flow: MailFlow) -> None:
    """A whole mail flow logs ids only: no address, subject or body text."""
    with structlog.testing.capture_logs() as logs:
        await flow.deliver(SIMPLIFIED)
        await flow.deliver(ENGLISH, to=f"overseas@{DOMAIN}")
        await flow.settle()
    text = json.dumps(logs, ensure_ascii=False, default=str)
    assert logs
    for secret in (CUSTOMER, "jane.doe", "Billing error", "宽带", "refund", GD, "overseas@"):
        assert secret not in text


async def test_officer_reply_is_threaded_and_the_answer_joins(flow: MailFlow) -> None:
    """An officer's reply goes out tagged and threaded; the complainant's answer joins."""
    first = await flow.deliver(SIMPLIFIED)
    await flow.settle()
    case = await flow.case(first)
    ring = await load_keyring(flow.env.store, flow.env.master)
    kid, public = ring.active_public_key()
    outbound_id = await queue_complaint_reply(
        flow.env.store, flow.env.bus, flow.book, mail_domain=DOMAIN, case=case,
        message_id="officer-msg-1", body="您好，维修人员将于明天上午上门。",
        private_key=ring.private_key(case.content.kid), kid=kid, public=public,
        actor="officer-gd")
    await flow.settle()
    assert outbound_id is not None
    reply = next(m for m in flow.sent() if m["Auto-Submitted"] is None)
    assert f"[{case.reference}]" in reply["Subject"]
    assert "<20260301093000.1@mail.example.cn>" == reply["In-Reply-To"]
    assert "明天上午" in reply.get_content()
    await flow.deliver(plain("Re: 好的", message_id="<p-9@example.cn>",
                             extra=f"In-Reply-To: {reply['Message-ID']}\r\n"))
    await flow.settle()
    assert 1 == await flow.env.store.cases.count()
    assert "mail.reply_queued" in await flow.audit_types(case.id)


async def test_mail_over_a_limit_still_becomes_a_flagged_case(flow: MailFlow) -> None:
    """A mail over the parser's size limit is a case whose audit trail names the flag."""
    ingest = MailIngest(flow.env.store, flow.env.bus, mail_domain=DOMAIN,
                        limits=MailLimits(max_bytes=2048))
    mailbox = flow.book.get(GD)
    assert mailbox is not None
    big = plain("附件很大", message_id="<big-1@example.cn>", body="宽带断线。" + "x" * 10_000)
    queued = await ingest.accept(big, mailbox, via="imap")
    await flow.settle()
    case = await flow.case(queued.submission_id)
    [received] = [e for e in await flow.env.store.audit.events(case.id)
                  if e.type == "mail.received"]
    assert "over_size" in received.data["flags"]
    assert "imap" == received.data["via"]


async def test_a_different_mail_reusing_a_message_id_is_not_lost(flow: MailFlow) -> None:
    """Same Message-ID, different bytes: not a redelivery, so it joins as a message."""
    first = await flow.deliver(plain("宽带", message_id="<reused@example.cn>"))
    again = await flow.deliver(plain("宽带", message_id="<reused@example.cn>",
                                     body="这是另一封邮件，内容不同。"))
    await flow.settle()
    assert first == again
    assert 1 == await flow.env.store.cases.count()
    assert 1 == len(await flow.env.store.cases.messages((await flow.case(first)).id))
    assert 1 == len(flow.sent())
