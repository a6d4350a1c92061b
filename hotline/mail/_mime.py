"""A bounded MIME tree built on the stdlib header parser.

The stdlib feed parser recurses once per nesting level and raises RecursionError near a
thousand levels, and it materialises every part of a 10,000-part mail. Here the stdlib
parses each part's *headers* (the fiddly part: folding, parameters, RFC 2231), while the
split into parts is done level by level under explicit depth and part budgets.

A part's body is a view into the bytes it was parsed from, not a copy: the parts of a
large mail share the raw mail's memory, and only a decoded body is new (issue 7).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

from hotline._buffers import BytesBuilder
from hotline.mail._headers import decode_raw
from hotline.mail._model import Flag, MailLimits

_SEPARATOR = re.compile(rb"\r?\n\r?\n")
_LEADING_NEWLINE = re.compile(rb"\A\r?\n")
_NEWLINE = re.compile(rb"\n")
# RFC 5322 obsolete syntax allows blanks between a field name and its colon.
_OBSOLETE_NAME_SPACE = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.MULTILINE)
# Every byte that is not a base64 symbol or its padding, for bytes.translate to delete.
_BASE64_NOISE = bytes(
    set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
)
# Encoded bytes cleaned and decoded at a time.
_BASE64_SLICE = 64 * 1024
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)
_MAX_HEADER_BYTES = 256 * 1024
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


@dataclass(slots=True)
class Budget:
    """What is left to spend on one mail, and what went wrong on the way."""

    limits: MailLimits
    parts: int = 0
    attachment_bytes: int = 0
    defects: int = 0
    flags: set[Flag] = field(default_factory=set)
    charset_hint: str | None = None
    """The body charset, used to read raw 8-bit header text."""


@dataclass(slots=True)
class Part:
    """One MIME entity: its headers, its still-encoded body and what lies below it."""

    headers: Message
    body: memoryview
    """Still encoded; a view into the bytes the part was parsed from."""
    depth: int
    content_type: str
    children: list[Part] = field(default_factory=list)
    attached: Part | None = None
    """The parsed mail inside a message/rfc822 part."""
    opaque: bool = False
    """A container not opened because of the depth limit."""

    @property
    def is_multipart(self) -> bool:
        """True for a multipart/* container that was opened."""
        return self.content_type.startswith("multipart/") and not self.opaque

    def raw(self, name: str) -> str | None:
        """The first raw value of header ``name`` (8-bit bytes as surrogates), or None."""
        values = raw_values(self.headers, name)
        return values[0] if values else None

    def param_value(
        self, name: str, header: str = "content-type", *, fallback: str | None = None
    ) -> str | tuple[str, str, str] | None:
        """A header parameter as the stdlib gives it (a triple for RFC 2231), or None.

        Raw 8-bit values are decoded first (with ``fallback`` as charset hint), since the
        stdlib would turn their bytes into U+FFFD.
        """
        raw = self.raw(header)
        if raw is None:
            return None
        carrier = Message()
        carrier[header] = decode_raw(raw, fallback=fallback)[0]
        try:
            value = carrier.get_param(name, header=header)
        except Exception:  # odd parameter syntax must not stop parsing
            return None
        if isinstance(value, tuple):
            return (str(value[0] or ""), str(value[1] or ""), str(value[2]))
        return value if isinstance(value, str) else None

    def param(self, name: str, header: str = "content-type") -> str | None:
        """A header parameter as plain text (RFC 2231 values undecoded), or None."""
        value = self.param_value(name, header)
        if isinstance(value, tuple):
            return value[2]
        return value

    def decoded(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone (leniently)."""
        return decode_transfer(self.headers, self.body)

    def walk(self) -> list[Part]:
        """This part and every part below it, attached mails included, depth first."""
        found: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            found.append(part)
            below = list(part.children)
            if part.attached is not None:
                below.append(part.attached)
            stack.extend(reversed(below))
        return found


def raw_values(headers: Message, name: str) -> list[str]:
    """Raw values of header ``name``; unlike ``get_all`` never a ``Header`` object."""
    wanted = name.lower()
    return [str(value) for key, value in headers.raw_items() if key.lower() == wanted]


def parse_entity(
    raw: bytes | memoryview, budget: Budget, *, depth: int = 0, default_type: str = "text/plain"
) -> Part | None:
    """Parse one entity and, within the budget, its children; None once out of parts."""
    if budget.parts >= budget.limits.max_parts:
        budget.flags.add("too_many_parts")
        return None
    budget.parts += 1
    headers, body = split_headers(raw, budget)
    if default_type != "text/plain" and "content-type" not in headers:
        headers.set_default_type(default_type)
    content_type = _content_type(headers)
    part = Part(headers=headers, body=body, depth=depth, content_type=content_type)
    is_container = content_type.startswith("multipart/") or content_type in _MESSAGE_TYPES
    if is_container and depth >= budget.limits.max_depth:
        budget.flags.add("too_deep")
        part.opaque = True
        return part
    if content_type.startswith("multipart/"):
        _open_multipart(part, budget)
    elif content_type in _MESSAGE_TYPES:
        part.attached = parse_entity(part.decoded(), budget, depth=depth + 1)
    return part


def split_headers(raw: bytes | memoryview, budget: Budget) -> tuple[Message, memoryview]:
    """Header fields (parsed by the stdlib) and the raw body of one entity.

    The body is a view into ``raw`` (a copy only in the rare cases where parts of it are
    moved around: an oversized header block, a stray line ending the header block).
    """
    view = memoryview(raw)
    if view[:5].tobytes() == b"From ":
        # An mbox separator line, not a header field.
        newline = _NEWLINE.search(view)
        view = view[newline.end() :] if newline is not None else view[:0]
    leading = _LEADING_NEWLINE.match(view)
    if leading is not None:
        head_end = 0
        body = view[leading.end() :]
    else:
        separator = _SEPARATOR.search(view)
        head_end = len(view) if separator is None else separator.start()
        body = view[len(view) if separator is None else separator.end() :]
    if head_end > _MAX_HEADER_BYTES:
        # No real header block is this big; parsing it all would cost seconds per MB.
        cut = bytes(view[:_MAX_HEADER_BYTES]).rfind(b"\n") + 1 or _MAX_HEADER_BYTES
        body = memoryview(b"".join((view[cut:head_end], b"\n\n", body)))
        head_end = cut
        budget.flags.add("header_defects")
        budget.defects += 1
    head = bytes(view[:head_end])
    headers = _HEADER_PARSER.parsebytes(_OBSOLETE_NAME_SPACE.sub(rb"\1:", head) + b"\n")
    leftover = headers.get_payload()
    if isinstance(leftover, str) and leftover.strip():
        # A line that is no header field ends the header block: it belongs to the body.
        stray = leftover.encode("utf-8", "surrogateescape")
        body = memoryview(b"".join((stray, b"\n", body)) if body else stray)
    headers.set_payload("")
    budget.defects += len(headers.defects)
    return headers, body


def _content_type(headers: Message) -> str:
    try:
        return headers.get_content_type()
    except Exception:  # malformed Content-Type falls back like the RFC says
        return "text/plain"


def _open_multipart(part: Part, budget: Budget) -> None:
    boundary = part.param("boundary")
    if not boundary:
        budget.defects += 1
        return
    delimiter = re.compile(
        rb"^--" + re.escape(boundary.encode("utf-8", "surrogateescape")) + rb"(--)?[ \t]*\r?$",
        re.MULTILINE,
    )
    child_type = "message/rfc822" if part.content_type == "multipart/digest" else "text/plain"
    start: int | None = None
    closed = False
    for match in delimiter.finditer(part.body):
        if start is not None:
            child = parse_entity(
                _strip_line_break(part.body[start : match.start()]),
                budget,
                depth=part.depth + 1,
                default_type=child_type,
            )
            if child is None:
                return
            part.children.append(child)
        if match.group(1):
            closed = True
            break
        crlf = part.body[match.end() : match.end() + 2].tobytes() == b"\r\n"
        start = match.end() + (2 if crlf else 1)
    if start is None:
        budget.defects += 1
        return
    if not closed:
        budget.defects += 1
        child = parse_entity(
            part.body[start:], budget, depth=part.depth + 1, default_type=child_type
        )
        if child is not None:
            part.children.append(child)


def _strip_line_break(segment: memoryview) -> memoryview:
    if segment[-2:].tobytes() == b"\r\n":
        return segment[:-2]
    if segment[-1:].tobytes() == b"\n":
        return segment[:-1]
    return segment


def transfer_encoding(headers: Message) -> str:
    """The Content-Transfer-Encoding, lower-case, or ``7bit``."""
    values = raw_values(headers, "content-transfer-encoding")
    if not values:
        return "7bit"
    return values[0].strip().strip("\"'").lower() or "7bit"


def estimated_size(headers: Message, body: bytes | memoryview) -> int:
    """Decoded size without decoding (exact enough to enforce limits)."""
    if transfer_encoding(headers) == "base64":
        return len(body) * 3 // 4
    return len(body)


def decode_transfer(headers: Message, body: bytes | memoryview) -> bytes:
    """Undo base64, quoted-printable or uuencode leniently; anything else as is."""
    encoding = transfer_encoding(headers)
    if encoding == "base64":
        try:
            return _decode_base64(memoryview(body))
        except (binascii.Error, ValueError):
            return bytes(body)
    if encoding == "quoted-printable":
        try:
            return binascii.a2b_qp(body)
        except (binascii.Error, ValueError):
            return bytes(body)
    if encoding in ("x-uuencode", "uuencode", "x-uue", "uue"):
        carrier = Message()
        carrier["Content-Transfer-Encoding"] = encoding
        carrier.set_payload(bytes(body).decode("ascii", "surrogateescape"))
        try:
            payload = carrier.get_payload(decode=True)
        except Exception:  # the stdlib uu decoder raises on junk
            return bytes(body)
        return payload if isinstance(payload, bytes) else bytes(body)
    return bytes(body)


def _decode_base64(body: memoryview) -> bytes:
    """Lenient base64: line noise is dropped and the padding recomputed, so a truncated or
    sloppily wrapped attachment still decodes as far as it goes.

    Slice by slice, straight into the result: a cleaned copy of the whole body would
    cost as much memory as the body itself.
    """
    out = BytesBuilder(len(body) * 3 // 4 + 3)
    pending = b""  # cleaned symbols not yet decoded (fewer than four, or the tail)
    for start in range(0, len(body), _BASE64_SLICE):
        cleaned = pending + body[start : start + _BASE64_SLICE].tobytes().translate(
            None, _BASE64_NOISE
        )
        padding = cleaned.find(b"=")
        if padding >= 0:
            # Data ends at the padding; what follows is junk (as Dovecot reads it).
            pending = cleaned[:padding]
            break
        whole = len(cleaned) - len(cleaned) % 4
        out.write(binascii.a2b_base64(cleaned[:whole]))
        pending = cleaned[whole:]
    if len(pending) % 4 == 1:
        pending = pending[:-1]
    out.write(binascii.a2b_base64(pending + b"=" * (-len(pending) % 4)))
    return out.value()
