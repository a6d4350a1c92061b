"""The supplier negative list: listed and removed with a scope (HQ or a province), a
reason and the case that led to it; each change is audited and published on the bus as
``supplier.negative_list`` (schema ``hotline.negative_list/1``)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from aiohttp import web

from casework.app import ACCOUNT, DEPS, _scope, request_body
from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.domain.case import Account, Case, identities
from hotline.errors import BusUnavailable, ConcurrencyConflict
from hotline.ports import Message, Record
from hotline.services import append_audit, append_system_audit
from hotline.web import ApiError

__all__ = ["ROUTING_KEY", "SCHEMA", "add_negative_list_routes"]

KIND = "negative_list"
ROUTING_KEY = "supplier.negative_list"
SCHEMA = "hotline.negative_list/1"
_DECIDERS = frozenset({"supervisor"})
_READERS = frozenset({"clerk", "officer", "supervisor", "admin", "auditor"})


def _text(doc: dict[str, Any], name: str, limit: int) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ApiError(422, "unprocessable", f"{name} (text up to {limit} characters) is required")
    return value.strip()


def _entry_id(supplier: str, scope: str) -> str:
    return "n_" + hashlib.sha256(f"{supplier.casefold()}|{scope}".encode()).hexdigest()[:16]


async def _linked_case(request: web.Request, account: Account, ref: str) -> Case:
    store = request.app[DEPS].store
    case = await store.cases.by_reference(ref) or await store.cases.get(ref)
    if case is None or not _visible(request, account, case):
        raise ApiError(422, "unprocessable", "case must be a case you can see")
    return case


def _visible(request: web.Request, account: Account, case: Case) -> bool:
    return case.unit in _scope(request) and not set(identities(account)) & set(case.excluded)


async def _publish(request: web.Request, action: str, entry: dict[str, Any]) -> None:
    message_id = "neg_" + secrets.token_urlsafe(12)
    body = {"schema": SCHEMA, "id": message_id, "occurred_at": format_time(utcnow()),
            "correlation_id": entry["id"], "action": action, "supplier": entry["supplier"],
            "scope": entry["scope"], "case_reference": entry["case_reference"]}
    try:
        await request.app[DEPS].bus.publish(Message(ROUTING_KEY, message_id,
                                                    json.dumps(body).encode(),
                                                    correlation_id=entry["id"]))
    except BusUnavailable:
        raise ApiError(503, "unavailable", "the change is saved but could not be announced; "
                       "retry to announce it") from None


def _public(request: web.Request, account: Account, record: Record,
            visible: set[str]) -> dict[str, Any]:
    doc = dict(record.doc)
    shown = {k: doc.get(k) for k in ("id", "supplier", "scope", "status", "reason",
                                     "listed_at", "listed_by", "removed_at", "removed_by")}
    # The linked case is named only to those who may see it.
    shown["case_reference"] = doc.get("case_reference") if doc.get("case_id") in visible \
        else None
    return shown


async def add_entry(request: web.Request) -> web.Response:
    account: Account = request[ACCOUNT]
    if account.role not in _DECIDERS:
        raise ApiError(403, "forbidden", "only supervisors change the negative list")
    doc = await request_body(request, 8192)
    if set(doc) - {"supplier", "scope", "reason", "case"}:
        raise ApiError(422, "unprocessable", "fields: supplier, scope, reason, case")
    supplier, reason = _text(doc, "supplier", 200), _text(doc, "reason", 2000)
    scope, org = _text(doc, "scope", 32), request.app[DEPS].org
    if scope not in org or org.get(scope).level not in ("hq", "province") or \
            scope not in _scope(request):
        raise ApiError(422, "unprocessable", "scope must be HQ or a province within your units")
    case = await _linked_case(request, account, _text(doc, "case", 80))
    store = request.app[DEPS].store
    entry_id = _entry_id(supplier, scope)
    now = format_time(utcnow())
    current = await store.records.get(KIND, entry_id)
    if current is not None and current.doc.get("status") == "listed":
        raise ApiError(409, "conflict", "this supplier is already listed with this scope")
    history = list(current.doc.get("history", [])) if current else []
    entry = {"id": entry_id, "supplier": supplier, "scope": scope, "status": "listed",
             "reason": reason, "case_id": case.id, "case_reference": case.reference,
             "listed_at": now, "listed_by": account.username, "removed_at": None,
             "removed_by": None,
             "history": [*history, {"action": "listed", "at": now, "by": account.username,
                                    "case_reference": case.reference}]}
    try:
        record = await store.records.put(KIND, entry_id, entry, expected_version=0
                                         if current is None else current.version)
    except ConcurrencyConflict:
        raise ApiError(409, "conflict", "the entry changed meanwhile; reload") from None
    await append_audit(store, case.id, actor=account.username, type_="negative_list.listed",
                       data={"entry": entry_id, "scope": scope})
    await append_system_audit(store, actor=account.username, type_="negative_list.listed",
                              data={"entry": entry_id, "scope": scope, "case": case.id})
    await _publish(request, "listed", entry)
    return web.json_response(_public(request, account, record, {case.id}), status=201)


async def remove_entry(request: web.Request) -> web.Response:
    account: Account = request[ACCOUNT]
    if account.role not in _DECIDERS:
        raise ApiError(403, "forbidden", "only supervisors change the negative list")
    doc = await request_body(request, 8192)
    if set(doc) - {"reason"}:
        raise ApiError(422, "unprocessable", "reason is required")
    reason = _text(doc, "reason", 2000)
    store = request.app[DEPS].store
    record = await store.records.get(KIND, request.match_info["entry_id"][:40])
    if record is None or record.doc.get("status") != "listed":
        raise ApiError(404, "not_found", "no such listed supplier")
    if record.doc["scope"] not in _scope(request):
        raise ApiError(403, "forbidden", "this entry's scope is outside your units")
    now = format_time(utcnow())
    entry = {**dict(record.doc), "status": "removed", "removed_at": now,
             "removed_by": account.username,
             "history": [*record.doc.get("history", []),
                         {"action": "removed", "at": now, "by": account.username,
                          "reason": reason}]}
    try:
        updated = await store.records.put(KIND, record.key, entry,
                                          expected_version=record.version)
    except ConcurrencyConflict:
        raise ApiError(409, "conflict", "the entry changed meanwhile; reload") from None
    await append_system_audit(store, actor=account.username, type_="negative_list.removed",
                              data={"entry": record.key, "scope": entry["scope"]})
    await _publish(request, "removed", entry)
    return web.json_response(_public(request, account, updated, set()))


async def search(request: web.Request) -> web.Response:
    """``?q=`` (part of the supplier's name), ``scope=``, ``status=listed|removed|all``."""
    account: Account = request[ACCOUNT]
    if account.role not in _READERS:
        raise ApiError(403, "forbidden", "not for this role")
    q = request.query.get("q", "").casefold().strip()[:200]
    scope = request.query.get("scope") or None
    status = request.query.get("status", "listed")
    if status not in ("listed", "removed", "all"):
        raise ApiError(400, "invalid_request", "status must be listed, removed or all")
    store = request.app[DEPS].store
    found = [r for r in await store.records.list(KIND)
             if q in str(r.doc.get("supplier", "")).casefold()
             and scope in (None, r.doc.get("scope"))
             and status in ("all", r.doc.get("status"))]
    visible: set[str] = set()
    for record in found:
        case = await store.cases.get(str(record.doc.get("case_id")))
        if case is not None and _visible(request, account, case):
            visible.add(case.id)
    return web.json_response({"items": [_public(request, account, r, visible)
                                        for r in found]})


def add_negative_list_routes(app: web.Application) -> None:
    app.add_routes([web.get("/api/v1/negative-list", search),
                    web.post("/api/v1/negative-list", add_entry),
                    web.post("/api/v1/negative-list/{entry_id}/remove", remove_entry)])
