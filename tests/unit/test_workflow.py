"""The workflow engine: full paths to closure, refusals (409/403/422), clocks, extensions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hotline.workdays import SHANGHAI
from hotline.workflow import (
    ActionNotAllowedForRole,
    ActionNotAllowedInState,
    Actor,
    ClosureConditionsUnmet,
    InvalidActionFields,
    OwnApprovalRefused,
    UnknownAction,
    WorkflowEngine,
    WorkflowState,
)

pytestmark = pytest.mark.unit

SYSTEM = Actor("router", "system")
OFFICER = Actor("officer.li", "officer")
OFFICER2 = Actor("officer.wang", "officer")
SUPERVISOR = Actor("supervisor.zhao", "supervisor")
SUPERVISOR2 = Actor("supervisor.sun", "supervisor")
CLERK = Actor("clerk.chen", "clerk")
OPENED = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def engine() -> WorkflowEngine:
    return WorkflowEngine.load()


def walk(engine: WorkflowEngine, state: WorkflowState,
         steps: list[tuple[str, Actor, Mapping[str, Any]]]) -> WorkflowState:
    now = state.opened_at
    for action, actor, fields in steps:
        now += timedelta(hours=5)
        state = engine.apply(state, action, actor, fields, now)
    return state


REPORT_PATH: list[tuple[str, Actor, Mapping[str, Any]]] = [
    ("acknowledge", SYSTEM, {}),
    ("accept", OFFICER, {}),
    ("propose_disposition", OFFICER, {"disposition": "初步核實",
                                      "collective_review": "2026-10 meeting no. 7"}),
    ("approve_disposition", SUPERVISOR, {}),
    ("conclude", OFFICER, {"outcome": "partly_substantiated", "findings": "minutes 12"}),
    ("send_feedback", OFFICER, {"feedback_sent": True}),
]
COMPLAINT_PATH: list[tuple[str, Actor, Mapping[str, Any]]] = [
    ("acknowledge", SYSTEM, {}),
    ("accept_complaint", OFFICER, {}),
    ("record_resolution", OFFICER, {"root_cause": "meter firmware",
                                    "root_cause_category": "network_or_supply_fault",
                                    "corrective_action": {"owner": "ops.gd",
                                                          "due": "2026-11-30"}}),
    ("verify_remediation", SUPERVISOR, {"verified": True}),
    ("send_response", OFFICER, {"response_sent": True}),
    ("send_survey", SYSTEM, {"survey_sent": True}),
    ("record_survey", SYSTEM, {"survey_result": "expired"}),
]


@pytest.mark.parametrize(
    ("kind", "flow", "real_name", "extra", "closer"),
    [
        ("report", "serious", False, [], SUPERVISOR),
        ("report", "general", False, [], OFFICER),
        ("report", "serious", True, [("send_acceptance_notice", OFFICER, {"notice_sent": True})],
         SUPERVISOR),
        ("report", "general", True, [("send_acceptance_notice", OFFICER, {"notice_sent": True})],
         OFFICER),
        ("complaint", "serious", False, [], SUPERVISOR),
        ("complaint", "general", False, [("send_written_notice", OFFICER, {"notice_sent": True})],
         OFFICER),
    ],
)
def test_each_workflow_walks_to_closure(engine: WorkflowEngine, kind: str, flow: str,
                                        real_name: bool, extra: list[Any],
                                        closer: Actor) -> None:
    """Every definition reaches `closed` along its main path, all clocks then stopped."""
    definition = engine.definition_for(kind, flow, real_name)
    path = REPORT_PATH if kind == "report" else COMPLAINT_PATH
    state = walk(engine, engine.start(definition, OPENED), [path[0], *extra, *path[1:]])
    state = walk(engine, state, [("close", closer, {})])
    assert ("closed", []) == (state.state, [c.name for c in state.clocks.values()
                                            if c.stopped_at is None])


def test_wrong_state_is_409(engine: WorkflowEngine) -> None:
    """Approving before anything was proposed is not allowed in this state."""
    state = engine.start(engine.definition_for("report", "general", False), OPENED)
    with pytest.raises(ActionNotAllowedInState) as caught:
        engine.apply(state, "approve_disposition", SUPERVISOR, {}, OPENED)
    assert 409 == caught.value.status


def test_wrong_role_is_403(engine: WorkflowEngine) -> None:
    """A clerk may acknowledge but not accept a report."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", False), OPENED),
                 [("acknowledge", CLERK, {})])
    with pytest.raises(ActionNotAllowedForRole) as caught:
        engine.apply(state, "accept", CLERK, {}, OPENED)
    assert 403 == caught.value.status


