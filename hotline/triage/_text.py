"""Text normalisation and fact extraction: one rule set serves 繁體, 简体 and English.

Text is normalised before any rule looks at it: NFKC (full-width → half-width, ideographic
space → space), Traditional → Simplified, case-folded. Keyword lists are normalised the
same way when they are loaded, so a list may mix scripts freely.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import ahocorasick  # type: ignore[import-not-found]  # C extension without type hints
import zhconv  # type: ignore[import-untyped]  # ships without type hints

__all__ = [
    "KeywordIndex",
    "KeywordSet",
    "count_facts",
    "normalise",
    "parse_amounts",
    "parse_number",
]


def normalise(text: str) -> str:
    """NFKC, Traditional → Simplified, case-folded, whitespace collapsed."""
    # Rule words, positions and names are normalised over and over: remember short ones.
    # The submission's own text is normalised several times per triage: keep the last few.
    return _normalise_short(text) if len(text) <= 256 else _normalise_long(text)


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text)
    simplified = str(zhconv.convert(folded, "zh-cn"))
    return _SPACES.sub(" ", simplified.casefold()).strip()


_SPACES = re.compile(r"\s+")
_normalise_short = functools.lru_cache(maxsize=8192)(_normalise)
_normalise_long = functools.lru_cache(maxsize=4)(_normalise)


_ASCII_WORD = re.compile(r"^[a-z0-9]")


def word_start(escaped: str) -> str:
    """``escaped`` (a regex of a word starting with a literal character) required to start
    a word: the first character is matched, then a look-behind checks the one before it.

    Written this way, every alternative of a large keyword pattern starts with a literal,
    which lets the regex engine skip quickly to candidate positions; a leading look-behind
    (``(?<![a-z0-9])word``) makes it try every alternative at every position (~10× slower).
    """
    first = escaped[:2] if escaped.startswith("\\") else escaped[:1]
    return f"{first}(?<![a-z0-9]{first}){escaped[len(first):]}"


@dataclass(frozen=True)
class KeywordSet:
    """A named keyword list, matched on normalised text.

    ASCII keywords match whole words, plurals included ("kickback" finds "kickbacks",
    "court" does not fire inside "courtesy"); a trailing ``*`` makes a stem ("bribe*"
    finds "bribery"). CJK keywords match anywhere. "A…B" matches A then B within 16
    characters.
    """

    name: str
    words: tuple[str, ...]
    pattern: re.Pattern[str]
    # The literal every match of a keyword starts with, one per keyword; None when a
    # keyword starts with a gap ("...B"), so that only a full scan finds its matches.
    heads: tuple[str, ...] | None = None

    @classmethod
    def build(cls, name: str, words: Iterable[str]) -> KeywordSet:
        normalised = sorted({normalise(w) for w in words if w.strip()}, key=len, reverse=True)
        parts = []
        heads: list[str] | None = []
        for word in normalised:
            stem = word.endswith("*")
            # "拖欠…工资": both parts within a few characters ("拖欠三十名农民工工资");
            # NFKC has already turned "…" into "..."
            parts_of_word = word.rstrip("*").split("...")
            escaped = r".{0,16}?".join(re.escape(p.strip()) for p in parts_of_word)
            if _ASCII_WORD.match(word):
                escaped = word_start(escaped)
                if not stem:
                    escaped += r"(?:s|es)?(?![a-z0-9])" if word[-1].isalpha() else r"(?![a-z0-9])"
            parts.append(escaped)
            head = parts_of_word[0].strip()
            heads = None if heads is None or not head else [*heads, head]
        return cls(name, tuple(normalised), re.compile("|".join(parts) or r"(?!x)x"),
                   None if heads is None else tuple(heads))

    def find(self, text: str) -> list[str]:
        """The distinct keywords present in normalised ``text``, in order of appearance."""
        seen: dict[str, None] = {}
        for match in self.pattern.finditer(text):
            seen.setdefault(match.group(0), None)
        return list(seen)

    def find_at(self, text: str, starts: Iterable[int]) -> list[str]:
        """:meth:`find`, trying the pattern only at ``starts`` (ascending): the same result
        when ``starts`` holds every position where one of :attr:`heads` occurs, because
        every match begins with its keyword's head."""
        seen: dict[str, None] = {}
        end = 0
        for start in starts:
            if start < end:
                continue  # finditer does not return overlapping matches
            match = self.pattern.match(text, start)
            if match is not None:
                seen.setdefault(match.group(0), None)
                end = match.end()
        return list(seen)


