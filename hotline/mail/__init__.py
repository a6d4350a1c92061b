"""Reading complaint mail: parsing any MIME, classifying automatic mail, threading.

Pure functions over bytes; the IMAP/SMTP ingestion and outbound mail live elsewhere.
"""

from __future__ import annotations

from hotline.mail._charset import codec_for, decode_bytes
from hotline.mail._classify import should_auto_reply
from hotline.mail._html import html_to_text
from hotline.mail._language import detect_language, guess_language
from hotline.mail._model import (
    Attachment,
    Automation,
    AutomationKind,
    Flag,
    Language,
    MailLimits,
    ParsedMail,
)
from hotline.mail._parse import parse_mail
from hotline.mail._threading import reference_tags, thread_ids

__all__ = [
    "Attachment",
    "Automation",
    "AutomationKind",
    "Flag",
    "Language",
    "MailLimits",
    "ParsedMail",
    "codec_for",
    "decode_bytes",
    "detect_language",
    "guess_language",
    "html_to_text",
    "parse_mail",
    "reference_tags",
    "should_auto_reply",
    "thread_ids",
]
