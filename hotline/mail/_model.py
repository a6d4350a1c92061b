"""Value objects produced by the mail parser: limits, attachments, classification, result."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

AutomationKind = Literal["none", "auto_reply", "out_of_office", "bounce", "list", "loop"]
"""What kind of machine sent a mail; ``none`` means a person (as far as headers tell)."""

Language = Literal["zh-Hant", "zh-Hans", "en"]
"""Languages an acknowledgement can be written in."""

Flag = Literal[
    "over_size",
    "too_deep",
    "too_many_parts",
    "attachments_over_size",
    "charset_guessed",
    "header_defects",
    "truncated",
    "parse_fallback",
]
"""Things a caller should know about a mail that still became a ParsedMail."""

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MailLimits:
    """Bounds on the work spent on one mail; a mail over a bound is flagged, never dropped."""

    max_bytes: int = 25 * MiB
    """Raw size; beyond it only the first ``max_bytes`` are parsed (flags ``over_size``)."""
    max_depth: int = 10
    """Nesting of multipart and message/rfc822 containers (flags ``too_deep``)."""
    max_parts: int = 200
    """MIME parts visited, attached mails included (flags ``too_many_parts``)."""
    max_attachment_bytes: int = 25 * MiB
    """Decoded attachment payload kept in total (flags ``attachments_over_size``)."""


DEFAULT_LIMITS = MailLimits()


@dataclass(frozen=True, slots=True)
class Attachment:
    """One non-body part of a mail (an attached mail included, as ``message/rfc822``)."""

    filename: str | None
    content_type: str
    size: int
    """Decoded size in bytes, also when the payload was not kept."""
    payload: bytes = field(repr=False)
    content_id: str | None = None
    is_inline: bool = False
    truncated: bool = False
    """True when the payload was dropped because of ``max_attachment_bytes``."""


@dataclass(frozen=True, slots=True)
class Automation:
    """Result of classifying a mail as sent by a person or by a machine."""

    kind: AutomationKind = "none"
    reason: str = ""
    """Which header or pattern decided it, for the case record (no mail content)."""
    original_message_id: str | None = None
    """For a bounce or auto-reply: the Message-ID of the mail it answers, when known."""
    suppress_auto_reply: bool = False
    """The sender asked for no automatic answers (``X-Auto-Response-Suppress``)."""

    @property
    def is_automated(self) -> bool:
        """True for every kind except ``none``."""
        return self.kind != "none"


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What the parser could read from one raw mail; the raw bytes stay the evidence."""

    message_id: str
    """``<id>`` from the header, or ``<sha256-of-raw@hotline.invalid>`` when missing."""
    subject: str = ""
    from_address: str | None = None
    from_name: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    date: dt.datetime | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    text: str = ""
    """Readable body: the text/plain part(s), or HTML rendered as text when only HTML exists."""
    html: str | None = None
    """The original HTML body, for the caller to keep as a sealed attachment."""
    attachments: tuple[Attachment, ...] = ()
    flags: frozenset[Flag] = frozenset()
    automation: Automation = Automation()
    language: Language | None = None
    """Language of subject and text, or None when too short or mixed to tell."""
    defects: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    """Top-level header fields in order, names as written, values decoded and unfolded."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None
