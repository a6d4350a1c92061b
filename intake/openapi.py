"""The public API's OpenAPI 3.1 document (kept in step with CONTRACT.md §2)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_ACCEPTED = {
    "type": "object", "required": ["submission_id", "receipt"],
    "properties": {"submission_id": {"type": "string"},
                   "receipt": {"type": "string", "pattern": "^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$"}},
}
_POW = {"type": "object", "required": ["challenge", "nonce"], "additionalProperties": False,
        "properties": {"challenge": {"type": "string"},
                       "nonce": {"type": "string", "pattern": "^[0-9]+$"}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "error", "content": {"application/json": {
        "schema": _ERROR}}} for code in codes}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Hotline public API (intake)", "version": "1"},
    "paths": {
        "/api/v1/intake/key": {"get": {
            "summary": "The organisation's current public sealing key",
            "responses": {"200": {"description": "key", **_json({
                "type": "object", "required": ["kid", "suite", "public_key"],
                "properties": {"kid": {"type": "string"},
                               "suite": {"const": "HPKE-base-X25519-SHA256-AES256GCM"},
                               "public_key": {"type": "string",
                                              "description": "base64url X25519, 32 bytes"}}})},
                          **_errors(503)}}},
        "/api/v1/intake/pow": {"get": {
            "summary": "A single-use proof-of-work challenge",
            "responses": {"200": {"description": "challenge", **_json({
                "type": "object", "required": ["challenge", "difficulty", "expires_at"],
                "properties": {"challenge": {"type": "string"},
                               "difficulty": {"type": "integer", "minimum": 0},
                               "expires_at": {"type": "string", "format": "date-time"}}})}}}},
        "/api/v1/reports": {"post": {
            "summary": "File a report sealed by the client (HPKE, info 'hotline/1 report')",
            "requestBody": {"required": True, **_json({
                "type": "object", "additionalProperties": False,
                "required": ["kid", "enc", "ciphertext", "category"],
                "properties": {
                    "kid": {"type": "string"}, "enc": {"type": "string"},
                    "ciphertext": {"type": "string"},
                    "category": {"enum": ["corruption", "fraud", "safety", "wage_arrears",
                                          "labour_rights", "environment", "data_security",
                                          "conduct", "other"]},
                    "unit": {"type": "string"}, "locale": {"type": "string"}, "pow": _POW}})},
            "responses": {"202": {"description": "durably accepted", **_json(_ACCEPTED)},
                          **_errors(400, 403, 413, 422, 429, 503)}}},
        "/api/v1/complaints": {"post": {
            "summary": "File a service-quality complaint (sealed by intake on arrival)",
            "requestBody": {"required": True, **_json({
                "type": "object", "additionalProperties": False,
                "required": ["name", "email", "category", "subject", "description"],
                "properties": {
                    "name": {"type": "string"}, "email": {"type": "string", "format": "email"},
                    "phone": {"type": "string"}, "customer_ref": {"type": "string"},
                    "unit": {"type": "string"},
                    "category": {"enum": ["service_quality", "construction_quality", "billing",
                                          "staff_conduct", "delay", "other"]},
                    "subject": {"type": "string"}, "description": {"type": "string"},
                    "locale": {"type": "string"}, "pow": _POW}})},
            "responses": {"202": {"description": "durably accepted", **_json(_ACCEPTED)},
                          **_errors(400, 403, 413, 422, 429, 503)}}},
        "/api/v1/followup/login": {"post": {
            "summary": "Exchange a receipt for a short-lived follow-up token",
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["receipt"],
                "properties": {"receipt": {"type": "string"}}})},
            "responses": {"200": {"description": "token", **_json({
                "type": "object", "required": ["token", "expires_in"],
                "properties": {"token": {"type": "string"},
                               "expires_in": {"type": "integer"}}})}, **_errors(400, 401)}}},
        "/api/v1/followup": {"get": {
            "summary": "Status, reference and messages of the reporter's case",
            "security": [{"followup": []}],
            "responses": {"200": {"description": "case as the reporter sees it", **_json({
                "type": "object", "required": ["status", "messages"],
                "properties": {
                    "reference": {"type": ["string", "null"]},
                    "status": {"enum": ["received", "in_progress", "answered", "closed"]},
                    "messages": {"type": "array", "items": {
                        "type": "object", "required": ["from", "at", "body"],
                        "properties": {"from": {"enum": ["officer", "reporter"]},
                                       "at": {"type": "string", "format": "date-time"},
                                       "body": {"type": "string"}}}}}})},
                          **_errors(401)}}},
        "/api/v1/followup/messages": {"post": {
            "summary": "Add information to the case",
            "security": [{"followup": []}],
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["body"], "additionalProperties": False,
                "properties": {"body": {"type": "string"}}})},
            "responses": {"202": {"description": "durably accepted"},
                          **_errors(400, 401, 413, 503)}}},
        "/healthz": {"get": {"summary": "Process alive",
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Store and bus reachable",
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "not ready"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "text format"}}}},
    },
    "components": {
        "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "object", "required": ["code", "message"],
                      "properties": {"code": {"type": "string"},
                                     "message": {"type": "string"}}}}}},
        "securitySchemes": {"followup": {"type": "http", "scheme": "bearer"}},
    },
}