class KeywordIndex:
    """All keyword sets of a rule set matched with one pass over the text.

    Scanning the text once per set with its regex costs about 20 µs per set and KB even
    when nothing matches (the regex engine tries every position); an Aho–Corasick
    automaton over the keywords' leading literals finds, in one pass, the few positions
    where a keyword can start, and each set's regex is tried only there. The result is
    :meth:`KeywordSet.find` of every set (a property test compares the two).
    """

    def __init__(self, sets: Mapping[str, KeywordSet]) -> None:
        self._sets = dict(sets)
        self._scanned = frozenset(name for name, ks in sets.items() if ks.heads is None)
        owners: dict[str, set[str]] = {}
        for name, keyword_set in sets.items():
            for head in keyword_set.heads or ():
                owners.setdefault(head, set()).add(name)
        self._automaton: Any = None
        if owners:
            self._automaton = ahocorasick.Automaton()
            for head, names in owners.items():
                self._automaton.add_word(head, (len(head), tuple(sorted(names))))
            self._automaton.make_automaton()

    def find_all(self, text: str) -> dict[str, list[str]]:
        """``{name: keyword_set.find(text)}`` for every set."""
        starts: dict[str, set[int]] = {}
        if self._automaton is not None:
            for end, (length, names) in self._automaton.iter(text):
                for name in names:
                    starts.setdefault(name, set()).add(end - length + 1)
        found: dict[str, list[str]] = {}
        for name, keyword_set in self._sets.items():
            if name in self._scanned:
                found[name] = keyword_set.find(text)
            else:
                found[name] = keyword_set.find_at(text, sorted(starts.get(name, ())))
        return found


# --- numbers ---------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3,
              "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7,
              "八": 8, "捌": 8, "九": 9, "玖": 9}
_CN_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_UNIT_CHARS = "十拾百佰千仟万亿"
_NUM_CHARS = "0-9.,零〇一二两三四五六七八九壹贰叁肆伍陆柒捌玖十拾百佰千仟万亿"
NUMBER = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|[{_NUM_CHARS[4:]}0-9.]*[0-9{_NUM_CHARS[4:]}])"


def _parse_small(text: str) -> Decimal:
    """A number below 10 000 in digits, Chinese numerals or a mix ("1千2百", "一千二百")."""
    if not text:
        return Decimal(0)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return Decimal(text)
    total = Decimal(0)
    current: Decimal | None = None
    buffer = ""
    for char in text:
        if char.isdigit() or char == ".":
            buffer += char
            continue
        if buffer:
            current, buffer = Decimal(buffer), ""
        if char in _CN_DIGITS:
            current = Decimal(_CN_DIGITS[char])
        elif char in _CN_UNITS:
            total += (current if current is not None else Decimal(1)) * _CN_UNITS[char]
            current = None
        else:
            raise InvalidOperation(text)
    if buffer:
        current = Decimal(buffer)
    if current is not None:
        # "一千二" means 1200 in speech; only a lone trailing digit after a unit is scaled
        total += current
    return total


_EN_NUMBERS = {word: value for value, word in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty"))}
_EN_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "a dozen": 12,
                    "dozens of": 24, "a hundred": 100, "hundreds of": 200})
_EN_NUMBER = "|".join(sorted(map(re.escape, _EN_NUMBERS), key=len, reverse=True))
# "两千余万元", "30多万" → "两千万元", "30万": the approximation word sits inside the number
_APPROX = re.compile(r"(?<=[0-9零〇一二两三四五六七八九十拾百佰千仟])(?:余|多|来)(?=[万亿元块])")


def parse_number(text: str) -> Decimal | None:
    """Parse digits and/or Chinese numerals: "1200万", "一千二百万", "壹仟万", "3.5亿", "12,000"."""
    if text in _EN_NUMBERS:
        return Decimal(_EN_NUMBERS[text])
    cleaned = text.replace(",", "")
    if not cleaned or cleaned == ".":
        return None
    try:
        total = Decimal(0)
        rest = cleaned
        for big in ("亿", "万"):
            if big in rest:
                head, _, rest = rest.partition(big)
                total += (_parse_small(head) if head else Decimal(1)) * _CN_BIG[big]
        total += _parse_small(rest)
    except (InvalidOperation, ValueError):
        return None
    return total


_MAGNITUDES = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "mn": 1_000_000,
               "million": 1_000_000, "b": 1_000_000_000, "bn": 1_000_000_000,
               "billion": 1_000_000_000}
_MAG = r"(?:\s*(?P<mag>thousand|million|billion|mn|bn|k|m|b)(?![a-z]))?"


@dataclass(frozen=True)
class Amount:
    """A money amount found in text or the payload, converted to CNY."""

    value: Decimal
    currency: str
    cny: Decimal
    source: str


