"""Guessing whether a mail is Traditional Chinese, Simplified Chinese or English."""

from __future__ import annotations

import re

import zhconv  # type: ignore[import-untyped]  # ships without type hints

from hotline.mail._model import Language

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
SAMPLE_CHARS = 20_000
"""Only the first this many characters of a text are read."""
_MIN_SIGNALS = 6
"""Fewer Han characters plus Latin words than this is too short to tell."""
_DOMINANCE = 2
"""One script must outweigh the other this many times, else the text is mixed."""
_MIN_SCRIPT_CHARS = 2
"""Characters specific to one script needed before calling it."""


def _convert(character: str, script: str) -> str:
    # zhconv is also what triage normalises scripts with: one dictionary for both jobs.
    return str(zhconv.convert(character, script))


def guess_language(text: str, default: Language) -> Language:
    """The language of ``text``; ``default`` when it is too short or too mixed to tell."""
    return detect_language(text) or default


def detect_language(text: str) -> Language | None:
    """The language of ``text``, or None when it is too short or too mixed to tell."""
    sample = text[:SAMPLE_CHARS]
    han = _HAN.findall(sample)
    words = len(_LATIN_WORD.findall(sample))
    if len(han) + words < _MIN_SIGNALS:
        return None
    if words >= _DOMINANCE * len(han):
        return "en"
    if len(han) < _DOMINANCE * words:
        return None
    return _chinese_script(set(han))


def _chinese_script(characters: set[str]) -> Language | None:
    # A character that changes when converted to the other script belongs to this one;
    # characters common to both (的, 是, 在 …) do not change and say nothing.
    traditional = sum(1 for c in characters if _convert(c, "zh-hans") != c)
    simplified = sum(1 for c in characters if _convert(c, "zh-hant") != c)
    if traditional >= _MIN_SCRIPT_CHARS and traditional >= _DOMINANCE * simplified:
        return "zh-Hant"
    if simplified >= _MIN_SCRIPT_CHARS and simplified >= _DOMINANCE * traditional:
        return "zh-Hans"
    return None
