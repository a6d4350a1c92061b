"""Triage beyond the table: routing, exclusions, re-triage, fingerprints, amounts, config."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hotline.triage import (
    RuleSet,
    TriageInput,
    TriageResult,
    _text,
    content_fingerprint,
    default_engine,
    normalise,
    parse_amounts,
    validate_config,
)
from hotline.triage._text import count_facts

pytestmark = pytest.mark.unit


def report(description: str, unit: str | None = None, real_name: bool = False,
           earlier: tuple[str, ...] = (), **payload: Any) -> TriageResult:
    return default_engine().triage(TriageInput(
        kind="report", category="corruption", channel="web",
        payload={"description": description, **payload}, real_name=real_name, unit=unit,
        earlier_fingerprints=earlier))


def test_provincial_gm_goes_to_hq_and_the_province_keeps_a_stub() -> None:
    """A report about GD's general manager: HQ responsible, GD stub, GM excluded by id."""
    result = report("總經理收受回扣。", unit="GD",
                    subjects=[{"name": "陳國強", "unit": "廣東公司", "position": "總經理"}])
    assert ("HQ", "GD", True) == (result.responsible_unit, result.stub_unit, result.escalated)
    assert [("陳國強", "GD0001", "GD")] == [(e.name, e.employee_id, e.unit)
                                          for e in result.exclusions]


def test_unnamed_leader_in_text_is_still_excluded_by_register() -> None:
    """"广东公司总经理" without a name excludes the register's holder of that post."""
    result = report("广东公司总经理收受供应商回扣。", unit="GD")
    assert ["GD0001"] == [e.employee_id for e in result.exclusions]


@pytest.mark.parametrize("leader", [
    ("陈国强", "GD", "总经理"), ("林海", "GD-DESIGN", "院长"), ("杨帆", "SC-ENERGY", "总经理"),
    ("Siti Rahman", "OVERSEAS-SEA", "Country Manager"), ("刘洋", "BJ", "总经理"),
])
def test_never_routed_to_the_leaders_own_unit(leader: tuple[str, str, str]) -> None:
    """Whoever the leader, the case goes above their unit and they are excluded."""
    name, unit, position = leader
    result = report("违规收受礼金。", unit=unit,
                    subjects=[{"name": name, "unit": unit, "position": position}])
    assert (True, True) == (result.responsible_unit not in (unit,),
                            name in [e.name for e in result.exclusions])


def test_root_leader_is_referred_outside() -> None:
    """A leader of HQ has no level above inside the group."""
    result = report("董事长违规收受礼金。", unit="HQ",
                    subjects=[{"name": "王志刚", "unit": "HQ", "position": "董事长"}])
    assert (True, "HQ") == (result.referral_outside, result.responsible_unit)


def test_middle_manager_excludes_the_management_line() -> None:
    """The unit's leaders are in a middle manager's line and are excluded too."""
    result = report("工程管理部经理索要好处费。", unit="GD",
                    subjects=[{"name": "周文", "unit": "GD", "position": "工程管理部经理"}])
    assert {"周文", "陈国强", "黄丽"} == {e.name for e in result.exclusions}


def test_retaliation_risk_is_assessed_and_explained() -> None:
    """Threats reported in the text give a high risk with the reasons recorded."""
    result = report("科长威胁我说，如果再举报就开除我。", unit="AH", real_name=True)
    assert ("high", ["threat-reported", "real-name-reporter", "subject-has-power",
                     "subject-in-reporters-unit"]) == (
        result.retaliation_risk.level, [f.id for f in result.retaliation_risk.factors])


def test_every_fired_rule_has_a_reason() -> None:
    """Reasons are filled in, with no placeholder left."""
    result = report("廣東公司總經理收受回扣1200萬。", unit="GD")
    assert [] == [f.id for f in result.fired if not f.reason or "{" in f.reason]
    assert "RMB 12,000,000" in result.fired[1].reason


def test_retriage_raises_on_new_information() -> None:
    """New information naming a leader raises general → major and escalates."""
    first = report("办公楼装修项目未经招标直接发包，程序不规范。", unit="GD")
    new = TriageInput(kind="report", category="corruption", channel="web", unit="GD",
                      payload={"description": "装修项目未经招标直接发包，是广东公司总经理授意的。"})
    again = default_engine().retriage(first, new)
    assert ("general", "major", "HQ", "GD") == (first.severity, again.severity,
                                               again.responsible_unit, again.stub_unit)


