"""The router's side of complaint mail: threading, automatic mail, acknowledgements.

For a submission of channel ``email`` (sealed by intake's mail ingester, see
:mod:`hotline.mail.ingest`) the router decides, in this order:

1. a redelivery of a mail that already opened a case only completes what is missing;
2. a bounce or an automatic reply joins the case of the Message-ID it returns or
   answers — no reopening, no reply;
3. ``In-Reply-To``/``References`` naming any Message-ID of a case (the complainant's
   mails and ours) join that case, even when the subject lost its tag;
4. a subject tag ``[C-YYYY-NNNNNN]`` joins that case only when the sender is the
   case's complainant (a tag alone proves nothing);
5. otherwise the mail opens a new complaint case for its mailbox's unit, and a person
   (never a machine, a list or a no-reply sender) gets one acknowledgement with the
   reference, in the language of the mail (繁/简/English; the mailbox's default when
   the text does not tell), within per-recipient caps.

Every decision is an audit event without addresses or content; the acknowledgement is
queued as ``mail.outbound`` and delivered by :class:`hotline.mail.outbound.OutboundConsumer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import Counter

from hotline._large_json import LargeJson
from hotline.contract import Submission
from hotline.crypto import open_sealed, seal
from hotline.domain.case import Case, CaseMessage
from hotline.errors import MalformedMessage, SealError
from hotline.logging import get_logger
from hotline.mail._model import Language
from hotline.mail._threading import reference_tags
from hotline.mail.config import LANGUAGES, MailboxBook, load_mailboxes
from hotline.mail.outbound import (
    OutboundConsumer,
    OutboundMail,
    RecipientCaps,
    delivery_for,
    our_message_id,
    outbound_id_for,
    queue_outbound,
)
from hotline.org import OrgTree, load_org
from hotline.services import append_audit
from hotline.settings import Settings
from hotline.topology import MAIL_OUTBOUND_QUEUE

if TYPE_CHECKING:
    from router.worker import Router

__all__ = ["MailDesk", "acknowledgement_text", "mail_desk", "outbound_mail"]

_log = get_logger("hotline.router.mail")

MAILS = Counter("hotline_mail_routed_total", "Complaint mails routed", ["outcome"])
ACKS = Counter("hotline_mail_acknowledgements_total", "Acknowledgements decided", ["outcome"])

_AUTOMATIC_JOINS = ("bounce", "out_of_office", "auto_reply", "loop")
_ACK_SUBJECT: Mapping[Language, str] = {
    "zh-Hans": "投诉已受理", "zh-Hant": "投訴已受理", "en": "Complaint received"}
_ACK_BODY: Mapping[Language, str] = {
    "zh-Hans": (
        "您好：\n\n我们已收到您的投诉，受理编号为 {reference}。\n"
        "承办单位将按规定时限调查处理，并通过电子邮件答复您。"
        "如需补充情况或材料，请直接回复本邮件，并保留主题中的 [{reference}]。\n\n"
        "本邮件由系统自动发送。\n"),
    "zh-Hant": (
        "您好：\n\n我們已收到您的投訴，受理編號為 {reference}。\n"
        "承辦單位將按規定時限調查處理，並透過電子郵件答覆您。"
        "如需補充情況或資料，請直接回覆本郵件，並保留主旨中的 [{reference}]。\n\n"
        "本郵件由系統自動發送。\n"),
    "en": (
        "Hello,\n\nWe have received your complaint. Its reference is {reference}.\n"
        "The responsible unit will look into it within the set time limits and answer you "
        "by e-mail. To add information or documents, reply to this mail and keep "
        "[{reference}] in the subject.\n\nThis message was sent automatically.\n"),
}
_FAKE_ID_SUFFIX = "@hotline.invalid>"  # the parser's id for a mail without Message-ID


def acknowledgement_text(language: Language, reference: str, subject: str) -> tuple[str, str]:
    """Subject and body of the acknowledgement of case ``reference``."""
    original = " ".join(subject.split())[:150]
    title = f"[{reference}] {_ACK_SUBJECT[language]}"
    return (f"{title}: {original}" if original else title,
            _ACK_BODY[language].format(reference=reference))


@dataclass(frozen=True)
class _Mail:
    """The fields of a mail payload the router decides on (the payload stays sealed)."""

    message_id: str
    subject: str
    sender: str | None
    reply_to: tuple[str, ...]
    mailbox: str
    language: Language | None
    automation: str
    original_message_id: str | None
    thread_ids: tuple[str, ...]
    auto_reply: bool
    description: str
    flags: tuple[str, ...] = ()
    via: str = "smtp"
    raw_sha256: str = ""

    @property
    def reply_address(self) -> str | None:
        return self.reply_to[0] if self.reply_to else self.sender

    @property
    def has_real_id(self) -> bool:
        return not self.message_id.endswith(_FAKE_ID_SUFFIX)


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_payload(plaintext: bytes) -> tuple[_Mail, dict[str, Any]]:
    try:
        # Not json.loads: that decodes the whole payload into one text first, a copy of
        # the raw mail's base64 besides the value (issue 7: copies of a large mail).
        payload = LargeJson(plaintext).value()
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("mail payload is not JSON", field="sealed") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("message_id"), str) \
            or not isinstance(payload.get("mailbox"), str) \
            or not isinstance(payload.get("description"), str):
        raise MalformedMessage("mail payload lacks message_id, mailbox or description",
                               field="sealed")
    automation = payload.get("automation")
    automation = automation if isinstance(automation, dict) else {}
    language = payload.get("language")
    in_reply_to = _optional(payload.get("in_reply_to"))
    thread = ([in_reply_to] if in_reply_to else []) + list(_strings(payload.get("references")))
    mail = _Mail(
        message_id=payload["message_id"], subject=_optional(payload.get("subject")) or "",
        sender=_optional(payload.get("email")), reply_to=_strings(payload.get("reply_to")),
        mailbox=payload["mailbox"],
        language=language if language in LANGUAGES else None,
        automation=str(automation.get("kind", "none")),
        original_message_id=_optional(automation.get("original_message_id")),
        thread_ids=tuple(dict.fromkeys(thread)), auto_reply=payload.get("auto_reply") is True,
        description=payload["description"], flags=_strings(payload.get("flags")),
        via=str(payload.get("via") or "smtp"),
        raw_sha256=_optional(payload.get("raw_sha256")) or "")
    return mail, payload


def _same_address(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and str(a).strip().lower() == str(b).strip().lower()


@dataclass
class MailDesk:
    """What the router needs to route mail: the mailboxes, our domain and the caps."""

    book: MailboxBook
    mail_domain: str = "hotline.localhost"
    ack_per_hour: int = 3
    ack_per_day: int = 10
    _caps: RecipientCaps | None = field(default=None, init=False, repr=False)
    _threading: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @classmethod
    def default(cls) -> MailDesk:
        """The CONTRACT §7 mailboxes on the default domain (tests, bare routers)."""
        return cls(load_mailboxes(load_org(), "hotline.localhost"))

    async def handle(self, router: Router, submission: Submission, plaintext: bytes) -> None:
        """Route one opened e-mail submission; idempotent on the submission id."""
        mail, payload = _read_payload(plaintext)
        del plaintext
        store = router.store
        # Deciding "which case" and recording the answer is one step per process: two mails
        # of one thread delivered together (or one mail to two mailboxes) must not both
        # miss each other and open two cases.
        async with self._threading:
            case = await store.cases.by_submission(submission.id)
            if case is not None and not await self._same_mail(router, case, mail):
                # Another mail reusing the Message-ID of this case's first mail: it is
                # not a redelivery, and it must not be lost either.
                await self._join(router, case, submission, mail,
                                 entry_id=f"{submission.id}-{mail.raw_sha256[:16]}")
                return
            if case is None:
                joined = await self._thread_case(router, mail)
                if joined is not None:
                    await self._join(router, joined, submission, mail)
                    return
                await router._open_case(submission, payload)
                case = await store.cases.by_submission(submission.id)
                if case is None:
                    raise MalformedMessage("the case of this mail was not stored", field="id")
                MAILS.labels("opened").inc()
            await store.mail_threads.remember(case.id, [mail.message_id])
        await self._acknowledge(router, case, submission, mail)

    # -- threading --------------------------------------------------------------------

    async def _thread_case(self, router: Router, mail: _Mail) -> Case | None:
        threads = router.store.mail_threads
        if mail.automation in _AUTOMATIC_JOINS and mail.original_message_id:
            case_id = await threads.case_for([mail.original_message_id])
            if case_id is not None:
                return await router.store.cases.get(case_id)
        # Ours included: a reply to the acknowledgement names its Message-ID. The mail's
        # own id last: the same mail sent to two of our mailboxes is one complaint.
        case_id = await threads.case_for([*mail.thread_ids, mail.message_id])
        if case_id is not None:
            return await router.store.cases.get(case_id)
        for reference in reference_tags(mail.subject):
            if not reference.startswith("C-"):
                continue
            case = await router.store.cases.by_reference(reference)
            if case is not None and await self._is_complainant(router, case, mail):
                return case
        return None

    async def _is_complainant(self, router: Router, case: Case, mail: _Mail) -> bool:
        """Whether the mail's sender is the complainant of ``case`` (read from its seal)."""
        if case.kind != "complaint" or not mail.sender:
            return False
        try:
            private = await router._private_key(case.content.kid)
            content = LargeJson(open_sealed(case.content, private, purpose="complaint")).value()
        except (SealError, ValueError):
            return False
        if not isinstance(content, dict):
            return False
        known = [content.get("email"), *_strings(content.get("reply_to"))]
        return any(_same_address(mail.sender, address) for address in known)

    async def _same_mail(self, router: Router, case: Case, mail: _Mail) -> bool:
        """Whether ``mail`` is byte for byte the mail that opened ``case``."""
        if not mail.raw_sha256:
            return True
        try:
            private = await router._private_key(case.content.kid)
            content = LargeJson(open_sealed(case.content, private, purpose="complaint")).value()
        except (SealError, ValueError):
            return True
        known = content.get("raw_sha256") if isinstance(content, dict) else None
        return not isinstance(known, str) or known == mail.raw_sha256

    async def _join(self, router: Router, case: Case, submission: Submission,
                    mail: _Mail, *, entry_id: str | None = None) -> None:
        store = router.store
        entry_id = entry_id or submission.id
        await router._private_key(submission.sealed.kid)  # loads the keyring
        assert router.keyring is not None
        kid, public = router.keyring.active_public_key()
        text = f"{mail.subject}\n\n{mail.description}" if mail.subject else mail.description
        automatic = mail.automation != "none"
        await store.cases.add_message(CaseMessage(
            id=entry_id, case_id=case.id, at=submission.occurred_at, author="reporter",
            actor="email:automatic" if automatic else "email",
            sealed_for_org=seal(text.encode(), public, kid=kid, purpose="message"),
            sealed_for_reporter=None))
        events = await store.audit.events(case.id)
        if not any(e.type == "mail.received" and e.data.get("submission_id") == entry_id
                   for e in events):
            await append_audit(store, case.id, actor="email", type_="mail.received",
                               data={"submission_id": entry_id, "via": mail.via,
                                     "automation": mail.automation, "flags": list(mail.flags),
                                     "joined": True})
        await store.mail_threads.remember(case.id, [mail.message_id])
        outcome = "joined_automatic" if automatic else "joined"
        MAILS.labels(outcome).inc()
        _log.info("mail.joined", case_id=case.id, submission_id=submission.id,
                  automation=mail.automation)
        if not automatic:
            await router._emit("case.updated", case, submission.correlation_id)

    # -- acknowledgement --------------------------------------------------------------

    def _language(self, mail: _Mail) -> Language:
        if mail.language is not None:
            return mail.language
        mailbox = self.book.get(mail.mailbox)
        return mailbox.language if mailbox is not None else "zh-Hans"

    async def _acknowledge(self, router: Router, case: Case, submission: Submission,
                           mail: _Mail) -> None:
        store = router.store
        events = await store.audit.events(case.id)
        if not any(e.type == "mail.received" for e in events):
            # What the edge saw, without content: automation, limits hit (flags), channel.
            await append_audit(store, case.id, actor="email", type_="mail.received",
                               data={"submission_id": submission.id, "via": mail.via,
                                     "automation": mail.automation, "flags": list(mail.flags),
                                     "joined": False})
        if any(e.type in ("mail.acknowledgement_queued", "mail.acknowledgement_skipped")
               for e in events):
            return  # decided before this redelivery
        to_address = mail.reply_address
        reason = None
        if mail.automation != "none":
            reason = f"automatic mail ({mail.automation})"
        elif not mail.auto_reply or not to_address:
            reason = "sender takes no automatic answers"
        elif not await self._caps_for(router).take(to_address):
            reason = "recipient cap reached"
        if reason is not None:
            ACKS.labels("skipped").inc()
            await append_audit(store, case.id, actor="router",
                               type_="mail.acknowledgement_skipped", data={"reason": reason})
            return
        assert to_address is not None
        await router._private_key(case.content.kid)  # loads the keyring
        assert router.keyring is not None
        kid, public = router.keyring.active_public_key()
        outbound_id = outbound_id_for(case.id, "acknowledgement")
        language = self._language(mail)
        subject, body = acknowledgement_text(language, case.reference, mail.subject)
        mailbox = self.book.get(mail.mailbox)
        references = (*mail.thread_ids, mail.message_id) if mail.has_real_id else mail.thread_ids
        ack = OutboundMail(
            id=outbound_id, case_id=case.id, kind="acknowledgement",
            from_address=mailbox.address if mailbox is not None else mail.mailbox,
            to_address=to_address, subject=subject, body=body,
            message_id=our_message_id(outbound_id, self.mail_domain),
            in_reply_to=mail.message_id if mail.has_real_id else None,
            references=tuple(dict.fromkeys(references)), auto_submitted=True)
        # Remembered before it is sent: a reply may arrive before the audit event is written.
        await store.mail_threads.remember(case.id, [ack.message_id])
        await queue_outbound(router.bus, ack, kid=kid, public=public,
                             correlation_id=submission.correlation_id)
        await append_audit(store, case.id, actor="router", type_="mail.acknowledgement_queued",
                           data={"outbound_id": outbound_id, "language": language})
        ACKS.labels("queued").inc()
        _log.info("mail.acknowledgement_queued", case_id=case.id, outbound_id=outbound_id,
                  language=language)
        await router.acknowledge(case.id)

    def _caps_for(self, router: Router) -> RecipientCaps:
        if self._caps is None:
            self._caps = RecipientCaps(router.store, router.master.derive("mail-recipient-caps"),
                                       per_hour=self.ack_per_hour, per_day=self.ack_per_day)
        return self._caps


async def _consume_outbound(router: Router, consumer: OutboundConsumer) -> None:
    """Consume ``mail.outbound`` until cancelled; a crashed consumer restarts after a pause."""
    while True:
        try:
            await router.bus.consume(MAIL_OUTBOUND_QUEUE, consumer.handle, prefetch=8)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.error("outbound.consumer_crashed", error_type=type(exc).__name__)
            await asyncio.sleep(1.0)


def outbound_mail(router: Router, settings: Settings
                  ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` delivering queued outbound mail (relay or outbox) in this process."""
    consumer = OutboundConsumer(router.store, router._private_key,
                                delivery_for(settings.smtp_url, settings.data_dir),
                                settings.mail_domain)

    async def context(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_consume_outbound(router, consumer))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context


def mail_desk(settings: Settings, org: OrgTree) -> MailDesk:
    """The desk of a configured process: mailboxes from the org and the mailboxes file."""
    return MailDesk(load_mailboxes(org, settings.mail_domain, settings.mailboxes_file),
                    settings.mail_domain)
