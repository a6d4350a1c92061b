"""The triage rule set: loaded from TOML, validated with locations, evaluated on facts."""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from hotline.triage._text import KeywordIndex, KeywordSet, normalise

__all__ = ["Condition", "Facts", "Rule", "RuleSet", "validate_rules"]

_LIST_KEYS = ("kind", "category", "not_category", "channel", "units", "keywords",
              "keywords_all", "keywords_none", "subject_rank", "retaliation_risk")
_CONDITION_KEYS = (*_LIST_KEYS, "amount_at_least", "amount_below", "facts_at_least",
                   "real_name", "repeat", "text_shorter_than", "subject_in_submission_unit")
_RULE_KEYS = ("id", "reason", "severity", "raise", "cap", "set_category", "priority", "escalate",
              *_CONDITION_KEYS)
_FACTOR_KEYS = ("id", "reason", "weight", *_CONDITION_KEYS)
_TOP_KEYS = ("severity", "amounts", "counts", "lexicon", "retaliation_risk", "rule")


@dataclass(frozen=True)
class Facts:
    """What triage found in a submission; no report text is kept here."""

    kind: str
    category: str
    channel: str
    units: frozenset[str]
    real_name: bool
    repeat: bool
    text_length: int
    keywords: Mapping[str, tuple[str, ...]]
    amount_cny: Decimal | None
    amount_text: str | None
    counts: Mapping[str, int]
    subject_ranks: frozenset[str]
    subject_in_submission_unit: bool
    retaliation_risk: str = "low"
    placeholders: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """The conditions of a rule or a retaliation-risk factor (all must hold)."""

    values: Mapping[str, Any]

    def holds(self, facts: Facts) -> bool:
        """Whether every named condition holds for ``facts``."""
        return all(_CHECKS[key](value, facts) for key, value in self.values.items())

    def matched_keywords(self, facts: Facts) -> list[str]:
        """The words that made the keyword conditions hold, for the reason text."""
        names = [*self.values.get("keywords", []), *self.values.get("keywords_all", [])]
        return [w for name in names for w in facts.keywords.get(name, ())]


def _any_keyword(names: Sequence[str], facts: Facts) -> bool:
    return any(facts.keywords.get(n) for n in names)


_CHECKS: dict[str, Any] = {
    "kind": lambda v, f: f.kind in v,
    "category": lambda v, f: f.category in v,
    "not_category": lambda v, f: f.category not in v,
    "channel": lambda v, f: f.channel in v,
    "units": lambda v, f: bool(f.units & set(v)),
    "keywords": _any_keyword,
    "keywords_all": lambda v, f: all(f.keywords.get(n) for n in v),
    "keywords_none": lambda v, f: not _any_keyword(v, f),
    "subject_rank": lambda v, f: bool(f.subject_ranks & set(v)),
    "retaliation_risk": lambda v, f: f.retaliation_risk in v,
    "amount_at_least": lambda v, f: f.amount_cny is not None and f.amount_cny >= Decimal(str(v)),
    "amount_below": lambda v, f: f.amount_cny is not None and f.amount_cny < Decimal(str(v)),
    "facts_at_least": lambda v, f: all(f.counts.get(k, 0) >= n for k, n in v.items()),
    "real_name": lambda v, f: f.real_name is v,
    "repeat": lambda v, f: f.repeat is v,
    "text_shorter_than": lambda v, f: f.text_length < v,
    "subject_in_submission_unit": lambda v, f: f.subject_in_submission_unit is v,
}


@dataclass(frozen=True)
class Rule:
    id: str
    reason: str
    when: Condition
    severity: str | None = None
    raise_levels: int = 0
    cap: str | None = None
    category: str | None = None
    priority: bool = False
    escalate: bool = False


@dataclass(frozen=True)
class RiskFactor:
    id: str
    reason: str
    weight: int
    when: Condition


