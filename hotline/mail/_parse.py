"""``parse_mail``: raw bytes in, a ParsedMail out, whatever the bytes are."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message

from hotline.mail._charset import decode_bytes
from hotline.mail._classify import classify
from hotline.mail._headers import (
    addresses,
    clean_text,
    decode_raw,
    decode_words,
    first_message_id,
    message_ids,
    parse_date,
)
from hotline.mail._html import html_to_text
from hotline.mail._language import SAMPLE_CHARS, detect_language
from hotline.mail._mime import (
    Budget,
    Part,
    estimated_size,
    parse_entity,
    raw_values,
    split_headers,
)
from hotline.mail._model import DEFAULT_LIMITS, Attachment, Flag, MailLimits, ParsedMail
from hotline.mail._tnef import expand_tnef, is_tnef

_MAX_HEADERS_KEPT = 500
_RETURNED_HEADER_TYPES = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header"}
)
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(slots=True)
class _Body:
    """Body texts and attachments collected while walking the top-level tree."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    guessed: bool = False


def parse_mail(
    raw: bytes,
    *,
    limits: MailLimits = DEFAULT_LIMITS,
    our_domain: str | None = None,
) -> ParsedMail:
    """Parse one raw mail; never raises, whatever ``raw`` holds.

    Limits are enforced by parsing less and flagging it, never by rejecting the mail.
    ``our_domain`` lets the classification recognise mail looping back to us.
    """
    fallback_id = f"<{hashlib.sha256(raw).hexdigest()}@hotline.invalid>"
    try:
        return _parse(raw, limits, our_domain, fallback_id)
    except Exception:  # last line of defence: a mail must never be lost
        return _fallback(raw, fallback_id)


def _parse(raw: bytes, limits: MailLimits, our_domain: str | None, fallback_id: str) -> ParsedMail:
    budget = Budget(limits)
    view = memoryview(raw)
    if len(raw) > limits.max_bytes:
        budget.flags.update(("over_size", "truncated"))
        view = view[: limits.max_bytes]
    root = parse_entity(view, budget)
    if root is None:  # only with max_parts == 0
        return _fallback(view, fallback_id)
    body_charset = _first_text_charset(root)
    budget.charset_hint = body_charset
    headers, header_guessed = _decoded_headers(root.headers, body_charset)
    if header_guessed or root.headers.defects:
        budget.flags.add("header_defects")

    def header(name: str) -> str | None:
        wanted = name.lower()
        for key, value in headers:
            if key.lower() == wanted:
                return value
        return None

    body = _Body()
    _collect(root, body, budget)
    if body.guessed or header_guessed:
        budget.flags.add("charset_guessed")
    text = "\n\n".join(t for t in body.plain if t.strip())
    html = "\n".join(body.html) or None
    if not text and html:
        text = html_to_text(html)

    subject = clean_text(header("subject") or "")
    senders = addresses(raw_values(root.headers, "from"), fallback=body_charset)
    from_name, from_address = senders[0] if senders else (None, None)
    own_id = first_message_id(header("message-id")) or fallback_id
    report_type = root.param("report-type") if root.content_type == "multipart/report" else None
    automation = classify(
        header,
        subject=subject,
        from_address=from_address or None,
        report_type=(report_type or "").lower() or None,
        returned_ids=_returned_ids(root, budget) if root.is_multipart else [],
        body_text=text,
        own_message_id=own_id,
        our_domain=our_domain,
    )
    in_reply_to = message_ids(header("in-reply-to"))
    return ParsedMail(
        message_id=own_id,
        subject=subject,
        from_address=from_address or None,
        from_name=from_name or None,
        to=_address_list(root.headers, "to", body_charset),
        cc=_address_list(root.headers, "cc", body_charset),
        reply_to=_address_list(root.headers, "reply-to", body_charset),
        date=parse_date(header("date")),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(message_ids(header("references"))),
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        flags=frozenset(budget.flags),
        automation=automation,
        # Detection reads a sample; a whole copy of a long text would be wasted.
        language=detect_language(f"{subject}\n{text[:SAMPLE_CHARS]}"),
        defects=budget.defects,
        headers=headers,
    )


def _fallback(raw: bytes | memoryview, fallback_id: str) -> ParsedMail:
    """What is left when parsing failed outright: the bytes as text, flagged."""
    decoded = decode_bytes(bytes(raw[:1_000_000]), None)
    flags: set[Flag] = {"parse_fallback"}
    if decoded.guessed:
        flags.add("charset_guessed")
    return ParsedMail(message_id=fallback_id, text=decoded.text, flags=frozenset(flags), defects=1)


def _decoded_headers(
    headers: Message, body_charset: str | None
) -> tuple[tuple[tuple[str, str], ...], bool]:
    decoded: list[tuple[str, str]] = []
    guessed = False
    for name, value in list(headers.raw_items())[:_MAX_HEADERS_KEPT]:
        text, was_guessed = decode_words(str(value), fallback=body_charset)
        guessed = guessed or was_guessed
        decoded.append((decode_raw(str(name))[0], clean_text(text)))
    return tuple(decoded), guessed


def _address_list(headers: Message, name: str, charset: str | None) -> tuple[str, ...]:
    return tuple(
        address for _, address in addresses(raw_values(headers, name), fallback=charset) if address
    )