def parse_amounts(text: str, currencies: Mapping[str, Sequence[str]],
                  rates: Mapping[str, Decimal], count_units: Sequence[str]) -> list[Amount]:
    """Money amounts in normalised ``text``.

    ``currencies`` maps a currency code to its markers (prefixes like "¥", "rmb", or
    suffixes like "元", "美元", "yuan"). A number counts as money when a currency marker
    is next to it, or when it carries 万/亿 and is not followed by a unit of counting
    (人, 名, 户 …), because "1200万" alone is how amounts are written in reports.
    """
    found: list[Amount] = []
    text = _APPROX.sub("", text)
    prefix, suffix, bare, by_marker = _amount_patterns(
        tuple((code, tuple(ms)) for code, ms in currencies.items()), tuple(count_units))
    taken: list[tuple[int, int]] = []

    def add(match: re.Match[str], code: str) -> None:
        number = parse_number(match.group("num"))
        if number is None or number == 0:
            return
        mag = match.groupdict().get("mag")
        if mag:
            number *= _MAGNITUDES[mag]
        taken.append(match.span())
        found.append(Amount(number, code, number * rates.get(code, Decimal(1)),
                            match.group(0).strip()))

    chars = set(text)
    # Each of prefix and suffix needs a marker, bare a 万 or 亿: don't run them without.
    with_marker = (prefix, suffix) if any(
        marker[0] in chars and marker in text for marker in by_marker) else ()
    for pattern in with_marker:
        for match in pattern.finditer(text):
            if any(s <= match.start() < e for s, e in taken):
                continue
            marker = match.group("cur")
            if pattern is prefix and not _prefix_ok(marker):
                continue
            add(match, by_marker[marker])
    for match in bare.finditer(text) if "万" in chars or "亿" in chars else ():
        if any(s <= match.start() < e for s, e in taken):
            continue
        number_text = match.group("num")
        # "千万别…" (by all means) and "万一" (in case) are words, not amounts
        if re.search("[万亿]", number_text) and number_text[0] not in _UNIT_CHARS:
            add(match, "CNY")
    return found


@functools.lru_cache(maxsize=16)
def _amount_patterns(currencies: tuple[tuple[str, tuple[str, ...]], ...],
                     count_units: tuple[str, ...]
                     ) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], dict[str, str]]:
    """The prefix, suffix and bare-number patterns of one vocabulary, built once (a rule set
    has one; building them for every submission cost as much as matching them)."""
    markers = sorted(((normalise(m), code) for code, ms in currencies for m in ms),
                     key=lambda item: len(item[0]), reverse=True)
    marker_re = "|".join(re.escape(m) for m, _ in markers)
    prefix = re.compile(rf"(?P<cur>{marker_re})\s*(?P<num>{NUMBER}){_MAG}\s*(?P<cur2>{marker_re})?")
    suffix = re.compile(rf"(?P<num>{NUMBER}){_MAG}\s*(?P<cur>{marker_re})")
    bare = re.compile(rf"(?P<num>{NUMBER})(?!\s*(?:{'|'.join(map(re.escape, count_units))}))")
    return prefix, suffix, bare, dict(markers)


def _prefix_ok(marker: str) -> bool:
    # Suffix-only markers ("元", "美元") must not be read as a prefix of the next number.
    return not re.fullmatch(r"[\u4e00-\u9fff]+", marker) or marker in ("人民币", "港币", "美金")


_COUNT = rf"(?P<n>{NUMBER}|(?<![a-z])(?:{_EN_NUMBER})(?![a-z]))(?:多|余|\+)?"
# Where a pattern that starts with a number can start: a digit or numeral, or an English
# number word at a word start. Finding these once per text lets a pattern that begins with
# {n} be tried only there instead of at every character (the same matches as finditer).
_COUNT_START = re.compile(rf"[\d{_NUM_CHARS[4:]}.]|(?<![a-z])(?:{_EN_NUMBER})(?![a-z])")


# Characters a number of ours may be made of (NUMBER's second form): prefixing one of them
# to a number that ends in a digit or numeral gives another number.
_NUMBER_CHARS = frozenset("0123456789.," + _NUM_CHARS[4:])
_OTHER_DIGITS = re.compile(r"(?![0-9])\d")  # digits of other scripts, which \d also takes


@dataclass(frozen=True)
class _FactPattern:
    regex: re.Pattern[str]
    leading_number: bool  # the pattern begins with {n}
    refers_to_number: bool  # the rest of the pattern refers back to the number's group
    # Literal text every match holds: for each tuple, one of its strings (see below).
    required: tuple[tuple[str, ...], ...] = ()

    def may_match(self, text: str, chars: Set[str]) -> bool:
        """Whether ``text`` (made of ``chars``) holds one of each choice of literals."""
        return all(any(word[0] in chars and word in text for word in words)
                   for words in self.required)


