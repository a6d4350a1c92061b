"""HTML bodies rendered as readable text."""

from __future__ import annotations

import html
import re

from inscriptis import get_text  # type: ignore[import-untyped]  # ships no type hints

# Beyond this, rendering costs more than a complaint body is worth; the HTML stays sealed.
_MAX_HTML_CHARS = 500_000
_TAG = re.compile(r"<[^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body (layout kept roughly); never raises."""
    sample = markup[:_MAX_HTML_CHARS]
    if not sample.strip():
        return ""
    try:
        text = str(get_text(sample))
    except Exception:  # broken markup must still give some text
        text = ""
    if not text.strip():
        # lxml gives up on very deep nesting; strip tags the crude way instead.
        text = html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", sample)))
    return _BLANK_LINES.sub("\n\n", text).strip()