def test_retriage_never_lowers() -> None:
    """New information that alone looks general keeps the earlier major, with a reason."""
    first = report("廣東公司總經理收受回扣。", unit="GD")
    new = TriageInput(kind="report", category="corruption", channel="web", unit="GD",
                      payload={"description": "补充：有一张发票。"})
    again = default_engine().retriage(first, new)
    assert ("major", "HQ", True) == (again.severity, again.responsible_unit,
                                     "retriage.kept-level" in again.rule_ids)


def test_only_an_officer_lowers_and_needs_a_reason() -> None:
    """Lowering is an officer's decision, recorded with the reason."""
    engine = default_engine()
    first = report("廣東公司總經理收受回扣。", unit="GD")
    with pytest.raises(ValueError, match="reason"):
        engine.set_severity(first, "general", "supervisor.zhao", " ")
    lowered = engine.set_severity(first, "general", "supervisor.zhao", "no such post holder")
    assert ("general", "general", "officer.override") == (
        lowered.severity, lowered.flow, lowered.fired[-1].id)


def test_fingerprint_ignores_script_width_and_spacing() -> None:
    """The same report in 繁體 with full-width punctuation has the same fingerprint."""
    assert content_fingerprint("report", {"description": "总经理收受回扣,金额100万元。"}) == \
        content_fingerprint("report", {"description": "總經理 收受回扣，金額１００萬元。"})


def test_repeat_with_nothing_new_is_low() -> None:
    """A resubmission of the same content is capped at low and marked as a repeat."""
    text = "广东公司总经理收受回扣。"
    earlier = content_fingerprint("report", {"description": text})
    result = report(text, unit="GD", earlier=(earlier,))
    assert ("low", True, "repeat.nothing-new") == (result.severity, result.repeat,
                                                  result.rule_ids[-1])


def test_result_round_trips_through_a_dict() -> None:
    """What the router stores on the case comes back equal."""
    result = report("项目经理何某索要好处费5万元，他威胁我不许声张。", unit="GD",
                    real_name=True)
    assert result == TriageResult.from_dict(result.to_dict())


@pytest.mark.parametrize(("text", "expected"), [
    ("损失1200萬", Decimal(12_000_000)),
    ("一千二百万元", Decimal(12_000_000)),
    ("¥3.5m", Decimal(3_500_000)),
    ("RMB 12,000,000", Decimal(12_000_000)),
    ("壹仟萬", Decimal(10_000_000)),
    ("HK$5 million", Decimal(4_550_000)),
    ("3.5亿元", Decimal(350_000_000)),
    ("两万元", Decimal(20_000)),
    ("五十万人民币", Decimal(500_000)),
    ("USD 200k", Decimal(1_420_000)),
])
def test_amounts_in_digits_and_chinese_numerals(text: str, expected: Decimal) -> None:
    """Amounts are read from digits, Chinese numerals, magnitudes and currency markers."""
    rules = default_engine().rules
    found = parse_amounts(normalise(text), rules.currencies, rules.rates, rules.count_units)
    assert expected == max(a.cny for a in found)


@pytest.mark.parametrize("text", ["3万人参加", "千万不要", "2026年", "万一出事", "第3次"])
def test_numbers_that_are_not_money(text: str) -> None:
    """Headcounts, idioms, years and counts are not amounts."""
    rules = default_engine().rules
    assert [] == parse_amounts(normalise(text), rules.currencies, rules.rates,
                               rules.count_units)


def test_normalise_unifies_scripts_width_and_case() -> None:
    """Traditional → simplified, full-width → half-width, case-folded."""
    assert "党委书记 general manager 100" == normalise("黨委書記　General Manager １００")


def test_packaged_config_files_are_valid() -> None:
    """Every packaged data file passes `hotline config check`."""
    data = Path(__file__).parents[2] / "hotline" / "data"
    files = ["triage_rules.toml", "workflows.toml", "holidays.toml", "leaders.toml",
             "units.toml"]
    assert {name: [] for name in files} == {
        name: [str(p) for p in validate_config(data / name)] for name in files}


