"""The internal API's OpenAPI 3.1 document (kept in step with CONTRACT.md §3)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

__all__ = ["OPENAPI", "openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_SUMMARY = {"$ref": "#/components/schemas/CaseSummary"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "error", "content": {"application/json": {
        "schema": _ERROR}}} for code in codes}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_CASE_ID = {"name": "case_id", "in": "path", "required": True,
            "schema": {"type": "string"}, "description": "case id or reference"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Hotline internal API (casework)", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/auth/login": {"post": {
            "summary": "Sign in (argon2id password)", "security": [],
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                               "totp": {"type": "string"}}})},
            "responses": {"200": {"description": "token", **_json({
                "type": "object", "required": ["token"],
                "properties": {"token": {"type": "string"},
                               "expires_in": {"type": "integer"}}})},
                          **_errors(400, 401)}}},
        "/api/v1/cases": {"get": {
            "summary": "Cases the caller may see, newest first",
            "parameters": [
                {"name": n, "in": "query", "required": False, "schema": s} for n, s in (
                    ("kind", {"enum": ["report", "complaint"]}),
                    ("status", {"type": "string",  # enum set by openapi_document()
                                "description": "a case status (the states of the "
                                               "workflows in workflows.toml, new, purged) "
                                               "or archived; anything else is 400. "
                                               "archived: closed cases that are archived "
                                               "(archived_at set on closure; archived is a "
                                               "flag, not a status, so summaries of these "
                                               "cases say closed); closed: every closed "
                                               "case, archived or not; purged: tombstones, "
                                               "otherwise left out"}),
                    ("severity", {"enum": ["major", "high", "general", "low"]}),
                    ("unit", {"type": "string"}),
                    ("overdue", {"enum": ["true", "false"]}),
                    ("channel", {"enum": ["web", "email", "post", "phone", "visit"]}),
                    ("assigned", {"enum": ["me"]}),
                    ("cursor", {"type": "string"}),
                    ("limit", {"type": "integer", "minimum": 1, "maximum": 200}))],
            "responses": {"200": {"description": "a page", **_json({
                "type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": _SUMMARY},
                               "next": {"type": ["string", "null"]}}})},
                          **_errors(400, 401, 403)}}},
        "/api/v1/cases/{case_id}": {"get": {
            "summary": "One case with its decrypted content (an audited open); "
                       "workflow.record holds what each action recorded, free text opened "
                       "(elsewhere, e.g. in action answers, it shows as {\"sealed\": true})",
            "parameters": [_CASE_ID, {"name": "reason", "in": "query", "required": False,
                                      "schema": {"type": "string"}}],
            "responses": {"200": {"description": "case", **_json({"allOf": [_SUMMARY, {
                "type": "object",
                "properties": {"content": {"type": "object"}, "workflow": {"type": "object"},
                               "triage": {"type": "object"},
                               "messages": {"type": "array"}}}]})},
                          # 410: purged after retention, only the tombstone and audit
                          # trail remain (docs/closed-loop.md)
                          **_errors(401, 403, 404, 410)}}},
        "/api/v1/cases/{case_id}/messages": {"post": {
            "summary": "Write to the reporter (sealed for the receipt) or complainant",
            "parameters": [_CASE_ID],
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["body"],
                "properties": {"body": {"type": "string"}}})},
            "responses": {"201": {"description": "stored"}, **_errors(400, 401, 403, 404)}}},
        "/api/v1/cases/{case_id}/audit": {"get": {
            "summary": "The case's audit trail (hash chain)", "parameters": [_CASE_ID],
            "responses": {"200": {"description": "events", **_json({
                "type": "object", "required": ["events"],
                "properties": {"events": {"type": "array", "items": {
                    "type": "object",
                    "required": ["seq", "at", "actor", "type", "hash", "prev_hash"],
                    "properties": {"seq": {"type": "integer"},
                                   "at": {"type": "string", "format": "date-time"},
                                   "actor": {"type": "string"}, "type": {"type": "string"},
                                   "hash": {"type": "string"},
                                   "prev_hash": {"type": "string"}}}}}})},
                          **_errors(401, 404)}}},
        "/api/v1/audit/verify": {"get": {
            "summary": "Recompute every audit chain",
            "responses": {"200": {"description": "result", **_json({
                "type": "object", "required": ["ok", "cases", "events"],
                "properties": {"ok": {"type": "boolean"}, "cases": {"type": "integer"},
                               "events": {"type": "integer"},
                               "first_broken": {"type": ["object", "null"]}}})},
                          **_errors(401, 403)}}},
        "/healthz": {"get": {"summary": "Process alive", "security": [],
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Store and bus reachable", "security": [],
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                             "responses": {"200": {"description": "text format"}}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message"],
                          "properties": {"code": {"type": "string"},
                                         "message": {"type": "string"}}}}},
            "CaseSummary": {"type": "object", "required": [
                "id", "reference", "kind", "severity", "status", "unit", "channel",
                "opened_at"], "properties": {
                "id": {"type": "string"},
                "reference": {"type": "string", "pattern": "^[RC]-[0-9]{4}-[0-9]{6}$"},
                "kind": {"enum": ["report", "complaint"]},
                "category": {"type": "string"},
                "severity": {"enum": ["major", "high", "general", "low"]},
                "status": {"type": "string"}, "unit": {"type": "string"},
                "channel": {"enum": ["web", "email", "post", "phone", "visit"]},
                "opened_at": {"type": "string", "format": "date-time"},
                "due_at": {"type": ["string", "null"], "format": "date-time"}}},
        },
    },
}


# --- the officers' workspace (issue 5): summaries, bodies as described in casework/ ---
_WORKSPACE: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("/api/v1/auth/totp/enrol", "post", "Begin TOTP enrolment: secret and otpauth URI", (403,)),
    ("/api/v1/auth/totp/confirm", "post", "Confirm with a code: recovery codes and a full "
     "session", (422,)),
    ("/api/v1/auth/password", "post", "Change one's password {current, new} (12+ chars)",
     (403, 422)),
    ("/api/v1/accounts", "get", "Accounts (admins)", (403,)),
    ("/api/v1/accounts", "post", "Create an account {username, role, unit, employee_id?}; "
     "returns a one-time password", (403, 409, 422)),
    ("/api/v1/accounts/{username}", "patch", "Change role, unit or disabled (admins)",
     (403, 404, 409, 422)),
    ("/api/v1/accounts/{username}/reset", "post", "New one-time password; {totp: true} also "
     "resets the second factor", (403, 404)),
    ("/api/v1/audit/checkpoints", "post", "Sign a checkpoint over all chain heads now",
     (403,)),
    ("/api/v1/audit/checkpoints", "get", "Signed checkpoints, oldest first, a page at a time: "
     "?after=N (numbered after N) &limit=1..1000 (100); next_after starts the next page",
     (400, 403)),
    ("/api/v1/audit/public-key", "get", "The Ed25519 key that verifies checkpoints",
     (403, 404)),
    ("/api/v1/cases/{case_id}/audit/export", "get", "One case's trail with its verification "
     "and covering checkpoints (JSON)", (404,)),
    ("/api/v1/cases/{case_id}/disclosures", "post", "Ask for the reporter's identity "
     "{reason}", (403, 404, 409, 422)),
    ("/api/v1/cases/{case_id}/disclosures", "get", "Disclosure requests of a case",
     (403, 404)),
    ("/api/v1/cases/{case_id}/disclosures/{request_id}/decision", "post",
     "A supervisor other than the requester approves or denies {decision, note?, "
     "withhold_notice?, withhold_reason?}; an approval tells the reporter (a message sealed "
     "for the receipt) unless withhold_notice is true with a reason",
     (403, 404, 409, 422)),
    ("/api/v1/cases/{case_id}/identity", "get", "The identity, for the requester of an "
     "approved request (?request=)", (403, 404)),
    ("/api/v1/disclosures", "get", "Requests waiting for the calling supervisor", (403,)),
    ("/api/v1/dashboard", "get", "DOMAIN.md figures; ?from&to&unit&level&channel&category"
     "&severity&kind", (400, 403)),
    ("/api/v1/dashboard/quarterly.csv", "get", "One quarter's figures as CSV "
     "(?quarter=2026Q3, or ?year&quarter; plus the dashboard's filters)", (400, 403)),
    ("/api/v1/dashboard/quarterly.pdf", "get", "One quarter's figures as PDF, tables and "
     "bar charts (?quarter=2026Q3, or ?year&quarter; plus the dashboard's filters)",
     (400, 403)),
    ("/api/v1/negative-list", "get", "Search the supplier negative list (?q&scope&status)",
     (400, 403)),
    ("/api/v1/negative-list", "post", "List a supplier {supplier, scope, reason, case}",
     (403, 409, 422)),
    ("/api/v1/negative-list/{entry_id}/remove", "post", "Remove a supplier {reason}",
     (403, 404, 422)),
    ("/api/v1/intake/manual", "post", "A clerk registers a post/phone/visit report; "
     "returns a follow-up receipt once", (403, 422, 503)),
    ("/api/v1/cases/{case_id}/notes", "post", "Add an internal note {body} (sealed)",
     (400, 403, 404)),
    ("/api/v1/cases/{case_id}/notes", "get", "Internal notes, opened (an audited open; "
     "?reason=)", (403, 404)),
)
for _path, _method, _summary, _codes in _WORKSPACE:
    OPENAPI["paths"].setdefault(_path, {})[_method] = {
        "summary": _summary, "responses": {"200": {"description": "ok"}, **_errors(*_codes)}}


def openapi_document(case_statuses: Sequence[str]) -> dict[str, Any]:
    """The document with the case list's ``status`` filter limited to ``case_statuses``
    (derived from the workflow definitions when the app is created)."""
    document = copy.deepcopy(OPENAPI)
    for parameter in document["paths"]["/api/v1/cases"]["get"]["parameters"]:
        if parameter["name"] == "status":
            parameter["schema"]["enum"] = list(case_statuses)
    return document
