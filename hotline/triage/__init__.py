"""Explainable triage: severity, flow, fired rules, retaliation risk, routing, exclusions.

Rules are data (``hotline/data/triage_rules.toml``), the organisation is data
(``units.toml`` + ``leaders.toml``); this package only interprets them.
"""

from __future__ import annotations

from hotline.triage._config import ConfigProblem, validate_config
from hotline.triage._engine import (
    TEXT_CUT,
    TRIAGE_TEXT_LIMIT,
    Exclusion,
    FiredRule,
    RetaliationRisk,
    Subject,
    TriageEngine,
    TriageInput,
    TriageResult,
    bounded_payload,
    content_fingerprint,
    default_engine,
    retriage,
    triage,
)
from hotline.triage._org import Leader, OrgDirectory, validate_leaders
from hotline.triage._rules import RuleSet, validate_rules
from hotline.triage._text import normalise, parse_amounts, parse_number

__all__ = [
    "TEXT_CUT",
    "TRIAGE_TEXT_LIMIT",
    "ConfigProblem",
    "Exclusion",
    "FiredRule",
    "Leader",
    "OrgDirectory",
    "RetaliationRisk",
    "RuleSet",
    "Subject",
    "TriageEngine",
    "TriageInput",
    "TriageResult",
    "bounded_payload",
    "content_fingerprint",
    "default_engine",
    "normalise",
    "parse_amounts",
    "parse_number",
    "retriage",
    "triage",
    "validate_config",
    "validate_leaders",
    "validate_rules",
]
