"""Satisfaction survey answers and expiry: the router's side of the loop (hotline/surveys.py).

An answer (a ``survey`` submission sealed by intake) is recorded at most once per token,
however often it is delivered: the survey record is first *claimed* for this submission
(``answered``, ``answer_id`` = the submission id, ``done`` false) at the version read, so
only one writer wins; then the comment is kept as a message sealed for the organisation,
``record_survey`` is applied to the case's workflow with the result and the rating, the
``survey.answered`` audit event is written (no token, no comment), and the claim is marked
done. Each step checks whether it already happened, so a redelivery after a crash at any
point finishes the same answer. A second answer to the same token, an unknown token and an
expired one are acknowledged without effect, counted and logged (without the token).

Expiry works the same way from the clock runner: an unanswered record past its
``expires_at`` is claimed with ``outcome = "expired"``, recorded as ``record_survey`` with
``survey_result = "expired"``, and marked done; a claim left unfinished is finished by the
next sweep.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from hotline.casefile import apply_workflow, workflow_of
from hotline.clock import utcnow
from hotline.contract import Submission, format_time, parse_time
from hotline.crypto import KeyRing, MasterKey, seal
from hotline.domain.case import CaseMessage
from hotline.errors import ConcurrencyConflict, MalformedMessage
from hotline.logging import get_logger
from hotline.ports import Record, Store
from hotline.services import append_audit, load_keyring
from hotline.surveys import COMMENT_MAX_CHARS, SURVEY_KIND, result_for, token_hash, valid_token
from hotline.workflow import Actor, WorkflowEngine, WorkflowError

__all__ = ["SurveyDesk"]

_log = get_logger("hotline.router.survey")

ANSWERS = Counter("hotline_survey_answers_total", "Satisfaction survey answers received",
                  ["outcome"])
EXPIRED = Counter("hotline_surveys_expired_total", "Satisfaction surveys expired unanswered")

_SYSTEM = Actor("router", "system")
_ATTEMPTS = 5


@dataclass
class SurveyDesk:
    store: Store
    workflows: WorkflowEngine
    keyring: Callable[[], Awaitable[KeyRing]]

    @classmethod
    def of(cls, store: Store, workflows: WorkflowEngine, master: MasterKey) -> SurveyDesk:
        """A desk that loads the key ring when it first needs to seal a comment."""
        ring: list[KeyRing] = []

        async def keyring() -> KeyRing:
            if not ring:
                ring.append(await load_keyring(store, master))
            return ring[0]

        return cls(store, workflows, keyring)

    # --- answers --------------------------------------------------------------------
    async def answer(self, submission: Submission, plaintext: bytes) -> None:
        """Record one answer (the bus handler's part for ``submission.survey``)."""
        token, rating, comment = _parse(plaintext)
        key = token_hash(token)
        del token
        now = utcnow()
        record = await self._claim_answer(key, submission.id, now)
        if record is None:
            return
        case_id = str(record.doc["case_id"])
        message_id = None
        if comment:
            message_id = f"survey_{submission.id}"[:64]
            ring = await self.keyring()
            kid, public = ring.active_public_key()
            await self.store.cases.add_message(CaseMessage(
                id=message_id, case_id=case_id, at=submission.occurred_at, author="reporter",
                actor="complainant", sealed_for_org=seal(
                    f"Satisfaction survey comment ({rating}/5):\n{comment}".encode(), public,
                    kid=kid, purpose="message"),
                sealed_for_reporter=None))
        del comment
        result = result_for(rating)
        recorded = await self._record(case_id, {"survey_result": result, "survey_rating": rating},
                                      now)
        events = await self.store.audit.events(case_id)
        if not any(e.type == "survey.answered" and e.data.get("submission_id") == submission.id
                   for e in events):
            await append_audit(self.store, case_id, actor="complainant", type_="survey.answered",
                               data={"submission_id": submission.id, "result": result,
                                     "rating": rating, "comment": message_id is not None,
                                     "recorded": recorded})
        await self._done(key)
        ANSWERS.labels("recorded" if recorded else "late").inc()
        _log.info("survey.answered", case_id=case_id, result=result, recorded=recorded)

    async def _claim_answer(self, key: str, submission_id: str, now: datetime) -> Record | None:
        """The record this answer may complete, or None (unknown, expired, answered)."""
        for _ in range(_ATTEMPTS):
            record = await self.store.records.get(SURVEY_KIND, key)
            if record is None:
                _ignored("unknown")
                return None
            doc = dict(record.doc)
            if doc.get("answered"):
                if doc.get("answer_id") == submission_id:
                    # The same answer delivered again: finish it if a crash interrupted it.
                    return None if doc.get("done") else record
                _ignored("expired" if doc.get("outcome") == "expired" else "already_answered")
                return None
            if parse_time(doc["expires_at"], field="expires_at") <= now:
                _ignored("expired")
                return None
            doc.update(answered=True, outcome="answered", answer_id=submission_id,
                       answered_at=format_time(now), done=False)
            try:
                return await self.store.records.put(SURVEY_KIND, key, doc,
                                                    expected_version=record.version)
            except ConcurrencyConflict:
                continue  # the expiry sweep or another delivery moved it: look again
        raise ConcurrencyConflict("survey record kept changing")  # transient: redelivered

    # --- the workflow -----------------------------------------------------------------
    async def _record(self, case_id: str, fields: dict[str, Any], now: datetime) -> bool:
        """Apply ``record_survey``; False when the case no longer waits for a survey."""
        for _ in range(_ATTEMPTS):
            case = await self.store.cases.get(case_id)
            if case is None or "state" not in case.workflow:
                return False
            state = workflow_of(case)
            if "record_survey" in state.record:
                # Recorded already: by this answer before a crash (same values), or by hand.
                return dict(state.record["record_survey"]).get("survey_result") == \
                    fields["survey_result"] and state.record["record_survey"].get(
                        "actor") == _SYSTEM.username
            try:
                state = self.workflows.apply(state, "record_survey", _SYSTEM, fields, now)
            except WorkflowError:
                return False  # not waiting for a survey (reopened for review, closed …)
            try:
                await self.store.cases.update(apply_workflow(case, state, self.workflows),
                                              expected_version=case.version)
            except ConcurrencyConflict:
                continue
            return True
        raise ConcurrencyConflict(f"case {case_id} kept changing")

    async def _done(self, key: str) -> None:
        for _ in range(_ATTEMPTS):
            record = await self.store.records.get(SURVEY_KIND, key)
            if record is None or record.doc.get("done"):
                return
            try:
                await self.store.records.put(SURVEY_KIND, key, {**record.doc, "done": True},
                                             expected_version=record.version)
                return
            except ConcurrencyConflict:
                continue

    # --- expiry -------------------------------------------------------------------------
    async def expire(self, now: datetime) -> int:
        """Record ``expired`` for every survey unanswered past its window; how many."""
        expired = 0
        for record in await self.store.records.list(SURVEY_KIND):
            doc = record.doc
            if doc.get("done"):
                continue
            if doc.get("answered") and doc.get("outcome") != "expired":
                continue  # an answer in progress: its redelivery finishes it
            if not doc.get("answered"):
                if parse_time(doc["expires_at"], field="expires_at") > now:
                    continue
                try:
                    record = await self.store.records.put(SURVEY_KIND, record.key, {
                        **doc, "answered": True, "outcome": "expired", "answer_id": None,
                        "done": False}, expected_version=record.version)
                except ConcurrencyConflict:
                    continue  # answered (or claimed) meanwhile: the next sweep looks again
            case_id = str(record.doc["case_id"])
            recorded = await self._record(case_id, {"survey_result": "expired"}, now)
            events = await self.store.audit.events(case_id)
            if not any(e.type == "survey.expired" for e in events):
                await append_audit(self.store, case_id, actor="router", type_="survey.expired",
                                   data={"expires_at": doc["expires_at"], "recorded": recorded})
                EXPIRED.inc()
                expired += 1
                _log.info("survey.expired", case_id=case_id, recorded=recorded)
            await self._done(record.key)
        return expired


def _ignored(outcome: str) -> None:
    ANSWERS.labels(outcome).inc()
    _log.info("survey.answer_ignored", outcome=outcome)
    return


def _parse(plaintext: bytes) -> tuple[str, int, str | None]:
    """``{"token", "rating", "comment"?}`` as intake sealed it; MalformedMessage if not."""
    try:
        doc = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage("sealed survey answer is not JSON", field="sealed") from None
    if not isinstance(doc, dict) or set(doc) - {"token", "rating", "comment"}:
        raise MalformedMessage("sealed survey answer has unknown fields", field="sealed")
    token, rating, comment = doc.get("token"), doc.get("rating"), doc.get("comment")
    if not isinstance(token, str) or not valid_token(token):
        raise MalformedMessage("sealed survey answer has no valid token", field="sealed")
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise MalformedMessage("sealed survey answer needs a rating 1 to 5", field="sealed")
    if comment is not None and (not isinstance(comment, str) or
                                len(comment) > COMMENT_MAX_CHARS):
        raise MalformedMessage("sealed survey comment is too long", field="sealed")
    return token, rating, (comment or "").strip() or None
