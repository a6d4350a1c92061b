"""Outbound delivery through a real SMTP relay (HOTLINE_SMTP_URL) and into the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hotline.mail.outbound import OutboundMail, OutboxDelivery, SmtpDelivery, compose
from tests.support.mailflow import mail_flow
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

MAIL = (b"From: Jane Doe <jane.doe@example.com>\r\nTo: overseas@hotline.localhost\r\n"
        b"Subject: Late delivery\r\nMessage-ID: <out-1@example.com>\r\n\r\n"
        b"My order has been late for three weeks and nobody answers my messages.\r\n")


@dataclass
class Sink:
    """An SMTP relay that keeps what it is given."""

    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def test_acknowledgement_goes_through_the_relay_with_a_null_sender(
        tmp_path: Path, relay: tuple[Sink, int]) -> None:
    """With HOTLINE_SMTP_URL the acknowledgement is relayed, envelope sender <> (RFC 3834)."""
    sink, port = relay
    async with mail_flow(tmp_path, delivery=SmtpDelivery(f"smtp://127.0.0.1:{port}")) as flow:
        submission_id = await flow.deliver(MAIL, to="overseas@hotline.localhost")
        await flow.settle()
        case = await flow.case(submission_id)
        types = await flow.audit_types(case.id)
    [envelope] = sink.received
    assert ["jane.doe@example.com"] == envelope.rcpt_tos
    assert envelope.mail_from in ("", "<>")
    assert f"[{case.reference}]".encode() in (envelope.original_content or b"")
    assert "mail.sent" in types


async def test_relay_down_is_retried_until_it_answers(tmp_path: Path) -> None:
    """A relay that refuses connections gives failed attempts on the case, then delivery."""
    port = free_port()
    sink = Sink()
    async with mail_flow(tmp_path, delivery=SmtpDelivery(f"smtp://127.0.0.1:{port}",
                                                         timeout=2)) as flow:
        submission_id = await flow.deliver(MAIL, to="overseas@hotline.localhost")
        settling = asyncio.create_task(flow.settle(20))
        case_id = ""
        for _ in range(200):
            case = await flow.env.store.cases.by_submission(submission_id)
            if case is not None and "mail.delivery_failed" in await flow.audit_types(case.id):
                case_id = case.id
                break
            await asyncio.sleep(0.05)
        assert case_id
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await settling
        finally:
            controller.stop()
        types = await flow.audit_types(case_id)
    assert 1 == len(sink.received)
    assert 1 <= types.count("mail.delivery_failed")
    assert 1 == types.count("mail.sent")


async def test_outbox_file_is_complete_and_written_once(tmp_path: Path) -> None:
    """The outbox holds <id>.eml with the whole message; writing it again changes nothing."""
    mail = OutboundMail(id="o_test0001", case_id="c_x", kind="reply",
                        from_address="complaints-gd@hotline.localhost",
                        to_address="li.ming@example.cn", subject="[C-2026-000001] Re: 宽带",
                        body="您好，已安排维修。", message_id="<o_test0001@hotline.localhost>",
                        in_reply_to="<a@example.cn>", references=("<a@example.cn>",))
    delivery = OutboxDelivery(tmp_path / "outbox")
    message = compose(mail, "hotline.localhost")
    await delivery.deliver(mail, message)
    first = (tmp_path / "outbox" / "o_test0001.eml").read_bytes()
    await delivery.deliver(mail, compose(mail, "hotline.localhost"))
    assert first == (tmp_path / "outbox" / "o_test0001.eml").read_bytes()
    assert ["o_test0001.eml"] == sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert b"In-Reply-To: <a@example.cn>" in first
    assert b"Auto-Submitted" not in first  # an officer's reply is not automatic
