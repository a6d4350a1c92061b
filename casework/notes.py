"""Case notes: the handlers' internal investigation notes on a case.

A note is sealed to the organisation key at once (HPKE; purpose ``message``, as an
officer's message is sealed for the organisation — CONTRACT.md §6 fixes the purposes, and a
note's record kind keeps it apart from messages) and kept as a
record of kind ``case_note:<case id>``, keyed by time, so one case's notes are listed in
order without reading any other case's (and the purge after retention removes them).
Notes never go to the reporter (they are not case messages). Writing is for handlers;
reading opens every note and is an audited open like the content's (who, why). Access
follows the case: unit scope, recusal and never-to-the-subject come from
:func:`casework.app._visible_case`.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from casework.app import ACCOUNT, DEPS, _keyring, _visible_case, request_body
from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.crypto import Sealed, b64d, b64e, open_sealed, seal
from hotline.domain.case import Account, Case
from hotline.errors import ContractError, SealError, UnknownKey
from hotline.logging import get_logger
from hotline.retention import case_note_kind
from hotline.services import append_audit, audit_text
from hotline.web import ApiError

__all__ = ["NOTE_READERS", "NOTE_WRITERS", "add_note", "add_note_routes", "open_notes"]

_log = get_logger("hotline.casework.notes")
NOTE_WRITERS = frozenset({"officer", "supervisor"})
# Admins read content under the authorisation matrix, so they read notes too; clerks
# register reports but do not take part in the investigation.
NOTE_READERS = frozenset({"officer", "supervisor", "admin"})
MAX_NOTE = 20_000
_PURPOSE = "message"


def _kind(case: Case) -> str:
    return case_note_kind(case.id)  # the purge after retention deletes them by this kind


def _sealed_doc(sealed: Sealed) -> dict[str, str]:
    return {"kid": sealed.kid, "enc": b64e(sealed.enc), "ciphertext": b64e(sealed.ciphertext)}


def _sealed_of(doc: Any) -> Sealed:
    if not isinstance(doc, dict):
        raise ContractError("a note's seal is missing", field="sealed")
    return Sealed(str(doc["kid"]), b64d(str(doc["enc"]), field="enc"),
                  b64d(str(doc["ciphertext"]), field="ciphertext"))


async def add_note(request: web.Request) -> web.Response:
    """POST /api/v1/cases/{case_id}/notes ``{"body"}`` → 201 ``{"id", "at"}``."""
    deps = request.app[DEPS]
    account: Account = request[ACCOUNT]
    if account.role not in NOTE_WRITERS:
        raise ApiError(403, "forbidden", "only officers and supervisors write case notes")
    case = await _visible_case(request)
    doc = await request_body(request, deps.settings.max_body_bytes)
    body = doc.get("body")
    if set(doc) != {"body"} or not isinstance(body, str) or not body.strip() or len(
            body) > MAX_NOTE:
        raise ApiError(400, "invalid_request",
                       f"body must be a non-empty string of at most {MAX_NOTE} characters")
    ring = await _keyring(request.app, case.content.kid)
    kid, public = ring.active_public_key()
    sealed = seal(body.strip().encode(), public, kid=kid, purpose=_PURPOSE)
    del body, doc
    note_id = "n_" + secrets.token_urlsafe(12)
    at = utcnow()
    await deps.store.records.put(_kind(case), f"{format_time(at)}_{note_id}", {
        "id": note_id, "case_id": case.id, "author": account.username, "at": format_time(at),
        "sealed": _sealed_doc(sealed)}, expected_version=0)
    await append_audit(deps.store, case.id, actor=account.username, type_="note.added",
                       data={"note_id": note_id})
    return web.json_response({"id": note_id, "at": format_time(at)}, status=201,
                             headers={"Cache-Control": "no-store"})


async def open_notes(request: web.Request, case: Case, reason: str | None
                     ) -> list[dict[str, Any]]:
    """Every note of ``case``, opened; one ``notes.opened`` audit event (who, why, how many)."""
    deps = request.app[DEPS]
    account: Account = request[ACCOUNT]
    if account.role not in NOTE_READERS:
        raise ApiError(403, "forbidden", "this role does not read case notes")
    records = await deps.store.records.list(_kind(case))
    notes = []
    for record in records:
        body: str | None = None
        try:
            sealed = _sealed_of(record.doc.get("sealed"))
            ring = await _keyring(request.app, sealed.kid)
            body = open_sealed(sealed, ring.private_key(sealed.kid), purpose=_PURPOSE).decode(
                "utf-8", errors="replace")
        except (UnknownKey, SealError, ContractError, KeyError):
            _log.error("case.note_unreadable", case_id=case.id, note_id=record.doc.get("id"))
        notes.append({"id": record.doc.get("id"), "author": record.doc.get("author"),
                      "at": record.doc.get("at"), "body": body})
    await append_audit(deps.store, case.id, actor=account.username, type_="notes.opened",
                       data={"notes": len(notes), **(
                           {"reason": await audit_text(deps.store, case.id, reason)}
                           if reason else {})})
    return notes


async def list_notes(request: web.Request) -> web.Response:
    """GET /api/v1/cases/{case_id}/notes[?reason=] → ``{"items": [{id, author, at, body}]}``."""
    account: Account = request[ACCOUNT]
    if account.role not in NOTE_READERS:
        raise ApiError(403, "forbidden", "this role does not read case notes")
    case = await _visible_case(request)
    reason = request.query.get("reason", "")[:200] or None
    return web.json_response({"items": await open_notes(request, case, reason)},
                             headers={"Cache-Control": "no-store"})


def add_note_routes(app: web.Application) -> None:
    app.add_routes([
        web.post("/api/v1/cases/{case_id}/notes", add_note),
        web.get("/api/v1/cases/{case_id}/notes", list_notes),
    ])