def test_broken_rules_file_reports_locations(tmp_path: Path) -> None:
    """A broken rules file lists each problem with where it is."""
    broken = tmp_path / "rules.toml"
    broken.write_text(
        '[severity]\norder = ["low", "high"]\nflows = { low = "general", high = "serious" }\n'
        '[amounts]\nrates = { CNY = 1 }\ncurrencies = { CNY = ["元"], USD = ["$"] }\n'
        '[lexicon]\nbribes = ["受贿"]\n'
        '[retaliation_risk]\nlevels = { high = 3 }\n'
        '[[rule]]\nid = "a"\nreason = "x"\nkeywords = ["bribe"]\nseverity = "major"\n'
        '[[rule]]\nid = "a"\nreason = "y"\nseverity = "low"\n', encoding="utf-8")
    assert [
        ("amounts.currencies.USD", "no rate in amounts.rates"),
        ("rule[0] (a)", "keywords: no lexicon named 'bribe'"),
        ("rule[0] (a)", "severity 'major' is not one of low, high"),
        ("rule[1] (a)", "duplicate id (first at rule[0])"),
    ] == [(p.location, p.message) for p in validate_config(broken)]


def test_broken_workflow_and_invalid_toml_are_explained(tmp_path: Path) -> None:
    """A workflow naming an unknown clock, and a file that is not TOML, both explained."""
    workflow = tmp_path / "wf.toml"
    workflow.write_text(
        '[actions.close]\nfrom = ["open"]\nto = "closed"\nroles = ["officer"]\n'
        '[[workflow]]\nname = "w"\nkind = "complaint"\nflow = "general"\ninitial = "open"\n'
        'states = ["open", "closed"]\nactions = ["close"]\nclocks = ["resolve"]\n',
        encoding="utf-8")
    garbage = tmp_path / "bad.toml"
    garbage.write_text("[[rule]\nid = ", encoding="utf-8")
    assert [("workflow[0] (w).clocks", "no [clocks.resolve]")] == [
        (p.location, p.message) for p in validate_config(workflow)]
    assert ["not valid TOML"] == [p.message.split(":")[0] for p in validate_config(garbage)]


def test_public_dict_carries_no_subject_names() -> None:
    """What is stored in clear names no subject; the full form keeps them for exclusions."""
    result = report("陈国强收受回扣。", unit="GD",
                    subjects=[{"name": "陈国强", "unit": "GD", "position": "总经理"}])
    assert ("陈国强" in str(result.to_dict()), "陈国强" in str(result.public_dict())) == (
        True, False)


# -- count_facts tries number-led patterns only where a number starts --------------------

_FACT_ALPHABET = [*"0123456789一二两三十百千万亿多余人名位死亡受伤工户次 .,", "three", "five",
                  "ten", "a dozen", "dozens of", " killing ", "people", "died", "workers",
                  "one", "someone", "hundreds of", "households", "times",
                  # words the patterns require (required_literals), whole and in parts
                  "死亡", "遇难", "重伤", "受重伤", "轻伤", "人数", "达到", "砸死", "死了", "第",
                  "累计", "投诉", "反映", "报修", "员工", "个用户", "were ", "seriously ",
                  "injured", "serious ", "injuries", "killed", "lost their lives", "staff"]


def _count_facts_everywhere(text: str) -> dict[str, int]:
    """The reference: every pattern run by finditer at every position."""
    counts: dict[str, int] = {}
    for fact, raws in RuleSet.load().counts.items():
        for raw in raws:
            for match in _text._fact_pattern(raw).regex.finditer(text):
                number = _text.parse_number(match.group("n"))
                if number is not None:
                    counts[fact] = max(counts.get(fact, 0), int(number))
    return counts


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FACT_ALPHABET), max_size=40).map("".join))
def test_count_facts_equals_trying_every_position(text: str) -> None:
    normalised = normalise(text)
    assert count_facts(normalised, RuleSet.load().counts) == _count_facts_everywhere(normalised)