def test_missing_and_invalid_fields_are_422(engine: WorkflowEngine) -> None:
    """A disposition outside the five, and a missing collective review, are both named."""
    state = walk(engine, engine.start(engine.definition_for("report", "serious", False), OPENED),
                 REPORT_PATH[:2])
    with pytest.raises(InvalidActionFields) as caught:
        engine.apply(state, "propose_disposition", OFFICER, {"disposition": "ignore"}, OPENED)
    assert (422, ["collective_review", "disposition"]) == (caught.value.status,
                                                           sorted(caught.value.problems))


def test_root_cause_needs_its_category(engine: WorkflowEngine) -> None:
    """record_resolution asks for a root-cause category from the list, beside the text."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "general", False),
                                      OPENED), COMPLAINT_PATH[:2])
    fields = dict(COMPLAINT_PATH[2][2])
    for category in (None, "", "the meter"):
        with pytest.raises(InvalidActionFields) as caught:
            engine.apply(state, "record_resolution", OFFICER,
                         {**fields, "root_cause_category": category}, OPENED)
        assert ["root_cause_category"] == sorted(caught.value.problems)


def test_a_forward_names_a_unit_of_the_organisation() -> None:
    """target_unit is a unit code, checked against the units the engine was given."""
    engine = WorkflowEngine.load(units={"HQ", "GD"})
    start = engine.start(engine.definition_for("report", "serious", False), OPENED)
    state = walk(engine, start, [("acknowledge", SYSTEM, {})])
    for bad in ("XX", "hq", "HQ; drop", {"$ne": ""}):
        with pytest.raises(InvalidActionFields) as caught:
            engine.apply(state, "forward", OFFICER, {"target_unit": bad, "reason": "r"}, OPENED)
        assert ["target_unit"] == sorted(caught.value.problems)
    assert "forwarded" == engine.apply(state, "forward", OFFICER,
                                       {"target_unit": "HQ", "reason": "r"}, OPENED).state


def test_unknown_action_is_422(engine: WorkflowEngine) -> None:
    """An action the workflow does not have is a bad request, not a crash."""
    state = engine.start(engine.definition_for("complaint", "general", False), OPENED)
    with pytest.raises(UnknownAction) as caught:
        engine.apply(state, "delete_everything", SUPERVISOR, {}, OPENED)
    assert 422 == caught.value.status


def test_nobody_approves_their_own_proposal(engine: WorkflowEngine) -> None:
    """Whoever requested an extension cannot approve it, even holding the supervisor role."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "serious", False),
                                      OPENED), COMPLAINT_PATH[:2])
    state = walk(engine, state, [("request_extension", OFFICER, {"days": 20, "reason": "lab"})])
    own = Actor(OFFICER.username, "supervisor")  # same person acting in a second role
    with pytest.raises(OwnApprovalRefused):
        engine.apply(state, "approve_extension", own, {"notice_sent": True}, OPENED)
    assert "approve_extension" not in [a.name for a in engine.allowed_actions(state, own)]
    assert "approve_extension" in [a.name for a in engine.allowed_actions(state, SUPERVISOR)]


def test_allowed_actions_depend_on_state_and_role(engine: WorkflowEngine) -> None:
    """After acknowledgement an officer may accept, forward or send interim feedback."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", False), OPENED),
                 [("acknowledge", SYSTEM, {})])
    assert ["accept", "forward", "send_interim_feedback"] == \
        [a.name for a in engine.allowed_actions(state, OFFICER)]


def test_closure_refused_until_conditions_hold(engine: WorkflowEngine) -> None:
    """A real-name report without its acceptance notice cannot be closed."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", True), OPENED),
                 REPORT_PATH)
    with pytest.raises(ClosureConditionsUnmet) as caught:
        engine.apply(state, "close", OFFICER, {}, OPENED + timedelta(days=3))
    assert ["send_acceptance_notice"] == caught.value.unmet
    assert "close" not in [a.name for a in engine.allowed_actions(state, OFFICER)]


