"""What a reporter is told of their case follows the workflow states cases really have."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hotline.casefile import case_statuses
from hotline.crypto import Sealed
from hotline.domain.case import Case, followup_status
from hotline.workflow import WorkflowEngine

pytestmark = pytest.mark.unit


def case_in(status: str) -> Case:
    return Case(id="c_1", submission_id="1", reference="C-1", kind="complaint",
                category="billing", severity="general", status=status, unit="GD",
                channel="email", opened_at=datetime.now(UTC), received_at=datetime.now(UTC),
                content=Sealed("k", b"", b""), sealed_by="intake")


def test_a_complaint_answered_by_response_reads_answered() -> None:
    """After the response (and the survey) the complainant reads answered, not in_progress."""
    assert ["received", "received", "in_progress", "answered", "answered", "answered",
            "closed", "closed"] == [followup_status(case_in(s)) for s in (
                "new", "registered", "investigating", "feedback_sent", "response_sent",
                "survey_sent", "closed", "purged")]


def test_every_case_status_maps_to_a_followup_status() -> None:
    """Each status a case can have (workflow states, new, purged) reads as one of the four."""
    statuses = case_statuses(WorkflowEngine.load())
    assert {"registered", "response_sent", "closed", "purged"} <= set(statuses)
    assert {followup_status(case_in(s)) for s in statuses} == {
        "received", "in_progress", "answered", "closed"}