@pytest.mark.parametrize(("pattern", "required"), [
    ("{n}\\s*(?:人|名)?\\s*(?:死亡|遇难)", (("死亡", "遇难"),)),
    ("(?:死亡|遇难)\\s*(?:人数)?\\s*{n}\\s*(?:人|名)", (("死亡", "遇难"), ("人", "名"))),
    ("killing\\s+{n}", (("killing",),)),
    ("{n}\\s+serious\\s+injuries", (("serious",), ("injuries",))),
    ("{n}\\s*次(?:投诉|反映)", (("次",), ("投诉", "反映"))),
    ("ab+c", (("ab",), ("c",))),  # "abbc" holds no "abc"
    ("abc?d", (("ab",), ("d",))),
    ("ab{0,2}c{2,}d", (("a",), ("c",), ("d",))),
    ("a[xy]b.c\\.d", (("a",), ("b",), ("c",), ("d",))),
    ("(?:x|)y", (("y",),)),  # an empty alternative requires nothing
    ("(?:xy|z)*w", (("w",),)),
    ("(?i:ab)c", (("c",),)),  # a scoped flag: the group is not plain
    ("(?P<a>ab)c", (("c",),)),
    ("(?:a(?:b|c))d", (("d",),)),
    ("[)(]ab", (("ab",),)),  # brackets inside a class
    ("ab|cd", ()),  # a top-level alternative
    ("(?i)abc", ()),  # a global flag
    ("ab(", ()),  # not a pattern: nothing required, re.compile says what is wrong
])
def test_required_literals(pattern: str, required: tuple[tuple[str, ...], ...]) -> None:
    assert _text.required_literals(pattern.replace("{n}", "\0")) == required


_PATTERN_PARTS = ["a", "b", "c", "ab", "(?:a|bc)", "(?:b|)", "[ab]", "\\s", ".", "|", "(?i)",
                  "(?i:a)", "(?P<g>ab)", "(?=a)", "(?<!b)", "\\d"]
_QUANTIFIERS = ["", "", "", "?", "*", "+", "{0,2}", "{1,2}", "{2}", "+?", "??"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PATTERN_PARTS), st.sampled_from(_QUANTIFIERS)),
                min_size=1, max_size=6),
       st.lists(st.sampled_from(["a", "b", "c", "ab", "bb", "bc", "A", " ", "1"]), max_size=20)
       .map("".join))
@example(parts=[("a", ""), ("b", "+"), ("c", "")], text="abbc")
def test_every_match_holds_the_required_literals(parts: list[tuple[str, str]],
                                                  text: str) -> None:
    """The prefilter of count patterns only ever errs towards requiring less."""
    pattern = "".join(part + (quantifier if part not in ("|", "(?i)") else "")
                      for part, quantifier in parts)
    try:
        regex = re.compile(pattern)
    except re.error:
        return
    required = _text.required_literals(pattern)
    for match in regex.finditer(text):
        found = match.group(0)
        assert all(any(word in found for word in words) for words in required), (
            pattern, found, required)


_ODD_PATTERNS = {"zeros": ("{n}0",), "commas": ("{n},",), "times": ("{n}\\s*次",),
                 "tens": ("{n}十人",), "back": ("{n}-\\1",), "ends_in_ten": ("{n}人十",)}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*"0123456789,.次十人- ", "一", "three"]), max_size=30)
       .map("".join))
@example("3人十5人十")  # a match ends inside a number: the next one starts right there
def test_count_facts_equals_finditer_for_patterns_ending_inside_numbers(text: str) -> None:
    """Patterns whose match can end in the middle of a number (rules are data)."""
    normalised = normalise(text)
    expected: dict[str, int] = {}
    for fact, raws in _ODD_PATTERNS.items():
        for raw in raws:
            for match in re.finditer(normalise(raw).replace("{n}", _text._COUNT), normalised):
                number = _text.parse_number(match.group("n"))
                if number is not None:
                    expected[fact] = max(expected.get(fact, 0), int(number))
    assert expected == count_facts(normalised, _ODD_PATTERNS)


def test_english_number_words_count_only_as_whole_words() -> None:
    # "someone" ends in "one": it is not the number one (the look-behind once covered only
    # the first of the number words).
    counts = RuleSet.load().counts
    assert count_facts(normalise("someone households were cut off"), counts) == {}
    assert count_facts(normalise("one households were cut off"), counts) == {"households": 1}