def test_serious_report_closes_only_with_supervisor_sign_off(engine: WorkflowEngine) -> None:
    """In the serious flow an officer may not close."""
    state = walk(engine, engine.start(engine.definition_for("report", "serious", False), OPENED),
                 REPORT_PATH)
    with pytest.raises(ActionNotAllowedForRole):
        engine.apply(state, "close", OFFICER, {}, OPENED + timedelta(days=3))


def test_complaint_closure_needs_root_cause_and_remediation_verified(
        engine: WorkflowEngine) -> None:
    """A serious complaint without verified remediation stays open."""
    path = [step for step in COMPLAINT_PATH if step[0] != "verify_remediation"]
    state = walk(engine, engine.start(engine.definition_for("complaint", "serious", False),
                                      OPENED), path)
    with pytest.raises(ClosureConditionsUnmet) as caught:
        engine.apply(state, "close", SUPERVISOR, {}, OPENED + timedelta(days=9))
    assert ["verify_remediation"] == caught.value.unmet


def test_report_clocks_start_on_the_prc_calendar(engine: WorkflowEngine) -> None:
    """Opened 30 Sep 2026: jurisdiction 5 wd → 13 Oct, acceptance notice 15 wd → 27 Oct."""
    state = engine.start(engine.definition_for("report", "serious", True), OPENED)
    dues = {name: clock.due_at.date() for name, clock in state.clocks.items()}
    assert {"acknowledge_report": date(2026, 10, 7), "acceptance_notice": date(2026, 10, 27),
            "jurisdiction": date(2026, 10, 13), "disposition": date(2026, 10, 30)} == dues


def test_unknown_year_starts_estimated_clocks(engine: WorkflowEngine) -> None:
    """A case opened in 2031 gets working-day clocks flagged as estimated, no error."""
    state = engine.start(engine.definition_for("report", "general", False),
                         datetime(2031, 3, 3, 9, 0, tzinfo=SHANGHAI))
    assert (date(2031, 3, 10), True) == (state.clocks["jurisdiction"].due_at.date(),
                                         state.clocks["jurisdiction"].estimated)


def test_clock_met_or_missed_when_stopped(engine: WorkflowEngine) -> None:
    """Accepting after the jurisdiction deadline records it as missed."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", False), OPENED),
                 [("acknowledge", SYSTEM, {})])
    late = engine.apply(state, "accept", OFFICER, {}, datetime(2026, 10, 14, 9, 0,
                                                               tzinfo=SHANGHAI))
    assert (True, False) == (late.clocks["acknowledge_report"].met,
                             late.clocks["jurisdiction"].met)


def test_due_lists_overdue_and_due_soon(engine: WorkflowEngine) -> None:
    """On 12 Oct the jurisdiction clock is due soon; on 14 Oct it is overdue."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", False), OPENED),
                 [("acknowledge", SYSTEM, {})])
    soon = engine.due(state, datetime(2026, 10, 12, 9, 0, tzinfo=SHANGHAI))
    late = engine.due(state, datetime(2026, 10, 14, 9, 0, tzinfo=SHANGHAI))
    assert [("jurisdiction", "due_soon")] == [(c.name, c.status) for c in soon]
    assert [("jurisdiction", "overdue")] == [(c.name, c.status) for c in late]


