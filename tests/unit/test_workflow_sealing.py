"""Sealing free-text workflow values (hotline/casefile.py): text sealed, the rest clear,
closure conditions and clock extensions still work on sealed values."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hotline.casefile import is_sealed_value, map_sealed_values, seal_action_text
from hotline.crypto import Sealed, open_sealed, seal
from hotline.workdays import SHANGHAI
from hotline.workflow import (
    Actor,
    ClosureConditionsUnmet,
    WorkflowEngine,
    WorkflowState,
    parse_definitions,
)

pytestmark = pytest.mark.unit

OFFICER = Actor("officer.li", "officer")
SUPERVISOR = Actor("supervisor.zhao", "supervisor")
OPENED = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)
KEY = X25519PrivateKey.generate()

WORKFLOWS = """
[fields.findings]
type = "text"
[fields.outcome]
type = "choice"
choices = ["substantiated", "錯告"]
[fields.corrective_action]
type = "object"
keys = { owner = "text", due = "date" }
[fields.days]
type = "int"
min = 1
max = 30
[fields.reason]
type = "text"

[clocks.resolve]
amount = 15
unit = "d"
start = ["open"]
stop = ["close"]

[actions.record]
from = ["open"]
roles = ["officer"]
fields = ["outcome", "findings", "corrective_action"]
[actions.request_extension]
from = ["open"]
roles = ["officer"]
fields = ["days", "reason"]
[actions.approve_extension]
from = ["open"]
roles = ["supervisor"]
approves = "request_extension"
requires = ["request_extension"]
extends = { clocks = ["resolve"], days = "request_extension.days", max_days = 30 }
[actions.close]
from = ["open"]
to = "closed"
roles = ["officer"]
closes = true

[[workflow]]
name = "tiny"
kind = "complaint"
flow = "general"
initial = "open"
states = ["open", "closed"]
terminal = ["closed"]
actions = ["record", "request_extension", "approve_extension", "close"]
clocks = ["resolve"]
closure = ["record.findings", "record.corrective_action"]
"""


@pytest.fixture(scope="module")
def engine() -> WorkflowEngine:
    return WorkflowEngine(parse_definitions(tomllib.loads(WORKFLOWS)))


def sealer(text: str) -> Mapping[str, str]:
    return seal(text.encode(), KEY.public_key(), kid="k1", purpose="workflow").to_wire()


def opener(envelope: Mapping[str, str]) -> str:
    return open_sealed(Sealed.from_wire(dict(envelope)), KEY, purpose="workflow").decode()


def act(engine: WorkflowEngine, state: WorkflowState, action: str, actor: Actor,
        fields: Mapping[str, object], hours: int) -> WorkflowState:
    """One action as casework applies it: the engine, then sealing of its free text."""
    state = engine.apply(state, action, actor, fields, OPENED + timedelta(hours=hours))
    return seal_action_text(state, engine.definition(state), action, sealer)


def test_text_is_sealed_choices_and_dates_stay_clear_and_closure_holds(
        engine: WorkflowEngine) -> None:
    """Findings and a corrective action's owner are sealed; outcome and due date are not;
    the closure conditions on the sealed fields hold; opening gives the text back."""
    state = engine.start(engine.definitions["tiny"], OPENED)
    with pytest.raises(ClosureConditionsUnmet):
        engine.apply(state, "close", OFFICER, {}, OPENED + timedelta(hours=1))
    state = act(engine, state, "record", OFFICER, {
        "outcome": "錯告", "findings": "the clerk forged sheets 虛報",
        "corrective_action": {"owner": "王經理", "due": "2026-11-30"}}, 2)
    recorded = state.to_dict(json=True)["record"]["record"]
    assert is_sealed_value(recorded["findings"])
    assert is_sealed_value(recorded["corrective_action"]["owner"])
    assert ("錯告", "2026-11-30") == (recorded["outcome"],
                                      recorded["corrective_action"]["due"])
    assert "虛報" not in str(recorded)
    assert "王經理" not in str(recorded)
    opened = map_sealed_values(recorded, opener)
    assert "the clerk forged sheets 虛報" == opened["findings"]
    assert {"owner": "王經理", "due": "2026-11-30"} == opened["corrective_action"]
    assert {"sealed": True} == map_sealed_values(recorded, lambda _: {"sealed": True})[
        "findings"]
    # The stored (JSON) form round-trips and still closes.
    state = WorkflowState.from_dict(state.to_dict(json=True))
    closed = act(engine, state, "close", OFFICER, {}, 3)
    assert "closed" == closed.state


def test_an_extension_keeps_no_clear_copy_of_a_sealed_reason(engine: WorkflowEngine) -> None:
    """The extension on the clock does not copy the sealed reason out of the record."""
    state = engine.start(engine.definitions["tiny"], OPENED)
    state = act(engine, state, "request_extension", OFFICER,
                {"days": 10, "reason": "waiting for the bank 銀行"}, 1)
    state = act(engine, state, "approve_extension", SUPERVISOR, {}, 2)
    extension = state.clocks["resolve"].extensions[0]
    assert (10, "") == (extension.days, extension.reason)
    assert "銀行" not in str(state.to_dict(json=True))
    assert "waiting for the bank 銀行" == opener(
        state.record["request_extension"]["reason"]["sealed"])
