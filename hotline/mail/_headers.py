"""Decoding header fields: encoded words, raw 8-bit text, addresses, ids and dates."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import quopri
import re

from hotline.mail._charset import decode_bytes

# An RFC 2047 encoded word; RFC 2231 language suffixes ("utf-8*zh") are allowed.
_ENCODED_WORD = re.compile(
    r"=\?(?P<charset>[^?*\s]+)(?:\*[^?\s]*)?\?(?P<encoding>[QqBb])\?(?P<text>[^?]*?)\?="
)
_FOLD = re.compile(r"\r?\n[ \t]?")
_MSG_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_BARE_ID = re.compile(r"[^\s<>()\",;]+@[^\s<>()\",;]+")
_WHITESPACE = re.compile(r"\s+")
_MAX_ADDRESS_CHARS = 16 * 1024
_MAX_VALUE_CHARS = 64 * 1024


def header_bytes(value: str) -> bytes:
    """The raw bytes of a header value as the stdlib parser kept them (surrogateescape)."""
    return value.encode("utf-8", "surrogateescape")


def decode_raw(value: str, *, fallback: str | None = None) -> tuple[str, bool]:
    """Header text with raw 8-bit bytes decoded; returns (text, charset_guessed)."""
    if value.isascii():
        return value, False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        decoded = decode_bytes(header_bytes(value), None, fallback=fallback)
        return decoded.text, decoded.guessed
    return value, False


def decode_words(value: str, *, fallback: str | None = None) -> tuple[str, bool]:
    """Decode RFC 2047 encoded words and raw 8-bit bytes; returns (text, charset_guessed).

    Written here rather than with ``email.header.decode_header`` because that raises on
    broken base64 and cannot read "gb2312" words as GB18030. Adjacent words in the same
    charset are joined before decoding, since senders split multibyte characters.
    """
    text, guessed = decode_raw(value[:_MAX_VALUE_CHARS], fallback=fallback)
    text = _FOLD.sub(" ", text)
    if "=?" not in text:
        return text, guessed
    pieces: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending_charset, guessed
        if pending_charset is not None:
            decoded = decode_bytes(bytes(pending), pending_charset, fallback=fallback)
            guessed = guessed or decoded.guessed
            pieces.append(decoded.text)
        pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if between and (pending_charset is None or between.strip()):
            flush()
            pieces.append(between)
        charset = match.group("charset").lower()
        raw = _decode_word(match.group("encoding"), match.group("text"))
        if pending_charset is not None and pending_charset != charset:
            flush()
        pending_charset = charset
        pending += raw
        position = match.end()
    flush()
    pieces.append(text[position:])
    return "".join(pieces), guessed


def _decode_word(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", "replace")
    if encoding in "Bb":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        cleaned += b"=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return data
    return quopri.decodestring(data.replace(b"_", b" "), header=True)


def clean_text(value: str) -> str:
    """Unfolded, single-spaced, stripped header text."""
    return _WHITESPACE.sub(" ", value).strip()


def addresses(values: list[str], *, fallback: str | None = None) -> list[tuple[str, str]]:
    """(display name, address) pairs from address header values; never raises."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        # The stdlib address parser is linear but slow; no real header is this long.
        raw, _ = decode_raw(value[:_MAX_ADDRESS_CHARS], fallback=fallback)
        raw = _FOLD.sub(" ", raw)
        try:
            parsed = email.utils.getaddresses([raw])
        except Exception:  # the stdlib address parser has raised on odd input
            parsed = []
        for name, address in parsed:
            if not name and not address:
                continue
            display, _ = decode_words(name, fallback=fallback)
            pairs.append((clean_text(display), address.strip()))
    return pairs


def message_ids(value: str | None) -> list[str]:
    """Every ``<id>`` in a Message-ID, In-Reply-To or References value, in order."""
    if not value:
        return []
    text = _FOLD.sub(" ", value[:_MAX_VALUE_CHARS])
    found = [f"<{match}>" for match in _MSG_ID.findall(text)]
    if not found:
        found = [f"<{match}>" for match in _BARE_ID.findall(text)]
    unique: list[str] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def first_message_id(value: str | None) -> str | None:
    """The normalised ``<id>`` of a Message-ID value, or None when it has none."""
    ids = message_ids(value)
    if ids:
        return ids[0]
    if value and value.strip() and value.isascii():
        token = value.strip().split()[0].strip("<>")
        return f"<{token}>" if token else None
    return None


def parse_date(value: str | None) -> dt.datetime | None:
    """An aware datetime for a Date value (``-0000`` read as UTC), or None."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(clean_text(value))
    except Exception:  # malformed dates raise several types
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed
