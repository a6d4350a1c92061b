"""The identity vault: a real-name reporter's identity stays out of the case view.

The report payload carries the identity in its ``identity`` field; the case view strips
it. A handler asks for disclosure with a reason, a supervisor other than the requester
approves or denies it, and only the requester may then open the identity — each step an
event on the case's audit chain (who, why). On approval the reporter is told, in the
case's language, by a message sealed for their receipt (DOMAIN.md), unless the approver
withholds the notice because it would harm the investigation; the reason is recorded.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from casework.app import (
    ACCOUNT,
    DEPS,
    _open,
    _scope,
    _visible_case,
    request_body,
    store_officer_message,
)
from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.domain.case import Account, Case, identities, reporter_language
from hotline.errors import ConcurrencyConflict
from hotline.ports import Record
from hotline.services import append_audit, audit_text
from hotline.web import ApiError

__all__ = ["add_vault_routes", "pseudonymise"]

KIND = "disclosure"
_REQUESTERS = frozenset({"officer", "supervisor"})
# What the reporter is told after an approved disclosure: when and to whom (the handlers),
# never who asked or why — that could itself harm the investigation.
_NOTICE = {
    "zh-Hans": ("您好：经审批，您的身份信息已于 {date} 向本案承办人员披露，仅用于调查本案，"
                "知悉人员负有保密义务。如有顾虑（例如担心遭受打击报复），请在此回复。"),
    "zh-Hant": ("您好：經審批，您的身分資料已於 {date} 向本案承辦人員披露，僅用於調查本案，"
                "知悉人員負有保密義務。如有顧慮（例如擔心遭受打擊報復），請在此回覆。"),
    "en": ("Hello. With approval, your identity was disclosed on {date} to the staff handling "
           "this case. It is used only to investigate this case, and everyone who knows it is "
           "bound to confidentiality. If you have concerns (for example about retaliation), "
           "reply here."),
}
def pseudonymise(content: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The content without the reporter's identity, and whether there was one."""
    identity = content.pop("identity", None)
    return content, bool(identity)


def _view(record: Record) -> dict[str, Any]:
    doc = dict(record.doc)
    return {k: doc.get(k) for k in ("id", "case_id", "requester", "reason", "status",
                                    "requested_at", "decided_by", "decided_at", "note",
                                    "notice", "withhold_reason")}


async def _requests(request: web.Request, case: Case) -> list[Record]:
    records = await request.app[DEPS].store.records.list(KIND)
    return [r for r in records if r.doc.get("case_id") == case.id]


