"""JSON with large string values left in the source bytes until they are asked for.

``json.loads(data)`` of UTF-8 bytes first decodes the whole document into one ``str`` and
then copies each string value out of it. For a document that is mostly one long string
(a submission carrying a 10 MB ciphertext, a report payload carrying a 10 MB
description) that is two more copies of it, and the first one takes two or four bytes
per character for the whole document as soon as a single character anywhere needs it
(issue 7: copies of a large report). :class:`LargeJson` parses only the small rest of the
document and decodes each long string value on its own, when asked, or hands out its
bytes as they stand.

The result is what ``json.loads(data)`` gives, and a document ``json.loads`` refuses is
refused too (with :class:`json.JSONDecodeError` or :class:`UnicodeDecodeError`): each long
string literal is replaced, token for token, by a short placeholder literal, which keeps
the document's structure, and is itself decoded by the standard decoder or checked to
need no decoding. Anything unusual (not UTF-8, a ``\\u0000`` escape that could spell a
placeholder, a long object key) takes the ordinary ``json.loads`` path.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["LargeJson", "LargeString"]

# A JSON string literal: quotes, then anything but quotes and backslashes, or escapes.
# In a JSON text every quote outside a string opens one, so scanning from the start
# finds exactly the string tokens the parser reads (unrolled: fast in the regex engine).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# A literal that decodes to its own bytes: no escape, quote or control character.
_VERBATIM = re.compile(rb"[^\x00-\x1f\"\\]*")
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")
# Placeholders hold a NUL, which a JSON text spells only as this escape: where the
# escape does not occur, no string value of the document can equal a placeholder.
_NUL_ESCAPE = b"\\u0000"
_MARK = "\x00large:"
_DECODER = json.JSONDecoder()

DEFAULT_MIN_SIZE = 64 * 1024


class _Fallback(Exception):
    """This document takes the ordinary path."""


class LargeString:
    """A long string value of a JSON document, still in the document's bytes."""

    __slots__ = ("_data", "_end", "_start")

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self._data: bytes | None = data
        self._start = start  # the opening quote
        self._end = end  # after the closing quote

    def _source(self) -> bytes:
        if self._data is None:
            raise RuntimeError("this string's document was released")
        return self._data

    def b64url_view(self) -> memoryview | None:
        """The value's bytes, when they are base64url symbols only (a ciphertext's text):
        the value is then exactly these ASCII bytes. None otherwise."""
        view = memoryview(self._source())[self._start + 1:self._end - 1]
        if _B64URL.fullmatch(view) is None:
            view.release()
            return None
        return view

    def _raw_text(self) -> tuple[str, bool]:
        """The literal decoded from UTF-8 (as ``json.loads`` decodes bytes), and whether
        that already is the value (no escapes to resolve)."""
        with memoryview(self._source()) as whole:
            inner = whole[self._start + 1:self._end - 1]
            if _VERBATIM.fullmatch(inner) is not None:
                return str(inner, "utf-8", "surrogatepass"), True
            return str(whole[self._start:self._end], "utf-8", "surrogatepass"), False

    def release(self) -> None:
        """Let go of the document's bytes."""
        self._data = None


def _finish(raw: str, verbatim: bool) -> str:
    if verbatim:
        return raw
    value = _DECODER.decode(raw)  # escapes and control characters as json.loads sees them
    if not isinstance(value, str):  # cannot happen: raw is one string literal
        raise json.JSONDecodeError("not a string literal", raw, 0)
    return value


class LargeJson:
    """``json.loads(data)`` with string values of ``min_size`` bytes or more decoded only
    when asked (:meth:`value`), or handed out as bytes (:meth:`LargeString.b64url_view`
    of a value in :attr:`document`).

    Raises what ``json.loads`` would for a document it refuses.
    """

    def __init__(self, data: bytes, *, min_size: int = DEFAULT_MIN_SIZE) -> None:
        self._strings: list[LargeString] = []
        self._doc: Any = None
        if len(data) < min_size or json.detect_encoding(data) != "utf-8" \
                or _NUL_ESCAPE in data:
            self._doc = json.loads(data)
            return
        rest: list[bytes | memoryview] = []
        at = 0
        with memoryview(data) as view:
            for found in _STRING.finditer(data):
                start, end = found.span()
                if end - start - 2 < min_size:
                    continue
                rest.append(view[at:start])
                rest.append(f'"\\u0000large:{len(self._strings)}"'.encode())
                self._strings.append(LargeString(data, start, end))
                at = end
            if not self._strings:
                self._doc = json.loads(data)
                return
            rest.append(view[at:])
            remainder = b"".join(rest)
            del rest
        try:
            self._doc = json.loads(remainder)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._release()
            raise
        try:
            self._doc = self._placed(self._doc)
        except _Fallback:
            self._release()
            self._doc = json.loads(data)

    def _release(self) -> None:
        for string in self._strings:
            string.release()
        self._strings = []

    def _large(self, value: str) -> LargeString | None:
        if not value.startswith(_MARK):
            return None
        return self._strings[int(value[len(_MARK):])]

    def _placed(self, doc: Any) -> Any:
        """``doc`` with each placeholder replaced by its :class:`LargeString`."""
        if isinstance(doc, str):
            return self._large(doc) or doc
        stack: list[Any] = [doc]
        while stack:
            node = stack.pop()
            for key, item in list(node.items() if isinstance(node, dict) else enumerate(node)):
                if isinstance(key, str) and key.startswith(_MARK):
                    raise _Fallback  # a long object key: rare enough for the plain path
                if isinstance(item, str):
                    large = self._large(item)
                    if large is not None:
                        node[key] = large
                elif isinstance(item, dict | list):
                    stack.append(item)
        return doc

    @property
    def document(self) -> Any:
        """The parsed document; long string values are :class:`LargeString` still."""
        return self._doc

    def value(self) -> Any:
        """The document as ``json.loads`` gives it; this object is spent afterwards.

        Each long string still in the document is decoded from the bytes, then the bytes
        are let go (gone, if the caller dropped them too) before escapes are resolved: a
        long value with escapes is held as literal and value, not also as bytes.
        """
        doc, self._doc = self._doc, None
        if not self._strings:  # parsed the plain way: nothing to put in place
            return doc
        root: list[Any] = [doc]
        places: list[tuple[Any, Any, LargeString]] = []
        stack: list[Any] = [root]
        while stack:
            node = stack.pop()
            for key, item in list(node.items() if isinstance(node, dict) else enumerate(node)):
                if isinstance(item, LargeString):
                    places.append((node, key, item))
                elif isinstance(item, dict | list):
                    stack.append(item)
        raws: list[tuple[str, bool] | None] = [item._raw_text() for _, _, item in places]
        self._release()
        for i, (node, key, _) in enumerate(places):
            raw = raws[i]
            assert raw is not None
            raws[i] = None  # the literal goes as soon as its value is made
            node[key] = _finish(*raw)
            del raw
        return root[0]