def _first_text_charset(root: Part) -> str | None:
    for part in root.walk():
        if part.content_type.startswith("text/"):
            charset = part.param("charset")
            if charset:
                return charset
    return None


def _disposition(part: Part) -> str:
    value = part.raw("content-disposition")
    if value is None:
        return ""
    return value.split(";", 1)[0].strip().lower()


def _filename(part: Part, charset_hint: str | None) -> str | None:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = part.param_value(param, header, fallback=charset_hint)
        if isinstance(value, tuple):
            # RFC 2231: the stdlib leaves the percent-decoded bytes as Latin-1 text.
            charset, _, text = value
            raw = text.encode("latin-1", "surrogateescape") if _latin(text) else b""
            name = decode_bytes(raw, charset or None).text if raw else text
        elif isinstance(value, str):
            name = decode_words(value, fallback=charset_hint)[0]
        else:
            continue
        name = _UNSAFE_FILENAME.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
        if name:
            return name
    return None


def _latin(text: str) -> bool:
    try:
        text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _is_body_text(part: Part, budget: Budget) -> bool:
    return (
        part.content_type in ("text/plain", "text/html")
        and _disposition(part) != "attachment"
        and _filename(part, budget.charset_hint) is None
    )


def _collect(part: Part, body: _Body, budget: Budget) -> None:
    """Sort the parts of the top-level mail into body texts and attachments."""
    if part.is_multipart:
        subtype = part.content_type.split("/", 1)[1]
        if subtype == "alternative":
            _collect_alternative(part, body, budget)
        elif subtype == "related" and part.children:
            _collect(part.children[0], body, budget)
            for child in part.children[1:]:
                body.attachments.append(_attachment(child, budget, inline=True))
        else:
            for child in part.children:
                _collect(child, body, budget)
        return
    if part.content_type in _MESSAGE_TYPES or part.opaque or not _is_body_text(part, budget):
        _add_attachment(part, body, budget)
        return
    decoded = decode_bytes(part.decoded(), part.param("charset"))
    body.guessed = body.guessed or decoded.guessed
    if part.content_type == "text/html":
        body.html.append(decoded.text)
    else:
        body.plain.append(decoded.text)


def _collect_alternative(part: Part, body: _Body, budget: Budget) -> None:
    # Each alternative says the same thing: keep the first plain text and the first HTML,
    # and every attachment (inline images of the HTML version, calendar files …).
    for child in part.children:
        alternative = _Body()
        _collect(child, alternative, budget)
        body.guessed = body.guessed or alternative.guessed
        if alternative.plain and not body.plain:
            body.plain.extend(alternative.plain)
        if alternative.html and not body.html:
            body.html.extend(alternative.html)
        body.attachments.extend(alternative.attachments)


def _add_attachment(part: Part, body: _Body, budget: Budget) -> None:
    attachment = _attachment(part, budget, inline=_disposition(part) == "inline")
    if is_tnef(attachment.content_type, attachment.filename) and not attachment.truncated:
        content = expand_tnef(attachment.payload)
        if content is not None:
            for filename, payload in content.files:
                body.attachments.append(
                    _kept(filename, "application/octet-stream", payload, budget, None, False)
                )
            if content.body and not body.plain:
                body.plain.append(content.body)
            return
    body.attachments.append(attachment)


def _attachment(part: Part, budget: Budget, *, inline: bool) -> Attachment:
    filename = _filename(part, budget.charset_hint)
    if part.content_type in _MESSAGE_TYPES and filename is None and part.attached is not None:
        subject, _ = decode_words(part.attached.raw("subject") or "", fallback=budget.charset_hint)
        filename = f"{clean_text(subject) or 'message'}.eml"
    content_id = first_message_id(part.raw("content-id"))
    size = estimated_size(part.headers, part.body)
    limit = budget.limits.max_attachment_bytes
    if budget.attachment_bytes + size > limit:
        budget.flags.add("attachments_over_size")
        return Attachment(filename, part.content_type, size, b"", content_id, inline, True)
    payload = bytes(part.body) if part.opaque else part.decoded()
    return _kept(filename, part.content_type, payload, budget, content_id, inline)


def _kept(
    filename: str | None,
    content_type: str,
    payload: bytes,
    budget: Budget,
    content_id: str | None,
    inline: bool,
) -> Attachment:
    size = len(payload)
    if budget.attachment_bytes + size > budget.limits.max_attachment_bytes:
        budget.flags.add("attachments_over_size")
        return Attachment(filename, content_type, size, b"", content_id, inline, True)
    budget.attachment_bytes += size
    return Attachment(filename, content_type, size, payload, content_id, inline)


def _returned_ids(root: Part, budget: Budget) -> list[str]:
    """Message-IDs of the mails a delivery report returns (its rfc822 or headers parts)."""
    found: list[str] = []
    for part in root.walk():
        if part.depth > 2:
            continue
        if part.content_type in _MESSAGE_TYPES and part.attached is not None:
            value = part.attached.raw("message-id")
        elif part.content_type in _RETURNED_HEADER_TYPES:
            returned, _ = split_headers(part.decoded(), budget)
            values = raw_values(returned, "message-id")
            value = values[0] if values else None
        else:
            continue
        message_id = first_message_id(value)
        if message_id and message_id not in found:
            found.append(message_id)
    return found
