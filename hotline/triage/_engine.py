"""The triage engine: facts from an opened submission, rules from data, an explained result."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from hotline.triage._org import RANKS, OrgDirectory
from hotline.triage._rules import Facts, Rule, RuleSet
from hotline.triage._text import (
    KeywordSet,
    count_facts,
    fingerprint,
    normalise,
    parse_amounts,
)

__all__ = [
    "TEXT_CUT",
    "TRIAGE_TEXT_LIMIT",
    "Exclusion",
    "FiredRule",
    "RetaliationRisk",
    "Subject",
    "TriageEngine",
    "TriageInput",
    "TriageResult",
    "bounded_payload",
    "content_fingerprint",
    "default_engine",
    "retriage",
    "triage",
]


@dataclass(frozen=True)
class TriageInput:
    """An opened submission as triage needs it.

    ``payload`` is the report payload of CONTRACT §2 or the complaint fields (subject,
    description, customer_ref, unit, category). ``unit`` is the unit the submission was
    addressed to (form choice or mailbox). ``earlier_fingerprints`` are the content
    fingerprints of earlier cases, for repeat detection.
    """

    kind: Literal["report", "complaint"]
    category: str
    channel: str
    payload: Mapping[str, Any]
    real_name: bool = False
    unit: str | None = None
    earlier_fingerprints: Sequence[str] = ()
    # ``content_fingerprint(kind, payload)`` when the caller has already computed it
    fingerprint: str | None = None


@dataclass(frozen=True)
class FiredRule:
    """A rule that fired, with the reason shown to officers and stored on the case."""

    id: str
    reason: str
    severity: str | None = None


@dataclass(frozen=True)
class RetaliationRisk:
    level: str
    score: int
    factors: tuple[FiredRule, ...] = ()


@dataclass(frozen=True)
class Subject:
    """A person a report is about, as far as triage could place them."""

    name: str | None
    position: str | None
    unit: str | None
    rank: str | None
    employee_id: str | None = None
    source: str = "payload"


@dataclass(frozen=True)
class Exclusion:
    """A person who may never be assigned to or see the case (never-to-the-subject)."""

    name: str | None
    position: str | None
    unit: str | None
    employee_id: str | None
    reason: str


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` for triage's own immutable values (str, int, bool, None)."""
    kind = type(value)
    if kind in (str, int, bool, float) or value is None:
        return value
    if kind is tuple or kind is list:
        return kind(_plain(v) for v in value)
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not dataclasses.is_dataclass(value):
            return copy.deepcopy(value)
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


@dataclass(frozen=True)
class TriageResult:
    """Severity, flow, the rules that fired and why, routing and exclusions."""

    kind: str
    severity: str
    flow: str
    category: str
    priority: bool
    real_name: bool
    fired: tuple[FiredRule, ...]
    retaliation_risk: RetaliationRisk
    responsible_unit: str
    escalated: bool
    stub_unit: str | None
    exclusions: tuple[Exclusion, ...]
    fingerprint: str
    repeat: bool
    amount_cny: str | None = None
    referral_outside: bool = False
    officer_override: FiredRule | None = None
    subjects: tuple[Subject, ...] = field(default=())

    @property
    def rule_ids(self) -> list[str]:
        """Ids of the fired rules, in firing order."""
        return [rule.id for rule in self.fired]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, personal data included (``subjects``, ``exclusions``).

        The same as ``dataclasses.asdict`` (a test checks it) without its deep copies of
        every value, which cost more than triage's rules for every case the router opens.
        """
        doc = _plain(self)
        assert isinstance(doc, dict)
        return doc

    def public_dict(self) -> dict[str, Any]:
        """What may be stored in clear on the case: no names of subjects.

        Exclusions keep only employee id, unit and position; keep :meth:`to_dict` in the
        sealed part of the case for the never-to-the-subject checks by name.
        """
        doc = self.to_dict()
        doc.pop("subjects")
        doc["exclusions"] = [{"employee_id": e.employee_id, "unit": e.unit,
                              "position": e.position, "reason": e.reason}
                             for e in self.exclusions]
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TriageResult:
        """Inverse of :meth:`to_dict`."""
        risk = doc["retaliation_risk"]
        override = doc.get("officer_override")
        return cls(
            **{k: doc[k] for k in ("kind", "severity", "flow", "category", "priority",
                                   "real_name", "responsible_unit", "escalated", "stub_unit",
                                   "fingerprint", "repeat")},
            fired=tuple(FiredRule(**f) for f in doc["fired"]),
            retaliation_risk=RetaliationRisk(
                level=risk["level"], score=risk["score"],
                factors=tuple(FiredRule(**f) for f in risk.get("factors", ()))),
            exclusions=tuple(Exclusion(**e) for e in doc.get("exclusions", ())),
            amount_cny=doc.get("amount_cny"),
            referral_outside=doc.get("referral_outside", False),
            officer_override=None if override is None else FiredRule(**override),
            subjects=tuple(Subject(**s) for s in doc.get("subjects", ())),
        )


def content_fingerprint(kind: str, payload: Mapping[str, Any]) -> str:
    """Fingerprint of a submission's content: equal for the same text in any script/spacing."""
    parts = [kind, str(payload.get("title") or payload.get("subject") or ""),
             str(payload.get("description") or "")]
    for subject in payload.get("subjects") or ():
        if isinstance(subject, Mapping):
            parts.append(str(subject.get("name") or ""))
    return fingerprint(parts)