def test_to_dict_is_dataclasses_asdict() -> None:
    """The hand-written serialiser gives what dataclasses.asdict gives, nested values too."""
    import dataclasses

    result = report("采购部经理王某收受供应商回扣200万元，并多次打击报复举报人；3名工人受伤",
                    unit="GD", real_name=True,
                    subjects=[{"name": "王某", "unit": "GD", "position": "采购部经理"}])
    assert result.fired  # nested values present
    assert result.exclusions
    assert result.subjects
    assert dataclasses.asdict(result) == result.to_dict()


# -- the text is normalised one field at a time -------------------------------------------

_FIELD_ALPHABET = [*"發現經理貪污賄賂乾干後后里裡ＡＢｃ１２ 　\t\n\r\x0b\x85\u3000éé",
                   "e\u0301", "\u0301", "Straße", "ﬁ", "總經理", "retaliation", " bribe ",
                   "丟失", "臺灣", "头发", "頭髮"]
_fields = st.lists(st.sampled_from(_FIELD_ALPHABET), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: _fields for k in (
    "title", "subject", "description", "location", "evidence")}),
    st.lists(_fields, max_size=3))
def test_fields_normalised_apart_equal_the_joined_text_normalised(
        payload: dict[str, str], positions: list[str]) -> None:
    from hotline.triage._engine import _normalised_text_of, _text_of

    doc: dict[str, Any] = {**payload, "subjects": [{"position": p} for p in positions]}
    assert normalise(_text_of(doc)) == _normalised_text_of(doc)


def test_no_zhconv_phrase_spans_a_line_break() -> None:
    """What makes normalising field by field equal: conversion never looks across lines."""
    import zhconv  # type: ignore[import-untyped]

    assert [] == [w for w in zhconv.zhconv.getdict("zh-cn") if "\n" in w or "\r" in w]


# -- long texts: the fingerprint in pieces, triage bounded (issue 7) ---------------------------

def _fingerprint_whole(parts: list[str]) -> str:
    """The fingerprint as it was computed before pieces: every part normalised whole."""
    import hashlib

    joined = "\x1f".join(re.sub(r"[\W_]+", "", normalise(p)) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("parts", "digest"), [
    (["report", "广东公司总经理收受回扣",
      "總經理 收受回扣，金額１００萬元。\n第二行 Straße ﬁ e\u0301", "王某"],
     "a7e2378fa35d8adf0403315d1da46d9d859e8076e16e4665da2a90edb2d8e38c"),
    (["complaint", "Installation late", "The fibre line is 3 weeks late.\r\n\tΣΑΣ"],
     "9b38cbeb5302559525f0f53bfe1bb4e8d7c331a2568fbc31505f841f121ec41b"),
    (["report", "t", "總經理收受回扣，金額１００萬元。乾隆 頭髮 A型肝炎 x" * 5000],
     "dee3ae61d4a4b47bc5085e01c5582bce5cf989807a4cdf9d779b33f99a72fe59"),
], ids=["short-zh", "short-en", "140k-characters"])
def test_fingerprints_are_what_they_were(parts: list[str], digest: str) -> None:
    """Digests computed by the code before pieces (stored on cases) come out the same."""
    assert digest == _text.fingerprint(parts)
    assert digest == _fingerprint_whole(parts)


_PIECE_ALPHABET = [*_FIELD_ALPHABET, "乾隆", "A型肝炎", "16進位", "IP位址", "芮氏5", "x", "xx",
                   "Σ", "ΑΣ ", "İ", "ﬀ", "\u1100\u1161", "\u11a8", "가", "。", "，", "「」",
                   "易經·乾", "\u0338", "<", "\u00a0", "\u2028", "\x1c"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECE_ALPHABET), max_size=40).map("".join),
                min_size=1, max_size=4),
       st.integers(min_value=1, max_value=12))
@example(["乾隆" * 20, "xx" * 30], 3)
def test_fingerprint_in_pieces_equals_the_whole(parts: list[str], size: int) -> None:
    """Normalised in pieces of a few characters, the fingerprint is the one of the whole
    parts; the pieces join up to the text and are cut only where can_cut allows."""
    original = _text.FINGERPRINT_PIECE
    _text.FINGERPRINT_PIECE = size
    try:
        assert _fingerprint_whole(parts) == _text.fingerprint(parts)
    finally:
        _text.FINGERPRINT_PIECE = original
    for part in parts:
        pieces = list(_text.pieces(part, size))
        assert part == "".join(pieces)
        cuts = [len("".join(pieces[:i])) for i in range(1, len(pieces))]
        assert all(_text.can_cut(part, at) for at in cuts)