def _reason(doc: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise ApiError(422, "unprocessable", f"{name} (a non-empty text) is required")
    return value.strip()


async def request_disclosure(request: web.Request) -> web.Response:
    account: Account = request[ACCOUNT]
    if account.role not in _REQUESTERS:
        raise ApiError(403, "forbidden", "only handlers and supervisors ask for disclosure")
    case = await _visible_case(request)
    doc = await request_body(request, 4096)
    if set(doc) != {"reason"}:
        raise ApiError(422, "unprocessable", "reason (why the identity is needed) is required")
    reason = _reason(doc, "reason", required=True)
    content, named = pseudonymise(await _open(request, case))
    del content
    if not named:
        raise ApiError(409, "conflict", "this report is anonymous: there is no identity")
    if any(r.doc.get("requester") == account.username and r.doc.get("status") == "requested"
           for r in await _requests(request, case)):
        raise ApiError(409, "conflict", "you already have an open request on this case")
    request_id = "d_" + secrets.token_urlsafe(12)
    record = await request.app[DEPS].store.records.put(KIND, f"{case.id}/{request_id}", {
        "id": request_id, "case_id": case.id, "requester": account.username, "reason": reason,
        "status": "requested", "requested_at": format_time(utcnow()), "decided_by": None,
        "decided_at": None, "note": None}, expected_version=0)
    await append_audit(request.app[DEPS].store, case.id, actor=account.username,
                       type_="identity.disclosure_requested",
                       data={"request_id": request_id,
                             "reason": await audit_text(request.app[DEPS].store, case.id,
                                                        str(reason))})
    return web.json_response(_view(record), status=201)


async def list_disclosures(request: web.Request) -> web.Response:
    account: Account = request[ACCOUNT]
    if account.role not in _REQUESTERS:
        raise ApiError(403, "forbidden", "only handlers and supervisors see disclosures")
    case = await _visible_case(request)
    return web.json_response({"items": [_view(r) for r in await _requests(request, case)]})


async def pending_disclosures(request: web.Request) -> web.Response:
    """A supervisor's to-do: open requests on cases they can see, not their own."""
    account: Account = request[ACCOUNT]
    if account.role != "supervisor":
        raise ApiError(403, "forbidden", "only supervisors decide on disclosure")
    store = request.app[DEPS].store
    scope, mine = _scope(request), set(identities(account))
    items = []
    for record in await store.records.list(KIND):
        if record.doc.get("status") != "requested" or record.doc.get(
                "requester") == account.username:
            continue
        case = await store.cases.get(str(record.doc["case_id"]))
        if case is not None and case.unit in scope and not mine & set(case.excluded):
            items.append({**_view(record), "reference": case.reference})
    return web.json_response({"items": items})


async def decide_disclosure(request: web.Request) -> web.Response:
    account: Account = request[ACCOUNT]
    if account.role != "supervisor":
        raise ApiError(403, "forbidden", "only supervisors decide on disclosure")
    case = await _visible_case(request)
    store = request.app[DEPS].store
    record = await store.records.get(KIND, f"{case.id}/{request.match_info['request_id'][:40]}")
    if record is None:
        raise ApiError(404, "not_found", "no such disclosure request")
    doc = await request_body(request, 4096)
    decision = doc.get("decision")
    if decision not in ("approve", "deny") or set(doc) - {"decision", "note", "withhold_notice",
                                                          "withhold_reason"}:
        raise ApiError(422, "unprocessable", "decision must be approve or deny (note, "
                       "withhold_notice and withhold_reason optional)")
    note = _reason(doc, "note", required=False)
    withhold = doc.get("withhold_notice", False)
    if not isinstance(withhold, bool) or (withhold and decision != "approve"):
        raise ApiError(422, "unprocessable", "withhold_notice (true/false) applies to approvals")
    withhold_reason = _reason(doc, "withhold_reason", required=withhold)
    if withhold_reason is not None and not withhold:
        raise ApiError(422, "unprocessable", "withhold_reason goes with withhold_notice: true")
    if record.doc.get("requester") == account.username:
        raise ApiError(403, "forbidden", "no one decides on their own request (four eyes)")
    if record.doc.get("status") != "requested":
        raise ApiError(409, "conflict", f"the request is already {record.doc.get('status')}")
    status = "approved" if decision == "approve" else "denied"
    notice = None
    if status == "approved":
        # Without a receipt (post, phone, visit) nothing reaches the reporter here: the
        # handlers must tell them another way, and the record says so.
        notice = "withheld" if withhold else "sent" if case.reply_key else "no_receipt"
    decided_at = utcnow()
    try:
        updated = await store.records.put(KIND, record.key, {
            **dict(record.doc), "status": status, "decided_by": account.username,
            "decided_at": format_time(decided_at), "note": note, "notice": notice,
            "withhold_reason": withhold_reason}, expected_version=record.version)
    except ConcurrencyConflict:
        raise ApiError(409, "conflict", "the request was decided meanwhile") from None
    message_id = None
    if notice == "sent":
        text = _NOTICE[reporter_language(case)].format(date=decided_at.date().isoformat())
        message_id = (await store_officer_message(request.app, case, text,
                                                  account.username)).id
    await append_audit(store, case.id, actor=account.username,
                       type_=f"identity.disclosure_{status}",
                       data={"request_id": record.doc["id"],
                             "requester": record.doc["requester"],
                             "note": None if note is None else await audit_text(
                                 store, case.id, note),
                             **({} if notice is None else {"notice": notice}),
                             **({"withhold_reason": await audit_text(
                                 store, case.id, str(withhold_reason))} if withhold else {})})
    if message_id is not None:
        await append_audit(store, case.id, actor=account.username, type_="message.sent",
                           data={"message_id": message_id, "to": "reporter",
                                 "about": "identity_disclosure"})
    return web.json_response(_view(updated))


async def open_identity(request: web.Request) -> web.Response:
    """The identity, for the requester of an approved request only; audited."""
    account: Account = request[ACCOUNT]
    case = await _visible_case(request)
    store = request.app[DEPS].store
    request_id = request.query.get("request", "")[:40]
    record = await store.records.get(KIND, f"{case.id}/{request_id}") if request_id else None
    if record is None or record.doc.get("requester") != account.username or record.doc.get(
            "status") != "approved":
        raise ApiError(403, "forbidden",
                       "the identity is shown only to the requester of an approved request")
    content = await _open(request, case)
    identity = content.get("identity")
    await append_audit(store, case.id, actor=account.username, type_="identity.opened",
                       data={"request_id": request_id, "reason": await audit_text(
                           store, case.id, str(record.doc.get("reason")))})
    return web.json_response({"identity": identity, "request_id": request_id},
                             headers={"Cache-Control": "no-store"})


def add_vault_routes(app: web.Application) -> None:
    app.add_routes([
        web.post("/api/v1/cases/{case_id}/disclosures", request_disclosure),
        web.get("/api/v1/cases/{case_id}/disclosures", list_disclosures),
        web.post("/api/v1/cases/{case_id}/disclosures/{request_id}/decision",
                 decide_disclosure),
        web.get("/api/v1/cases/{case_id}/identity", open_identity),
        web.get("/api/v1/disclosures", pending_disclosures),
    ])