class _SafeFormat(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


class TriageEngine:
    """Applies a :class:`RuleSet` to submissions within an :class:`OrgDirectory`."""

    def __init__(self, rules: RuleSet, org: OrgDirectory) -> None:
        self.rules = rules
        self.org = org
        self._leader_words = rules.lexicon.get("leader_positions", KeywordSet.build("", ()))
        self._middle_words = rules.lexicon.get("middle_positions", KeywordSet.build("", ()))

    # --- facts -----------------------------------------------------------------------

    def _rank_mentions(self, text: str) -> list[tuple[str, str, int]]:
        """(rank, word, position) of position words; a longer word hides one inside it."""
        found: list[tuple[int, int, str, str]] = []
        for rank, words in (("leader", self._leader_words), ("middle_manager", self._middle_words)):
            for match in words.pattern.finditer(text):
                found.append((match.start(), match.end(), rank, match.group(0)))
        kept = [m for m in found
                if not any(o is not m and o[0] <= m[0] and m[1] <= o[1]
                           and (o[1] - o[0]) > (m[1] - m[0]) for o in found)]
        return [(rank, word, start) for start, _end, rank, word in sorted(kept)]

    def _rank_of_position(self, position: str | None) -> tuple[str | None, str | None]:
        if not position:
            return None, None
        mentions = self._rank_mentions(normalise(position))
        for rank in RANKS:
            for found_rank, word, _ in mentions:
                if found_rank == rank:
                    return rank, word
        return None, None

    def _subjects(self, request: TriageInput, text: str, home: str | None) -> list[Subject]:
        subjects: list[Subject] = []
        for entry in request.payload.get("subjects") or ():
            if not isinstance(entry, Mapping):
                continue
            name = str(entry.get("name") or "") or None
            position = str(entry.get("position") or "") or None
            unit = self.org.resolve_unit(entry.get("unit"))
            person = self.org.find_person(name, unit) if name else None
            rank, _word = self._rank_of_position(position)
            if person is not None:
                unit = unit or person.unit
                position = position or person.position
                if rank is None or RANKS.index(person.rank) < RANKS.index(rank):
                    rank = person.rank
            if unit is None and position:
                unit = self.org.units_near(normalise(position), 0, 64)
            subjects.append(Subject(name=name, position=position, unit=unit or home, rank=rank,
                                    employee_id=person.employee_id if person else None))
        if request.kind == "report" and not any(s.rank for s in subjects):
            # No ranked subject in the form: a position word in the text names one
            # ("广东公司总经理张某…"); the unit named next to it is the subject's unit.
            for rank, word, start in self._rank_mentions(text):
                unit = self.org.units_near(text, start) or home
                holder = next((p for p in self.org.leaders_of(unit or "")
                               if word in normalise(p.position)), None)
                subjects.append(Subject(
                    name=holder.name if holder else None, position=word, unit=unit, rank=rank,
                    employee_id=holder.employee_id if holder else None, source="text"))
        return subjects

    def _facts(self, request: TriageInput, text: str, home: str | None,
               subjects: Sequence[Subject], fingerprint_: str) -> tuple[Facts, Subject | None]:
        rules = self.rules
        amounts = parse_amounts(text, rules.currencies, rules.rates, rules.count_units)
        best = max(amounts, key=lambda a: a.cny, default=None)
        amount_cny, amount_text = (best.cny, best.source) if best else (None, None)
        declared = request.payload.get("amount")
        if isinstance(declared, Mapping) and isinstance(declared.get("value"), int | float):
            code = str(declared.get("currency") or "CNY").upper().replace("RMB", "CNY")
            value = Decimal(str(declared["value"])) * rules.rates.get(code, Decimal(1))
            if amount_cny is None or value > amount_cny:
                amount_cny, amount_text = value, f"{declared['value']} {code}"
        ranked = [s for s in subjects if s.rank]
        primary = min(ranked, key=lambda s: RANKS.index(s.rank or RANKS[-1]), default=None)
        if primary is None and subjects:
            primary = subjects[0]
        units = {u for u in (home, *(s.unit for s in subjects)) if u}
        counts = count_facts(text, rules.counts)
        placeholders = {
            "subject": (primary.name if primary and primary.name else "(unnamed)"),
            "position": (primary.position if primary and primary.position else "?"),
            "unit": (primary.unit if primary and primary.unit else (home or "?")),
            "amount": "" if amount_cny is None
            else f"RMB {amount_cny:,.0f}",
            **{k: str(v) for k, v in counts.items()},
        }
        facts = Facts(
            kind=request.kind, category=request.category, channel=request.channel,
            units=frozenset(units), real_name=request.real_name,
            repeat=fingerprint_ in set(request.earlier_fingerprints),
            text_length=len(re.sub(r"\s", "", text)),
            keywords={name: tuple(found)
                      for name, found in rules.keyword_index.find_all(text).items()},
            amount_cny=amount_cny, amount_text=amount_text, counts=counts,
            subject_ranks=frozenset(s.rank for s in subjects if s.rank),
            subject_in_submission_unit=bool(home) and any(s.unit == home for s in subjects),
            placeholders=placeholders,
        )
        return facts, primary

    @staticmethod
    def _reason(template: str, condition_words: Sequence[str], facts: Facts) -> str:
        values = _SafeFormat(facts.placeholders)
        values["keywords"] = ", ".join(dict.fromkeys(condition_words)) or "-"
        return template.format_map(values)

    # --- the verdict -----------------------------------------------------------------

    def triage(self, request: TriageInput) -> TriageResult:
        """Severity, flow, fired rules with reasons, retaliation risk, routing, exclusions.

        Rules read the first :data:`TRIAGE_TEXT_LIMIT` characters of each text field; a
        longer field adds the explanation ``triage.text-cut`` naming it. The content
        fingerprint covers the whole text.
        """
        rules = self.rules
        fingerprint_ = request.fingerprint or content_fingerprint(request.kind, request.payload)
        payload, cut = bounded_payload(request.payload)
        if cut:
            request = dataclasses.replace(request, payload=payload)
        text = _normalised_text_of(request.payload)
        home = self._home_unit(request)
        subjects = self._subjects(request, text, home)
        facts, primary = self._facts(request, text, home, subjects, fingerprint_)

        score, factors = 0, []
        for factor in rules.factors:
            if factor.when.holds(facts):
                score += factor.weight
                factors.append(FiredRule(factor.id, self._reason(
                    factor.reason, factor.when.matched_keywords(facts), facts)))
        level = max((name for name, at in rules.risk_levels.items() if score >= at),
                    key=lambda name: rules.risk_levels[name], default="low")
        risk = RetaliationRisk(level=level, score=score, factors=tuple(factors))
        facts = dataclasses.replace(facts, retaliation_risk=level)

        fired_rules: list[Rule] = [r for r in rules.rules if r.when.holds(facts)]
        fired = tuple(FiredRule(r.id, self._reason(r.reason, r.when.matched_keywords(facts),
                                                   facts), r.severity or r.cap)
                      for r in fired_rules)
        severity = self._severity(request.kind, fired_rules)
        category = next((r.category for r in fired_rules if r.category), request.category)
        escalate = any(r.escalate for r in fired_rules)
        if cut:
            fired = (*fired, FiredRule(TEXT_CUT, f"triage read the first "
                                       f"{TRIAGE_TEXT_LIMIT:,} characters of {', '.join(cut)}"
                                       " (longer); the sealed content is whole"))
        responsible, stub, outside = self._route(request, home, primary, escalate)
        return TriageResult(
            kind=request.kind, severity=severity, flow=rules.flows[severity], category=category,
            priority=any(r.priority for r in fired_rules), real_name=request.real_name,
            fired=fired, retaliation_risk=risk, responsible_unit=responsible,
            escalated=escalate and stub is not None, stub_unit=stub,
            exclusions=self._exclusions(subjects), fingerprint=fingerprint_,
            repeat=facts.repeat,
            amount_cny=None if facts.amount_cny is None else str(facts.amount_cny),
            referral_outside=outside, subjects=tuple(subjects),
        )

    def _severity(self, kind: str, fired: Sequence[Rule]) -> str:
        rules = self.rules
        floors = [rules.rank(r.severity) for r in fired if r.severity]
        rank = max(floors) if floors else rules.rank(rules.default.get(kind, "general"))
        rank = min(len(rules.order) - 1, rank + max((r.raise_levels for r in fired), default=0))
        for cap in (r.cap for r in fired if r.cap):
            rank = min(rank, rules.rank(cap))
        return rules.order[rank]

    def _home_unit(self, request: TriageInput) -> str | None:
        for candidate in (request.unit, request.payload.get("unit")):
            if isinstance(candidate, str):
                code = self.org.resolve_unit(candidate)
                if code is not None:
                    return code
        return None

    def _route(self, request: TriageInput, home: str | None, primary: Subject | None,
               escalate: bool) -> tuple[str, str | None, bool]:
        """(responsible unit, unit keeping a stub, referred outside the group)."""
        root = self.org.tree.root.code
        if request.kind == "complaint":
            return home or root, None, False
        base = (primary.unit if primary and primary.unit else None) or home or root
        if primary is not None and primary.unit is None:
            # "our general manager" of no unit we can place: the root unit sorts it out
            return self.org.discipline_unit(root), None, False
        if not escalate or primary is None or primary.rank != "leader":
            return self.org.discipline_unit(base), None, False
        subject_unit = base
        parent = self.org.parent(subject_unit)
        if parent is None:
            # A leader of the root: the group's own discipline staff are in their line,
            # so the case is referred to the supervising body outside the group.
            return root, None, True
        responsible = self.org.discipline_unit(parent)
        if responsible == subject_unit:
            responsible = parent
        return responsible, subject_unit, False

    def _exclusions(self, subjects: Sequence[Subject]) -> tuple[Exclusion, ...]:
        out: dict[tuple[str | None, str | None, str | None], Exclusion] = {}
        for subject in subjects:
            if subject.name is None and subject.employee_id is None:
                person = None
                # An unnamed "the general manager of GD" is still a known person.
                for leader in self.org.leaders_of(subject.unit or ""):
                    if subject.position and normalise(subject.position) in normalise(
                            leader.position):
                        person = leader
                if person is None:
                    out[(None, subject.position, subject.unit)] = Exclusion(
                        None, subject.position, subject.unit, None, "subject of the report")
                    continue
                subject = Subject(person.name, person.position, person.unit, person.rank,
                                  person.employee_id, subject.source)
            out[(subject.name, subject.employee_id, subject.unit)] = Exclusion(
                subject.name, subject.position, subject.unit, subject.employee_id,
                "subject of the report")
            if subject.rank != "leader" and subject.unit:
                for leader in self.org.leaders_of(subject.unit):
                    if leader.rank == "leader" and leader.name != subject.name:
                        out.setdefault((leader.name, leader.employee_id, leader.unit), Exclusion(
                            leader.name, leader.position, leader.unit, leader.employee_id,
                            f"management line of a subject ({subject.position or '?'})"))
        return tuple(out.values())

    # --- new information and officers ------------------------------------------------

    def retriage(self, previous: TriageResult, request: TriageInput) -> TriageResult:
        """Triage again with new information; never lowers the severity automatically."""
        new = self.triage(request)
        rules = self.rules
        fired = {f.id: f for f in previous.fired}
        for rule in new.fired:
            fired.setdefault(rule.id, rule)
        if rules.rank(new.severity) >= rules.rank(previous.severity):
            severity = new.severity
        else:
            severity = previous.severity
            fired["retriage.kept-level"] = FiredRule(
                "retriage.kept-level",
                f"kept {previous.severity} from the earlier triage (new information alone "
                f"suggests {new.severity}; lowering needs an officer)", previous.severity)
        moved = new.escalated and not previous.escalated
        risk = max((previous.retaliation_risk, new.retaliation_risk), key=lambda r: r.score)
        exclusions = {(e.name, e.employee_id, e.unit): e for e in previous.exclusions}
        for exclusion in new.exclusions:
            exclusions.setdefault((exclusion.name, exclusion.employee_id, exclusion.unit),
                                  exclusion)
        return dataclasses.replace(
            previous, severity=severity, flow=rules.flows[severity],
            category=new.category if new.category != request.category else previous.category,
            priority=previous.priority or new.priority, fired=tuple(fired.values()),
            retaliation_risk=risk,
            responsible_unit=new.responsible_unit if moved else previous.responsible_unit,
            escalated=previous.escalated or new.escalated,
            stub_unit=new.stub_unit if moved else previous.stub_unit,
            exclusions=tuple(exclusions.values()),
            subjects=tuple(dict.fromkeys((*previous.subjects, *new.subjects))),
            amount_cny=_max_text(previous.amount_cny, new.amount_cny),
        )

    def set_severity(self, previous: TriageResult, severity: str, officer: str,
                     reason: str) -> TriageResult:
        """An officer's decision (the only way to lower); the reason is required."""
        if severity not in self.rules.order:
            raise ValueError(f"unknown severity {severity!r}")
        if not reason.strip():
            raise ValueError("changing the severity needs a reason")
        override = FiredRule("officer.override",
                             f"{officer} set {severity} (was {previous.severity}): {reason}",
                             severity)
        return dataclasses.replace(previous, severity=severity,
                                   flow=self.rules.flows[severity], officer_override=override,
                                   fired=(*previous.fired, override))


def _max_text(a: str | None, b: str | None) -> str | None:
    values = [Decimal(v) for v in (a, b) if v is not None]
    return str(max(values)) if values else None


# Triage reads at most this many characters of each text field (issue 7): a report names
# what its rules look for (words, amounts, people) early, and a 10 MB text took minutes
# and several copies of itself to normalise; the fingerprint still covers all of it.
TRIAGE_TEXT_LIMIT = 64 * 1024
TEXT_CUT = "triage.text-cut"  # the explanation of a triage that did not read everything


def bounded_payload(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[str]]:
    """``payload`` with each text (top level and in ``subjects``) cut to
    :data:`TRIAGE_TEXT_LIMIT` characters, and the names of the fields that were cut;
    ``payload`` itself when none was."""
    def cut(value: Any) -> Any:
        return value[:TRIAGE_TEXT_LIMIT] if isinstance(value, str) else value

    def long(value: Any) -> bool:
        return isinstance(value, str) and len(value) > TRIAGE_TEXT_LIMIT

    names = [name for name, value in payload.items() if long(value)]
    subjects = payload.get("subjects")
    long_subjects = isinstance(subjects, list | tuple) and any(
        isinstance(s, Mapping) and any(long(v) for v in s.values()) for s in subjects)
    if not names and not long_subjects:
        return payload, []
    bounded = {name: cut(value) for name, value in payload.items()}
    if long_subjects:
        assert isinstance(subjects, list | tuple)
        bounded["subjects"] = [{k: cut(v) for k, v in s.items()} if isinstance(s, Mapping)
                               else s for s in subjects]
        names.append("subjects")
    return bounded, names


def _text_of(payload: Mapping[str, Any]) -> str:
    parts = [payload.get(k) for k in ("title", "subject", "description", "location", "evidence")]
    for subject in payload.get("subjects") or ():
        if isinstance(subject, Mapping):
            parts.append(subject.get("position"))
    return "\n".join(str(p) for p in parts if p)


def _normalised_text_of(payload: Mapping[str, Any]) -> str:
    """``normalise(_text_of(payload))``, one field at a time.

    Equal because no step of :func:`normalise` reaches across a line break (NFKC and case
    folding work per character, zhconv's phrases hold no line break, whitespace runs
    collapse to one space), and cheaper: the description's normalised form is then the
    one :func:`content_fingerprint` needs too, and is converted once, not twice.
    """
    parts = [payload.get(k) for k in ("title", "subject", "description", "location", "evidence")]
    for subject in payload.get("subjects") or ():
        if isinstance(subject, Mapping):
            parts.append(subject.get("position"))
    return " ".join(filter(None, (normalise(str(p)) for p in parts if p)))


@cache
def default_engine() -> TriageEngine:
    """The engine over the packaged rules, units and leaders (loaded once, on first use)."""
    return TriageEngine(RuleSet.load(), OrgDirectory.load())


def triage(request: TriageInput) -> TriageResult:
    """:meth:`TriageEngine.triage` with the packaged configuration."""
    return default_engine().triage(request)


def retriage(previous: TriageResult, request: TriageInput) -> TriageResult:
    """:meth:`TriageEngine.retriage` with the packaged configuration."""
    return default_engine().retriage(previous, request)