@functools.lru_cache(maxsize=1024)
def _fact_pattern(raw: str) -> _FactPattern:
    normalised = normalise(raw)
    return _FactPattern(re.compile(normalised.replace("{n}", _COUNT)),
                        normalised.startswith("{n}"),
                        bool(re.search(r"\(\?P=|\\\d|\\g<", normalised, re.IGNORECASE)),
                        required_literals(normalised.replace("{n}", "\0")))


_META = frozenset("\\.^$*+?{}[]()|\0")
_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")


def required_literals(pattern: str) -> tuple[tuple[str, ...], ...]:
    """Literal text that every match of ``pattern`` contains, as a conjunction of choices:
    each tuple holds strings one of which is in the match.

    Read off the top level of the pattern: runs of plain characters and ``(?:a|b|…)``
    groups whose alternatives are plain, neither made optional by a quantifier. Anything
    else (classes, escapes, other groups, ``\0`` for a number) requires nothing. A pattern
    with ``|`` or a global flag at the top level requires nothing. Rules are data, so this
    only ever errs towards requiring less: a text lacking one of these choices cannot
    match, and a count pattern is not run over it (count patterns are ≈ 40 % of triage).
    """
    if _GLOBAL_FLAGS.search(pattern):
        return ()
    required: list[tuple[str, ...]] = []
    run: list[str] = []  # consecutive mandatory plain characters

    def end_run() -> None:
        if run:
            required.append(("".join(run),))
            run.clear()

    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char == "|":
            return ()
        choices: tuple[str, ...] | None = None
        if char == "(":
            end = _group_end(pattern, at)
            if end is None:
                return ()
            inner = pattern[at + 1:end]
            if inner.startswith("?:") and not _META.intersection(inner[2:].replace("|", "")):
                choices = tuple(inner[2:].split("|"))
            at = end + 1
        elif char == "[":
            end = _class_end(pattern, at)
            if end is None:
                return ()
            at = end + 1
        elif char == "\\":
            at += 2
        else:
            if char not in _META:
                choices = (char,)
            at += 1
        at, quantified, optional = _quantifier(pattern, at)
        if choices is None or optional:
            end_run()
        elif len(choices) == 1 and len(choices[0]) == 1:
            run.append(choices[0])
            if quantified:  # "ab+c" holds "ab", not "abc"
                end_run()
        else:
            end_run()
            if "" not in choices:
                required.append(choices)
    end_run()
    return tuple(required)


def _group_end(pattern: str, start: int) -> int | None:
    """Index of the ``)`` closing the group opened at ``start``."""
    depth, at = 0, start
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            at += 2
            continue
        if char == "[":
            end = _class_end(pattern, at)
            if end is None:
                return None
            at = end + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return at
        at += 1
    return None


def _class_end(pattern: str, start: int) -> int | None:
    """Index of the ``]`` closing the character class opened at ``start``."""
    at = start + 1
    if at < len(pattern) and pattern[at] == "^":
        at += 1
    if at < len(pattern) and pattern[at] == "]":
        at += 1  # a leading ] is a member
    while at < len(pattern):
        if pattern[at] == "\\":
            at += 2
            continue
        if pattern[at] == "]":
            return at
        at += 1
    return None


_REPEAT = re.compile(r"\{(\d*)(?:,\d*)?\}")


def _quantifier(pattern: str, at: int) -> tuple[int, bool, bool]:
    """Skip a quantifier at ``at``: where the next element starts, whether there was one,
    and whether the element before it may occur zero times."""
    if at >= len(pattern):
        return at, False, False
    if pattern[at] in "?*+":
        optional = pattern[at] != "+"
        at += 1
    elif (repeat := _REPEAT.match(pattern, at)) is not None:
        optional = int(repeat.group(1) or 0) == 0
        at = repeat.end()
    else:
        return at, False, False
    if at < len(pattern) and pattern[at] in "?+":  # lazy or possessive
        at += 1
    return at, True, optional