@dataclass(frozen=True)
class RuleSet:
    """Everything ``triage_rules.toml`` says, ready to evaluate."""

    order: tuple[str, ...]
    flows: Mapping[str, str]
    default: Mapping[str, str]
    rates: Mapping[str, Decimal]
    currencies: Mapping[str, tuple[str, ...]]
    count_units: tuple[str, ...]
    counts: Mapping[str, tuple[str, ...]]
    lexicon: Mapping[str, KeywordSet]
    risk_levels: Mapping[str, int]
    factors: tuple[RiskFactor, ...]
    rules: tuple[Rule, ...]

    @classmethod
    def parse(cls, doc: Mapping[str, Any], source: str = "triage_rules.toml") -> RuleSet:
        """Build from a parsed document; ``ValueError`` listing every problem."""
        errors = validate_rules(doc, source)
        if errors:
            raise ValueError("; ".join(errors))
        severity, amounts, risk = doc["severity"], doc["amounts"], doc["retaliation_risk"]
        return cls(
            order=tuple(severity["order"]),
            flows=dict(severity["flows"]),
            default=dict(severity["default"]),
            rates={k: Decimal(str(v)) for k, v in amounts["rates"].items()},
            currencies={k: tuple(v) for k, v in amounts["currencies"].items()},
            count_units=tuple(normalise(u) for u in amounts.get("count_units", [])),
            counts={k: tuple(v) for k, v in doc.get("counts", {}).items()},
            lexicon={k: KeywordSet.build(k, v) for k, v in doc["lexicon"].items()},
            risk_levels=dict(risk["levels"]),
            factors=tuple(
                RiskFactor(id=f["id"], reason=f["reason"], weight=int(f["weight"]),
                           when=Condition(_conditions(f))) for f in risk.get("factor", [])),
            rules=tuple(
                Rule(id=r["id"], reason=r["reason"], when=Condition(_conditions(r)),
                     severity=r.get("severity"), raise_levels=int(r.get("raise", 0)),
                     cap=r.get("cap"), category=r.get("set_category"),
                     priority=bool(r.get("priority", False)),
                     escalate=bool(r.get("escalate", False))) for r in doc["rule"]),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> RuleSet:
        """Load ``path`` or the packaged default rules."""
        if path is None:
            text = resources.files("hotline").joinpath("data/triage_rules.toml").read_text("utf-8")
            return cls.parse(tomllib.loads(text), "triage_rules.toml (default)")
        return cls.parse(tomllib.loads(path.read_text("utf-8")), str(path))

    def rank(self, severity: str) -> int:
        return self.order.index(severity)

    @functools.cached_property
    def keyword_index(self) -> KeywordIndex:
        """The lexicon's sets, matched in one pass (built on first use)."""
        return KeywordIndex(self.lexicon)


def _conditions(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k in _CONDITION_KEYS}


def validate_rules(doc: Mapping[str, Any], source: str) -> list[str]:
    """Every problem of a triage rules document, each with its location."""
    errors: list[str] = [f"{source}: unknown key {k!r}" for k in set(doc) - set(_TOP_KEYS)]
    severity = doc.get("severity")
    order: list[str] = []
    if not isinstance(severity, dict) or not isinstance(severity.get("order"), list):
        errors.append(f"{source}: [severity] order is required")
    else:
        order = [str(s) for s in severity["order"]]
        flows = severity.get("flows", {})
        for level in order:
            if not isinstance(flows, dict) or flows.get(level) not in ("serious", "general"):
                errors.append(f"{source}: severity.flows.{level}: must be serious or general")
        for kind, level in dict(severity.get("default", {})).items():
            if level not in order:
                errors.append(f"{source}: severity.default.{kind}: unknown severity {level!r}")
    amounts = doc.get("amounts")
    if not isinstance(amounts, dict) or not isinstance(amounts.get("rates"), dict) \
            or not isinstance(amounts.get("currencies"), dict):
        errors.append(f"{source}: [amounts] needs rates and currencies tables")
    else:
        for code in amounts["currencies"]:
            if code not in amounts["rates"]:
                errors.append(f"{source}: amounts.currencies.{code}: no rate in amounts.rates")
    counts = doc.get("counts", {})
    for fact, patterns in dict(counts).items():
        for index, pattern in enumerate(patterns if isinstance(patterns, list) else [None]):
            where = f"{source}: counts.{fact}[{index}]"
            if not isinstance(pattern, str) or "{n}" not in pattern:
                errors.append(f"{where}: must be a pattern containing {{n}}")
                continue
            try:
                re.compile(pattern.replace("{n}", "(?P<n>1)"))
            except re.error as exc:
                errors.append(f"{where}: bad pattern: {exc}")
    lexicon = doc.get("lexicon", {})
    if not isinstance(lexicon, dict):
        errors.append(f"{source}: [lexicon] must be a table of keyword lists")
        lexicon = {}
    for name, words in lexicon.items():
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip()
                                                  for w in words):
            errors.append(f"{source}: lexicon.{name}: must be a list of non-empty strings")
    risk = doc.get("retaliation_risk")
    if not isinstance(risk, dict) or not isinstance(risk.get("levels"), dict):
        errors.append(f"{source}: [retaliation_risk] levels is required")
    else:
        for index, factor in enumerate(risk.get("factor", [])):
            where = f"{source}: retaliation_risk.factor[{index}]"
            errors += _check_entry(factor, where, _FACTOR_KEYS, lexicon, order, counts)
            if not isinstance(factor.get("weight"), int):
                errors.append(f"{where}: weight must be an integer")
    rules = doc.get("rule")
    if not isinstance(rules, list) or not rules:
        errors.append(f"{source}: at least one [[rule]] is required")
        rules = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        where = f"{source}: rule[{index}]"
        if not isinstance(rule, dict):
            errors.append(f"{where}: must be a table")
            continue
        rule_id = rule.get("id")
        if isinstance(rule_id, str):
            where += f" ({rule_id})"
            if rule_id in seen:
                errors.append(f"{where}: duplicate id (first at rule[{seen[rule_id]}])")
            seen[rule_id] = index
        errors += _check_entry(rule, where, _RULE_KEYS, lexicon, order, counts)
        for key in ("severity", "cap"):
            if key in rule and rule[key] not in order:
                errors.append(f"{where}: {key} {rule[key]!r} is not one of {', '.join(order)}")
        if not any(k in rule for k in ("severity", "raise", "cap", "priority", "escalate",
                                       "set_category")):
            errors.append(f"{where}: has no effect (severity, raise, cap, priority, ...)")
    return errors


def _check_entry(entry: Mapping[str, Any], where: str, allowed: Sequence[str],
                 lexicon: Mapping[str, Any], order: Sequence[str],
                 counts: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    if not isinstance(entry.get("id"), str) or not entry.get("id"):
        errors.append(f"{where}: id is required")
    if not isinstance(entry.get("reason"), str) or not entry.get("reason"):
        errors.append(f"{where}: reason is required")
    for key in set(entry) - set(allowed):
        errors.append(f"{where}: unknown key {key!r}")
    for key in _LIST_KEYS:
        if key in entry and not isinstance(entry[key], list):
            errors.append(f"{where}: {key} must be a list")
    for key in ("keywords", "keywords_all", "keywords_none"):
        for name in entry.get(key, []) if isinstance(entry.get(key), list) else []:
            if name not in lexicon:
                errors.append(f"{where}: {key}: no lexicon named {name!r}")
    for fact in dict(entry.get("facts_at_least", {})):
        if fact not in counts:
            errors.append(f"{where}: facts_at_least: no [counts] fact named {fact!r}")
    for key in ("amount_at_least", "amount_below", "text_shorter_than"):
        if key in entry and not isinstance(entry[key], int | float):
            errors.append(f"{where}: {key} must be a number")
    return errors
