"""Telling mail written by people from mail sent by machines (RFC 3834 and practice)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from hotline.mail._headers import first_message_id, message_ids
from hotline.mail._model import Automation, ParsedMail

HeaderLookup = Callable[[str], str | None]

_OUT_OF_OFFICE_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|away from (the |my )?office|on vacation"
    r"|vacation (reply|notice)|abwesenheitsnotiz|自動回覆|自动答复|自動答覆|不在办公室|不在辦公室)",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ _-]?(reply|response|answer)|autoreply|autoresponse"
    r"|自动回复|自動回复|自动回覆|自動回復|自动应答|自動應答)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(able|ed)|delivery (status notification|failure|has failed)"
    r"|mail delivery (failed|failure|system)|returned mail|failure notice|non-delivery"
    r"|退信|未能送达|无法投递|無法投遞|系统退信)",
    re.IGNORECASE,
)
_SYSTEM_LOCAL_PART = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster|bounces?"
    r"|bounce[-+.].*|.*[-+.]bounces?|nobody|daemon|root|noreply[-+.].*|mail[-_.]?delivery"
    r"|notifications?|msexchange.*|auto[-_.]?(reply|responder)|listserv|majordomo|.*-request)$",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"^(mailer[-_.]?daemon|postmaster|mail[-_.]?delivery)", re.IGNORECASE)
_MESSAGE_ID_LINE = re.compile(r"^\s*message-id\s*:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_SUPPRESS_VALUES = frozenset({"all", "oof", "autoreply"})


def classify(
    header: HeaderLookup,
    *,
    subject: str,
    from_address: str | None,
    report_type: str | None,
    returned_ids: Sequence[str],
    body_text: str,
    own_message_id: str,
    our_domain: str | None = None,
) -> Automation:
    """Decide whether a mail came from a machine, and which kind, with the reason."""
    suppress = _suppresses(header("x-auto-response-suppress"))
    loop = _loop(header, own_message_id, our_domain)
    if loop:
        return Automation("loop", loop, suppress_auto_reply=suppress)
    bounce = _bounce_reason(header, subject, from_address, report_type)
    if bounce:
        original = returned_ids[0] if returned_ids else _id_in_text(body_text)
        return Automation("bounce", bounce, original, suppress)
    replied_to = first_message_id(header("in-reply-to"))
    if report_type == "disposition-notification":
        return Automation("auto_reply", "read receipt", replied_to, suppress)
    if _OUT_OF_OFFICE_SUBJECT.search(subject):
        return Automation("out_of_office", "subject", replied_to, suppress)
    auto = _auto_reply_reason(header, subject)
    if auto:
        return Automation("auto_reply", auto, replied_to, suppress)
    listed = _list_reason(header)
    if listed:
        return Automation("list", listed, suppress_auto_reply=suppress)
    return Automation(suppress_auto_reply=suppress)


def should_auto_reply(parsed: ParsedMail, our_domain: str) -> bool:
    """True only for mail from a person who can receive an answer.

    False for every automated mail (bounces, auto-replies, lists, loops), when the sender
    asked not to get automatic answers, and for system or no-reply senders.
    """
    automation = parsed.automation
    if automation.is_automated or automation.suppress_auto_reply:
        return False
    if _loop(parsed.header, parsed.message_id, our_domain):
        return False
    address = parsed.from_address
    if not address or "@" not in address:
        return False
    local, _, domain = address.rpartition("@")
    if _SYSTEM_LOCAL_PART.match(local):
        return False
    return domain.lower() != our_domain.lower()


def _suppresses(value: str | None) -> bool:
    if not value:
        return False
    tokens = {token.strip().lower() for token in value.split(",")}
    return bool(tokens & _SUPPRESS_VALUES)


def _loop(header: HeaderLookup, own_message_id: str, our_domain: str | None) -> str:
    if not our_domain:
        return ""
    domain = re.compile(r"(^|[@.\s<])" + re.escape(our_domain) + r"($|[>\s,;])", re.IGNORECASE)
    loop_header = header("x-loop")
    if loop_header and domain.search(loop_header):
        return "X-Loop names our domain"
    if own_message_id.lower().endswith("@" + our_domain.lower() + ">"):
        return "Message-ID is one of ours"
    return ""


def _bounce_reason(
    header: HeaderLookup, subject: str, from_address: str | None, report_type: str | None
) -> str:
    if report_type == "delivery-status":
        return "multipart/report delivery-status"
    local = (from_address or "").rpartition("@")[0] or (from_address or "")
    if _BOUNCE_SENDER.match(local):
        return "sender is mailer-daemon/postmaster"
    null_sender = (header("return-path") or "").strip().replace(" ", "") == "<>"
    if null_sender and _BOUNCE_SUBJECT.search(subject):
        return "null Return-Path and bounce subject"
    if header("x-failed-recipients"):
        return "X-Failed-Recipients"
    return ""


def _auto_reply_reason(header: HeaderLookup, subject: str) -> str:
    auto_submitted = (header("auto-submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted.split(';')[0]}"
    for name in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-reply"):
        if header(name) is not None:
            return name
    precedence = (header("precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return "Precedence: auto_reply"
    if (header("return-path") or "").strip().replace(" ", "") == "<>":
        return "null Return-Path"
    if _AUTO_REPLY_SUBJECT.search(subject):
        return "subject"
    return ""


def _list_reason(header: HeaderLookup) -> str:
    for name in ("list-id", "list-unsubscribe", "list-post"):
        if header(name) is not None:
            return name
    precedence = (header("precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    return ""


def _id_in_text(text: str) -> str | None:
    """A returned Message-ID quoted in a plain-text bounce (qmail, some Exchange)."""
    match = _MESSAGE_ID_LINE.search(text)
    if match is None:
        return None
    ids = message_ids(match.group(1))
    return ids[0] if ids else None