def test_extension_once_with_approver_and_notice(engine: WorkflowEngine) -> None:
    """One extension of ≤ 30 days, approved by someone else, moves resolve and the limit."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "serious", False),
                                      OPENED), COMPLAINT_PATH[:2])
    before = (state.clocks["resolve_serious"].due_at, state.clocks["legal_limit"].due_at)
    with pytest.raises(ClosureConditionsUnmet):  # no request yet: nothing to approve
        engine.apply(state, "approve_extension", SUPERVISOR, {"notice_sent": True}, OPENED)
    state = walk(engine, state, [("request_extension", OFFICER, {"days": 30, "reason": "lab"}),
                                 ("approve_extension", SUPERVISOR, {"notice_sent": True})])
    after = state.clocks["resolve_serious"]
    assert (before[0] + timedelta(days=30), before[1] + timedelta(days=30)) == \
        (after.due_at, state.clocks["legal_limit"].due_at)
    assert ("supervisor.zhao", "officer.li", True) == (
        after.extensions[0].approver, after.extensions[0].requested_by,
        after.extensions[0].notice_sent)
    with pytest.raises(ActionNotAllowedInState):
        engine.apply(state, "request_extension", OFFICER, {"days": 5, "reason": "x"}, OPENED)
    with pytest.raises(ActionNotAllowedInState):
        engine.apply(state, "approve_extension", SUPERVISOR2, {"notice_sent": True}, OPENED)


def test_to_dict_is_what_asdict_gives_and_round_trips(engine: WorkflowEngine) -> None:
    """The hand-written serialiser equals dataclasses.asdict on a state with history,
    records and an extension, in both forms, and from_dict reads it back."""
    import dataclasses

    from hotline.workflow._engine import _jsonable

    state = walk(engine, engine.start(engine.definition_for("complaint", "serious", False),
                                      OPENED), COMPLAINT_PATH[:2])
    state = walk(engine, state, [("request_extension", OFFICER, {"days": 30, "reason": "lab"}),
                                 ("approve_extension", SUPERVISOR, {"notice_sent": True})])
    assert dataclasses.asdict(state) == state.to_dict()
    assert _jsonable(dataclasses.asdict(state)) == state.to_dict(json=True)
    assert state == WorkflowState.from_dict(state.to_dict(json=True))


def test_extension_over_thirty_days_is_422(engine: WorkflowEngine) -> None:
    """The request itself is refused when it asks for more than 30 days."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "general", False),
                                      OPENED), COMPLAINT_PATH[:2])
    with pytest.raises(InvalidActionFields) as caught:
        engine.apply(state, "request_extension", OFFICER, {"days": 45, "reason": "x"}, OPENED)
    assert ["days"] == list(caught.value.problems)


def test_waiting_for_the_customer_pauses_the_resolve_clock(engine: WorkflowEngine) -> None:
    """Ten days waiting for the complainant move the 30-day resolve deadline by ten days."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "general", False),
                                      OPENED), COMPLAINT_PATH[:2])
    due = state.clocks["resolve_general"].due_at
    asked = engine.apply(state, "request_information", OFFICER, {"question": "meter no.?"},
                         datetime(2026, 10, 2, 9, 0, tzinfo=SHANGHAI))
    assert [] == [c for c in engine.due(asked, due + timedelta(days=1))
                  if c.name == "resolve_general"]
    back = engine.apply(asked, "receive_information", SYSTEM, {},
                        datetime(2026, 10, 12, 9, 0, tzinfo=SHANGHAI))
    assert due + timedelta(days=10) == back.clocks["resolve_general"].due_at


def test_parked_case_is_re_reviewed_every_six_months(engine: WorkflowEngine) -> None:
    """暫存待查 parks the case with a 6-month re-review clock that restarts on re-review."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", False), OPENED),
                 [*REPORT_PATH[:2],
                  ("propose_disposition", OFFICER, {"disposition": "暫存待查",
                                                    "collective_review": "meeting 9"}),
                  ("approve_disposition", SUPERVISOR, {})])
    first = state.clocks["parked_review"].due_at.date()
    again = engine.apply(state, "rereview", OFFICER, {"findings": "no new leads"},
                         datetime(2027, 3, 1, 9, 0, tzinfo=SHANGHAI))
    assert ("parked", date(2027, 4, 1), date(2027, 9, 1)) == (
        again.state, first, again.clocks["parked_review"].due_at.date())