def _matches(pattern: _FactPattern, text: str, starts: Sequence[tuple[int, bool]]
             ) -> Iterable[re.Match[str]]:
    """``pattern.regex.finditer(text)``, trying a leading-number pattern only at ``starts``.

    A start marked True continues a number (it and the character before it are number
    characters). If the pattern failed one character earlier, it fails there too: a
    match there would give one at the earlier start, whose number is the same one with a
    character more in front, followed by the same text. So it is skipped: "2025年" costs
    one try, not four.
    """
    if not pattern.leading_number:
        yield from pattern.regex.finditer(text)
        return
    skip_continuations = not pattern.refers_to_number
    end, failed = 0, -2
    for start, continues in starts:
        if start < end:
            continue  # finditer does not return overlapping matches
        if continues and failed == start - 1 and skip_continuations:
            failed = start
            continue
        match = pattern.regex.match(text, start)
        if match is not None:
            yield match
            end = max(match.end(), start + 1)
        else:
            failed = start


def count_facts(text: str, patterns: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Largest count per fact: ``{n}`` stands for a number (digits, 中文 or English words)."""
    counts: dict[str, int] = {}
    chars = set(text)
    starts: list[tuple[int, bool]] | None = None
    for fact, fact_patterns in patterns.items():
        for raw in fact_patterns:
            pattern = _fact_pattern(raw)
            if not pattern.may_match(text, chars):
                continue
            if pattern.leading_number and starts is None:
                starts = _number_starts(text)
            for match in _matches(pattern, text, starts or ()):
                number = parse_number(match.group("n"))
                if number is not None:
                    counts[fact] = max(counts.get(fact, 0), int(number))
    return counts


def _number_starts(text: str) -> list[tuple[int, bool]]:
    """Where a number may start in ``text``, each marked True where it continues one."""
    # (Other scripts' digits are numbers of the first form only: no skipping with them.)
    plain = _OTHER_DIGITS.search(text) is None
    return [(start, plain and start > 0 and text[start] in _NUMBER_CHARS
             and text[start - 1] in _NUMBER_CHARS)
            for start in (m.start() for m in _COUNT_START.finditer(text))]


_WORDLESS = re.compile(r"[\W_]+")
# A longer part of a fingerprint is normalised piece by piece (issue 7: a 10 MB text
# normalised whole held several copies of itself, and zhconv a list of one string per
# character).
FINGERPRINT_PIECE = 64 * 1024


def fingerprint(parts: Iterable[str]) -> str:
    """SHA-256 over normalised content with spacing and punctuation removed.

    The digest of ``"\\x1f".join(re.sub(r"[\\W_]+", "", normalise(p)) for p in parts)``;
    a part longer than :data:`FINGERPRINT_PIECE` characters is normalised in pieces cut
    where that gives the same (:func:`pieces`), so memory does not grow with the text.
    """
    digest = hashlib.sha256()
    for index, part in enumerate(parts):
        if index:
            digest.update(b"\x1f")
        if len(part) <= FINGERPRINT_PIECE:
            digest.update(_WORDLESS.sub("", normalise(part)).encode("utf-8"))
            continue
        for piece in pieces(part, FINGERPRINT_PIECE):
            # Not normalise(): its cache of long texts is for the texts triage reads.
            digest.update(_WORDLESS.sub("", _normalise(piece)).encode("utf-8"))
    return digest.hexdigest()


def pieces(text: str, size: int) -> Iterator[str]:
    """``text`` in consecutive pieces of about ``size`` characters, each cut where
    :func:`can_cut` allows (a piece is longer only where no such place comes sooner)."""
    start, end = 0, len(text)
    while end - start > size:
        cut = next((at for at in range(start + size, start, -1) if can_cut(text, at)),
                   None) or next((at for at in range(start + size + 1, end)
                                  if can_cut(text, at)), end)
        yield text[start:cut]
        start = cut
    if start < end:
        yield text[start:]


def can_cut(text: str, at: int) -> bool:
    """Whether the fingerprint's normalisation of ``text[:at]`` and ``text[at:]`` apart,
    spacing and punctuation then removed, equals that of ``text`` (0 < at < len(text)).

    True after whitespace, and between two plain characters (ASCII, CJK ideographs) that
    no zhconv phrase holds side by side: NFKC leaves such characters alone, whitespace and
    they never compose with what stands before them, casefolding and the removal of
    spacing and punctuation go character by character, and zhconv's phrases (matched
    longest first, from left to right) never span the cut. tests/unit/test_triage.py
    checks each of these facts over all of Unicode and zhconv's table.
    """
    before, after = text[at - 1], text[at]
    if before.isspace():
        return True
    return _plain(before) and _plain(after) and before + after not in _zhconv_pairs()


def _plain(char: str) -> bool:
    return char < "\x80" or "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


@functools.cache
def _zhconv_pairs() -> frozenset[str]:
    """Every two characters that stand side by side in a phrase zhconv converts."""
    return frozenset(word[i:i + 2] for word in zhconv.zhconv.getdict("zh-cn")
                     for i in range(len(word) - 1))
