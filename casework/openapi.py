"""The internal API's OpenAPI 3.1 document (kept in step with CONTRACT.md §3)."""

from __future__ import annotations

from typing import Any

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
                    ("status", {"type": "string"}),
                    ("severity", {"enum": ["major", "high", "general", "low"]}),
                    ("unit", {"type": "string"}),
                    ("overdue", {"enum": ["true", "false"]}),
                    ("cursor", {"type": "string"}),
                    ("limit", {"type": "integer", "minimum": 1, "maximum": 200}))],
            "responses": {"200": {"description": "a page", **_json({
                "type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": _SUMMARY},
                               "next": {"type": ["string", "null"]}}})},
                          **_errors(400, 401, 403)}}},
        "/api/v1/cases/{case_id}": {"get": {
            "summary": "One case with its decrypted content (an audited open)",
            "parameters": [_CASE_ID, {"name": "reason", "in": "query", "required": False,
                                      "schema": {"type": "string"}}],
            "responses": {"200": {"description": "case", **_json({"allOf": [_SUMMARY, {
                "type": "object",
                "properties": {"content": {"type": "object"}, "workflow": {"type": "object"},
                               "triage": {"type": "object"},
                               "messages": {"type": "array"}}}]})},
                          **_errors(401, 403, 404)}}},
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