def test_state_round_trips_through_a_dict(engine: WorkflowEngine) -> None:
    """What the lead stores in the case document comes back equal."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "serious", False),
                                      OPENED),
                 [*COMPLAINT_PATH[:2],
                  ("request_extension", OFFICER, {"days": 10, "reason": "lab"}),
                  ("approve_extension", SUPERVISOR, {"notice_sent": True})])
    assert state == WorkflowState.from_dict(state.to_dict())


def test_state_round_trips_through_json(engine: WorkflowEngine) -> None:
    """The JSON form (datetimes as strings) also comes back equal."""
    import json

    state = walk(engine, engine.start(engine.definition_for("report", "serious", True),
                                      OPENED), REPORT_PATH[:4])
    text = json.dumps(state.to_dict(json=True), ensure_ascii=False)
    assert state == WorkflowState.from_dict(json.loads(text))


def test_proposer_cannot_approve_their_own_disposition(engine: WorkflowEngine) -> None:
    """Four-eyes on dispositions: the proposer, even as supervisor, is refused (403)."""
    state = walk(engine, engine.start(engine.definition_for("report", "serious", False),
                                      OPENED), REPORT_PATH[:3])
    with pytest.raises(OwnApprovalRefused) as caught:
        engine.apply(state, "approve_disposition", Actor(OFFICER.username, "supervisor"), {},
                     OPENED + timedelta(days=1))
    assert 403 == caught.value.status


def test_forwarding_to_the_level_above_ends_the_workflow_here(engine: WorkflowEngine) -> None:
    """A forward meets the jurisdiction clock and leaves a terminal stub state."""
    state = walk(engine, engine.start(engine.definition_for("report", "serious", False), OPENED),
                 [("acknowledge", SYSTEM, {}),
                  ("forward", OFFICER, {"target_unit": "HQ", "reason": "concerns the GM"})])
    assert ("forwarded", True, []) == (state.state, state.clocks["jurisdiction"].met,
                                       [a.name for a in engine.allowed_actions(state,
                                                                               SUPERVISOR)])


def test_uncontactable_anonymous_reporter_still_closes(engine: WorkflowEngine) -> None:
    """Feedback or a recorded reason it could not be given satisfies closure."""
    path = [*REPORT_PATH[:-1], ("record_uncontactable", OFFICER, {"reason": "post box"}),
            ("close", OFFICER, {})]
    state = walk(engine, engine.start(engine.definition_for("report", "general", False),
                                      OPENED), path)
    assert "closed" == state.state


def test_interim_feedback_meets_the_three_month_clock(engine: WorkflowEngine) -> None:
    """An open case answered in the interim has met its feedback clock."""
    state = walk(engine, engine.start(engine.definition_for("report", "general", False), OPENED),
                 [*REPORT_PATH[:4], ("send_interim_feedback", OFFICER, {"summary": "in hand"})])
    assert (True, "investigating") == (state.clocks["feedback"].met, state.state)


def test_complaint_review_is_decided_within_thirty_days_at_most_twice(
        engine: WorkflowEngine) -> None:
    """復查 then 復核: each starts a 30-day decision clock; a third request is refused."""
    state = walk(engine, engine.start(engine.definition_for("complaint", "general", False),
                                      OPENED),
                 [COMPLAINT_PATH[0], ("send_written_notice", OFFICER, {"notice_sent": True}),
                  *COMPLAINT_PATH[1:]])
    review = {"reason": "disagree"}
    decision = {"review_decision": "upheld", "response_sent": True}
    asked = engine.apply(state, "request_review", CLERK, review, datetime(
        2026, 11, 2, 9, 0, tzinfo=SHANGHAI))
    assert date(2026, 12, 2) == asked.clocks["review_decision"].due_at.date()
    state = walk(engine, asked, [("decide_review", SUPERVISOR, decision),
                                 ("request_review", CLERK, review),
                                 ("decide_review", SUPERVISOR, decision)])
    with pytest.raises(ActionNotAllowedInState):
        engine.apply(state, "request_review", CLERK, review, OPENED + timedelta(days=60))
    assert "closed" == engine.apply(state, "close", OFFICER, {}, OPENED + timedelta(days=60)).state
