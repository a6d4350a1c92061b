"""router: consume submissions, open them, open (or extend) cases, emit case events.

Idempotent on the submission id: the case id derives from it and the store refuses a
second case for the same submission, so a redelivered message is acknowledged without
effect (the case event is emitted again: consumers of events are at-least-once too).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import Counter

from hotline._large_json import LargeJson
from hotline.casefile import apply_triage, apply_workflow, keyed_fingerprint, workflow_of
from hotline.clock import utcnow
from hotline.contract import CaseEvent, Submission
from hotline.crypto import KeyRing, MasterKey, open_sealed
from hotline.domain.audit import AuditHead, next_event
from hotline.domain.case import (
    SEVERITIES,
    Case,
    CaseMessage,
    CaseQuery,
    ReceiptRecord,
    case_id_for,
)
from hotline.errors import ConcurrencyConflict, MalformedMessage, NotFound, UnknownKey
from hotline.logging import get_logger
from hotline.org import OrgTree
from hotline.ports import Bus, Message, Store
from hotline.services import append_audit, load_keyring
from hotline.surveys import SURVEY_PURPOSE
from hotline.triage import (
    OrgDirectory,
    RuleSet,
    TriageEngine,
    TriageInput,
    TriageResult,
    bounded_payload,
    content_fingerprint,
    normalise,
)
from hotline.workflow import Actor, WorkflowEngine, WorkflowError
from router.mail import MailDesk
from router.survey import SurveyDesk

__all__ = ["Router"]

_log = get_logger("hotline.router")

NEGATIVE_LIST = "negative_list"  # the record kind casework keeps the supplier list under

OPENED = Counter("hotline_cases_opened_total", "Cases opened", ["kind", "severity", "unit"])
FOLLOWUPS = Counter("hotline_followups_total", "Reporter follow-up messages added")
RULES_FIRED = Counter("hotline_triage_rules_fired_total", "Triage rules fired", ["rule"])
PURGED_FOLLOWUPS = Counter("hotline_followups_dropped_purged_total",
                           "Reporter follow-ups to a case already purged (not stored)")
DUPLICATES = Counter("hotline_submissions_redelivered_total",
                     "Submissions that already had a case (redelivery)")

_PURPOSE = {"report": "report", "complaint": "complaint", "followup": "message",
            "survey": SURVEY_PURPOSE}


_SYSTEM = Actor("router", "system")

@dataclass
class Router:
    store: Store
    bus: Bus
    org: OrgTree
    master: MasterKey
    keyring: KeyRing | None = None
    triage: TriageEngine = field(default=None)  # type: ignore[assignment]
    workflows: WorkflowEngine = field(default=None)  # type: ignore[assignment]
    mail: MailDesk = field(default_factory=MailDesk.default)  # e-mail routing (router/mail.py)

    def __post_init__(self) -> None:
        if self.triage is None:
            self.triage = TriageEngine(RuleSet.load(), OrgDirectory.for_tree(self.org))
        if self.workflows is None:
            self.workflows = WorkflowEngine.load()
        self._fingerprint_key = self.master.derive("content-fingerprint")

    async def _private_key(self, kid: str) -> Any:
        if self.keyring is None or kid not in self.keyring:
            # A key rotated in after we started: reload before declaring it unknown.
            self.keyring = await load_keyring(self.store, self.master)
        return self.keyring.private_key(kid)

    async def handle(self, message: Message) -> None:
        """The bus handler; raising MalformedMessage/SealError parks the message."""
        submission = Submission.from_bytes(message.body)
        if submission.id != message.message_id:
            raise MalformedMessage("message_id does not match the submission id", field="id")
        try:
            private = await self._private_key(submission.sealed.kid)
        except UnknownKey:
            raise MalformedMessage("sealed to a key this installation does not hold",
                                   field="sealed.kid") from None
        plaintext = open_sealed(submission.sealed, private, purpose=_PURPOSE[submission.kind])
        if submission.channel == "email" and submission.kind == "complaint":
            await self.mail.handle(self, submission, plaintext)  # threading, acks: router/mail.py
            return
        if submission.kind == "followup":
            await self._add_followup(submission, plaintext.decode("utf-8", errors="replace"))
            return
        if submission.kind == "survey":  # satisfaction survey answers: router/survey.py
            await SurveyDesk.of(self.store, self.workflows, self.master).answer(submission,
                                                                                plaintext)
            return
        # Parsed without decoding the whole payload into one text: a long value (the
        # description) is decoded on its own, and the bytes are gone before its escapes
        # are resolved. A text of the whole payload took two or four bytes per character
        # as soon as one character anywhere needed it (a Chinese name beside an ASCII
        # description: twice the payload), and then the values were copied out of it
        # (issue 7: copies of a large report).
        try:
            parsed = LargeJson(plaintext)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedMessage("sealed payload is not JSON", field="sealed") from None
        del plaintext
        payload = self._payload(parsed)
        del parsed
        await self._open_case(submission, payload)

    @staticmethod
    def _payload(plaintext: bytes | LargeJson) -> dict[str, Any]:
        """The opened payload must be a JSON object with a description (CONTRACT §2)."""
        try:
            parsed = plaintext if isinstance(plaintext, LargeJson) else LargeJson(plaintext)
            payload = parsed.value()
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedMessage("sealed payload is not JSON", field="sealed") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("description"), str) \
                or not payload["description"].strip():
            raise MalformedMessage("sealed payload needs a description", field="sealed")
        return payload

    async def _triage(self, submission: Submission, payload: dict[str, Any]
                      ) -> tuple[TriageResult, str]:
        assert submission.kind in ("report", "complaint")
        assert submission.category is not None
        raw = content_fingerprint(submission.kind, payload)
        fingerprint = keyed_fingerprint(self._fingerprint_key, raw)
        earlier = await self.store.cases.query(CaseQuery(units=None, fingerprint=fingerprint,
                                                         limit=2))
        earlier = [c for c in earlier if c.submission_id != submission.id]
        result = self.triage.triage(TriageInput(
            kind=submission.kind, category=submission.category, channel=submission.channel,
            payload=payload, real_name=bool(payload.get("identity")), unit=submission.unit,
            earlier_fingerprints=(raw,) if earlier else (), fingerprint=raw))
        return result, fingerprint

    async def _open_case(self, submission: Submission, payload: dict[str, Any]) -> None:
        assert submission.kind in ("report", "complaint")
        assert submission.category is not None
        now = utcnow()
        case_id = case_id_for(submission.id)
        unit = submission.unit if submission.unit is not None and submission.unit in self.org \
            else self.org.root.code
        case = Case(
            id=case_id, submission_id=submission.id, reference="", kind=submission.kind,
            category=submission.category, severity="general", status="new", unit=unit,
            channel=submission.channel, opened_at=now, received_at=submission.occurred_at,
            content=submission.sealed, sealed_by=submission.sealed_by, locale=submission.locale,
            receipt_hash=submission.receipt_hash, reply_key=submission.reply_key,
            triage={}, workflow={})
        result, fingerprint = await self._triage(submission, payload)
        case = apply_triage(case, result, self.org, fingerprint)
        case = await self._check_negative_list(case, payload)
        definition = self.workflows.definition_for(case.kind, result.flow, result.real_name)
        state = self.workflows.start(definition, now)
        if submission.channel == "web" and submission.receipt_hash is not None:
            # The receipt handed out at submission is the acknowledgement (DOMAIN.md).
            with contextlib.suppress(WorkflowError):
                state = self.workflows.apply(state, "acknowledge", _SYSTEM, {}, now)
        case = apply_workflow(case, state, self.workflows, notified={})
        unit = case.unit
        received = next_event(case_id, None, at=submission.occurred_at, actor="intake",
                              type_="submission.received",
                              data={"channel": submission.channel,
                                    "sealed_by": submission.sealed_by,
                                    "kid": submission.sealed.kid,
                                    "submission_id": submission.id})
        opened = next_event(case_id, AuditHead(received.seq, received.hash), at=now,
                            actor="router", type_="case.opened",
                            data={"kind": submission.kind, "category": submission.category,
                                  "unit": unit, "severity": case.severity,
                                  "flow": result.flow, "rules": result.rule_ids,
                                  "escalated": result.escalated,
                                  "excluded": len(case.excluded),
                                  "workflow": case.workflow["name"], "status": case.status})
        receipt = None if submission.receipt_hash is None else ReceiptRecord(
            submission.receipt_hash, case_id, submission.id)
        prefix = f"{'R' if submission.kind == 'report' else 'C'}-{now.year}"
        stored, created = await self.store.cases.open(case, [received, opened], receipt,
                                                      reference_prefix=prefix)
        if created:
            OPENED.labels(stored.kind, stored.severity, stored.unit).inc()
            for rule in result.rule_ids:
                RULES_FIRED.labels(rule).inc()
            _log.info("case.opened", case_id=stored.id, reference=stored.reference,
                      kind=stored.kind, unit=stored.unit, submission_id=submission.id)
        else:
            DUPLICATES.inc()
            _log.info("submission.redelivered", case_id=stored.id, submission_id=submission.id)
        await self._emit("case.opened", stored, submission.correlation_id)

    async def _add_followup(self, submission: Submission, text: str) -> None:
        assert submission.receipt_hash is not None
        record = await self.store.receipts.get(submission.receipt_hash)
        if record is None:
            # The case of this receipt is not stored (yet): let the broker retry, then park.
            raise NotFound("no case for this receipt yet")
        current = await self.store.cases.get(record.case_id)
        if current is not None and current.status == "purged":
            # Retention ended: the case is a tombstone and takes no new content.
            PURGED_FOLLOWUPS.inc()
            _log.info("followup.dropped_purged", case_id=record.case_id,
                      submission_id=submission.id)
            return
        message = CaseMessage(
            id=submission.id, case_id=record.case_id, at=submission.occurred_at,
            author="reporter", actor="reporter", sealed_for_org=submission.sealed,
            sealed_for_reporter=submission.reporter_copy)
        if await self.store.cases.add_message(message):
            FOLLOWUPS.inc()
        # A redelivery after a crash between the two writes still gets its audit event.
        events = await self.store.audit.events(record.case_id)
        if not any(e.type == "reporter.information_added"
                   and e.data.get("message_id") == submission.id for e in events):
            await append_audit(self.store, record.case_id, actor="reporter",
                               type_="reporter.information_added",
                               data={"message_id": submission.id})
        case = await self.store.cases.get(record.case_id)
        if case is None:
            return
        raised = await self._retriage(case, text)
        if raised is not None:
            await self._emit("case.escalated", raised, submission.correlation_id)
        await self._emit("case.updated", raised or case, submission.correlation_id)

    async def _check_negative_list(self, case: Case, payload: dict[str, Any]) -> Case:
        """Flag suppliers named in the submission that are on the negative list.

        An entry applies group-wide (scope HQ) or to its province and the units below it.
        The hit is recorded in the case's triage explanation (entry ids and scopes only).
        """
        records = await self.store.records.list(NEGATIVE_LIST)
        if not records:
            return case
        read, _ = bounded_payload(payload)  # as much as triage reads (it says so if cut)
        text = normalise("\n".join(str(read.get(k) or "") for k in (
            "title", "subject", "description", "evidence", "location")) + "\n" + "\n".join(
            str(s.get("name") or "") for s in read.get("subjects") or ()
            if isinstance(s, dict)))
        hits = []
        for record in records:
            entry = record.doc
            supplier = normalise(str(entry.get("supplier") or ""))
            scope = str(entry.get("scope") or "")
            applies = scope == self.org.root.code or (
                scope in self.org and case.unit in self.org.subtree(scope))
            if entry.get("status") == "listed" and applies and len(supplier) >= 2 \
                    and supplier in text:
                hits.append({"entry": record.key, "scope": scope})
        if not hits:
            return case
        triage = dict(case.triage)
        triage["negative_list"] = hits
        triage["rules"] = [*triage.get("rules", []), "supplier.negative-list"]
        triage["explanation"] = [*triage.get("explanation", []), {
            "rule": "supplier.negative-list", "severity": None,
            "reason": f"{len(hits)} supplier(s) named here are on the negative list "
                      f"(scope {', '.join(sorted({h['scope'] for h in hits}))})"}]
        return replace(case, triage=triage)

    async def acknowledge(self, case_id: str) -> None:
        """Record the workflow's acknowledgement once one went out (e.g. a mail's)."""
        for _ in range(5):
            case = await self.store.cases.get(case_id)
            if case is None or "state" not in case.workflow:
                return
            try:
                state = self.workflows.apply(workflow_of(case), "acknowledge", _SYSTEM, {},
                                             utcnow())
            except WorkflowError:
                return  # already acknowledged, or not a step of this workflow
            try:
                await self.store.cases.update(apply_workflow(case, state, self.workflows),
                                              expected_version=case.version)
            except ConcurrencyConflict:
                continue
            await append_audit(self.store, case_id, actor="router",
                               type_="workflow.acknowledge", data={"to": state.state})
            return

    async def _retriage(self, case: Case, text: str) -> Case | None:
        """Re-run triage with the new information; only ever raise automatically.

        Returns the updated case when the severity went up, else None. A concurrent change
        of the case raises ConcurrencyConflict: the message is redelivered and triage runs
        again on the new version.
        """
        if not case.triage.get("fired") or case.kind not in ("report", "complaint"):
            return None
        private = await self._private_key(case.content.kid)
        payload = self._payload(open_sealed(case.content, private, purpose=case.kind))
        payload["description"] = f"{payload['description']}\n{text}"
        # The case keeps triage without names (public_dict); names are not needed to decide
        # whether new information raises the level.
        previous = TriageResult.from_dict({
            **case.triage, "subjects": [],
            "exclusions": [{"name": None, **e} for e in case.triage.get("exclusions", [])]})
        result = self.triage.retriage(previous, TriageInput(
            kind=case.kind, category=case.category, channel=case.channel, payload=payload,
            real_name=bool(payload.get("identity")), unit=case.unit))
        del payload
        if SEVERITIES.index(result.severity) >= SEVERITIES.index(case.severity):
            return None  # SEVERITIES runs from major down to low
        raised = apply_triage(case, result, self.org, case.fingerprint or "")
        updated = await self.store.cases.update(raised, expected_version=case.version)
        await append_audit(self.store, case.id, actor="router", type_="triage.raised",
                           data={"from": case.severity, "to": updated.severity,
                                 "rules": result.rule_ids})
        _log.info("case.severity_raised", case_id=case.id, severity=updated.severity)
        return updated

    async def _emit(self, type_: str, case: Case, correlation_id: str) -> None:
        event = CaseEvent(
            id=secrets.token_urlsafe(18), occurred_at=utcnow(), correlation_id=correlation_id,
            type=type_, case_id=case.id, reference=case.reference, kind=case.kind,
            unit=case.unit, severity=case.severity, status=case.status)
        await self.bus.publish(Message(routing_key=event.routing_key, message_id=event.id,
                                       body=event.to_bytes(), correlation_id=correlation_id,
                                       headers={"schema": "hotline.event/1"}))
