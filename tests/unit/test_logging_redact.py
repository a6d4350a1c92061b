"""The log redaction processor: sensitive keys dropped, receipts, e-mail addresses and IP
addresses masked wherever they appear in a string value."""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline import logging as hotline_logging
from hotline.logging import redact

pytestmark = pytest.mark.unit


def redacted(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


def test_sensitive_keys_are_dropped_whatever_their_value() -> None:
    assert {"event": "x", "description": "[redacted]", "Email": "[redacted]",
            "user_agent": "[redacted]"} == redacted(
        event="x", description="贪污 1,000,000 元", Email="a@b.cn", user_agent="curl/8")


@pytest.mark.parametrize("text", [
    "receipt 7K3QD-9ZX2M-4TW8R-QH6YA given",
    "from a.person+tag@example.co.uk today",
    "peer 203.0.113.7 connected",
    "peer 2001:db8::8a2e:370:7334 connected",
])
def test_receipts_addresses_and_ips_are_masked_inside_any_string(text: str) -> None:
    masked = redacted(event="e", note=text)["note"]
    assert "[redacted]" in masked
    assert masked.split("[redacted]")[0] == text.split(" ")[0] + " "


def test_plain_values_pass_unchanged() -> None:
    values = {"case_id": "c_Q2x9f", "reference": "R-2026-000123", "unit": "GD",
              "kind": "report", "n": 3}
    assert {"event": "case.opened", **values} == redacted(event="case.opened", **values)


def _scrub_every_pattern(value: str) -> str:
    """The reference: every pattern run over every value."""
    for _, pattern in hotline_logging._SCRUBBERS:
        value = pattern.sub("[redacted]", value)
    return value


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*"0123456789abcdefABCDEFXYZ-@.:_+ ", "7K3QD-9ZX2M-4TW8R-QH6YA",
                                 "203.0.113.7", "fe80::1", "a@b.cn", "::"]), max_size=30)
       .map("".join))
def test_skipping_patterns_whose_character_is_absent_changes_nothing(value: str) -> None:
    assert _scrub_every_pattern(value) == hotline_logging._scrub(value)
