"""The wire contract: golden samples checked from the producing and the consuming side."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hotline.contract import CaseEvent, Submission
from hotline.crypto import Sealed
from hotline.errors import MalformedMessage

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parents[1] / "golden"
AT = datetime(2026, 11, 25, 9, 30, 0, 123000, tzinfo=UTC)
SEALED = Sealed("3f2a9c4d5e6f7a8b", bytes(range(32)), bytes(range(48)))


def golden(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GOLDEN / name).read_text("utf-8"))
    return doc


PRODUCED: dict[str, Submission | CaseEvent] = {
    "submission_report.json": Submission(
        id="sub_0123456789abcdef", occurred_at=AT, correlation_id="corr_0123456789",
        kind="report", channel="web", sealed=SEALED, sealed_by="client", category="corruption",
        unit="GD", locale="zh-Hans", receipt_hash="ab" * 32, reply_key=bytes(range(32))),
    "submission_complaint.json": Submission(
        id="sub_fedcba9876543210", occurred_at=AT, correlation_id="corr_9876543210",
        kind="complaint", channel="web", sealed=SEALED, sealed_by="intake",
        category="service_quality", unit=None, locale="en", receipt_hash="cd" * 32,
        reply_key=bytes(range(32, 64))),
    "submission_followup.json": Submission(
        id="sub_followup0000001", occurred_at=AT, correlation_id="sub_0123456789abcdef",
        kind="followup", channel="web", sealed=SEALED, sealed_by="intake",
        receipt_hash="ab" * 32, reporter_copy=Sealed("receipt", bytes(32), bytes(range(20)))),
    # issue 5: a complainant's satisfaction survey answer, sealed by intake (purpose survey)
    "submission_survey.json": Submission(
        id="sub_survey000000001", occurred_at=AT, correlation_id="corr_survey00001",
        kind="survey", channel="web", sealed=SEALED, sealed_by="intake", locale="zh-Hant"),
    "event_case_opened.json": CaseEvent(
        id="evt_0123456789abcdef", occurred_at=AT, correlation_id="corr_0123456789",
        type="case.opened", case_id="c_sub_0123456789abcdef", reference="R-2026-000042",
        kind="report", unit="GD", severity="general", status="new"),
}


@pytest.mark.parametrize("name", sorted(PRODUCED))
def test_producer_writes_the_golden_sample(name: str) -> None:
    """What the producer writes is byte-for-byte the golden JSON document."""
    assert golden(name) == json.loads(PRODUCED[name].to_bytes())


@pytest.mark.parametrize("name", sorted(PRODUCED))
def test_consumer_reads_the_golden_sample(name: str) -> None:
    """The consumer parses the golden document into the same value the producer had."""
    raw = (GOLDEN / name).read_bytes()
    parsed = (CaseEvent if name.startswith("event") else Submission).from_bytes(raw)
    assert PRODUCED[name] == parsed


def _mutations() -> list[tuple[str, dict[str, Any]]]:
    base = golden("submission_report.json")
    return [
        ("unknown field", {**base, "ip": "1.2.3.4"}),
        ("missing id", {k: v for k, v in base.items() if k != "id"}),
        ("wrong schema", {**base, "schema": "hotline.submission/2"}),
        ("operator key", {**base, "$where": "1"}),
        ("operator value", {**base, "unit": {"$gt": ""}}),
        ("bad kind", {**base, "kind": "rumour"}),
        ("report without category", {**base, "category": None}),
        ("naive time", {**base, "occurred_at": "2026-11-25T09:30:00"}),
        ("bad base64", {**base, "sealed": {**base["sealed"], "enc": "***"}}),
        ("short enc", {**base, "sealed": {**base["sealed"], "enc": "AAAA"}}),
        ("extra sealed field", {**base, "sealed": {**base["sealed"], "aad": ""}}),
        ("followup without receipt", {**golden("submission_followup.json"),
                                      "receipt_hash": None}),
        ("bad receipt hash", {**base, "receipt_hash": "XYZ"}),
        ("survey with a category", {**golden("submission_survey.json"), "category": "billing"}),
        ("survey with a receipt", {**golden("submission_survey.json"), "receipt_hash": "ab" * 32}),
        ("not an object", [base]),  # type: ignore[list-item]
    ]


@pytest.mark.parametrize(("why", "doc"), _mutations(), ids=[m[0] for m in _mutations()])
def test_consumer_refuses_what_the_contract_does_not_allow(why: str, doc: Any) -> None:
    """Unknown, missing or ill-typed fields are MalformedMessage naming the problem."""
    with pytest.raises(MalformedMessage):
        Submission.from_wire(doc)


def test_non_json_body_is_malformed() -> None:
    """Bytes that are not JSON never get past parsing."""
    with pytest.raises(MalformedMessage):
        Submission.from_bytes(b"\x00\xffnot json")