def test_the_facts_that_make_cuts_safe_hold() -> None:
    """What can_cut relies on, over all of Unicode and zhconv's table: plain characters are
    left alone by NFKC, whitespace stays whitespace; neither is the second half of a
    canonical composition, whitespace not the first; no zhconv phrase holds whitespace."""
    import sys
    import unicodedata

    import zhconv  # type: ignore[import-untyped]

    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    plain = [c for c in chars if _text._plain(c)]
    spaces = [c for c in chars if c.isspace()]
    assert [] == [c for c in plain if unicodedata.normalize("NFKC", c) != c]
    assert [] == [c for c in spaces if not unicodedata.normalize("NFKC", c).isspace()]
    pairs = [unicodedata.decomposition(c).split() for c in chars]
    pairs = [[chr(int(h, 16)) for h in p] for p in pairs if len(p) == 2 and "<" not in p[0]]
    assert [] == [p for p in pairs if _text._plain(p[1]) or p[1].isspace() or p[0].isspace()]
    assert [] == [w for w in zhconv.zhconv.getdict("zh-cn") if any(c.isspace() for c in w)]


def test_a_long_field_is_triaged_by_its_beginning_and_says_so() -> None:
    """Past TRIAGE_TEXT_LIMIT characters a field is not read (a keyword there does not
    fire), the explanation names the cut field, the fingerprint covers the whole text;
    at the limit nothing is cut."""
    from hotline.triage import TEXT_CUT, TRIAGE_TEXT_LIMIT

    head = "总经理收受回扣。" + "x" * (TRIAGE_TEXT_LIMIT - 8)
    assert TRIAGE_TEXT_LIMIT == len(head)
    whole = report(head, unit="GD")
    assert TEXT_CUT not in whole.rule_ids
    longer = head + "他威胁我不许声张，打击报复举报人。" * 10
    cut = report(longer, unit="GD")
    assert TEXT_CUT == cut.rule_ids[-1]
    assert "description" in cut.fired[-1].reason
    assert [r for r in whole.rule_ids] == [r for r in cut.rule_ids if r != TEXT_CUT]
    assert content_fingerprint("report", {"description": longer}) == cut.fingerprint
    assert cut.fingerprint != whole.fingerprint
    named = report("收受回扣", unit="GD", subjects=[{"name": "王" * (TRIAGE_TEXT_LIMIT + 1)}])
    assert TEXT_CUT == named.rule_ids[-1]
    assert "subjects" in named.fired[-1].reason


# -- all keyword sets in one pass ------------------------------------------------------------

def _keyword_pieces() -> list[str]:
    """Whole keywords of the packaged lexicon, their halves, and what borders them."""
    words = [w for ks in RuleSet.load().lexicon.values() for w in ks.words]
    pieces = [w.rstrip("*").replace("...", "") for w in words]
    pieces += [p[: max(1, len(p) // 2)] for p in pieces] + [p[len(p) // 2:] for p in pieces]
    return [*sorted(set(pieces)), " ", "s", "es", "x", "1", "三", "的", "。", "...", "-"]


_PIECES = _keyword_pieces()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_keyword_index_equals_every_set_scanned(text: str) -> None:
    rules = RuleSet.load()
    normalised = normalise(text)
    expected = {name: ks.find(normalised) for name, ks in rules.lexicon.items()}
    assert expected == rules.keyword_index.find_all(normalised)


def test_keyword_index_scans_a_set_whose_keyword_starts_with_a_gap() -> None:
    from hotline.triage._text import KeywordIndex, KeywordSet

    gap, plain = KeywordSet.build("gap", ["...工资", "欠薪"]), KeywordSet.build("plain", ["欠薪"])
    text = "拖欠工资,还有欠薪"
    found = KeywordIndex({"gap": gap, "plain": plain}).find_all(text)
    assert (None, ["拖欠工资", "欠薪"], ["欠薪"]) == (gap.heads, gap.find(text), plain.find(text))
    assert {"gap": gap.find(text), "plain": plain.find(text)} == found
