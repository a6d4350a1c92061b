"""Issue 5's routes: sign-in hardening, accounts, audit checkpoints and export, vault …"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from casework.accounts import (
    AccountAdmin,
    change_password,
    enrol_begin,
    enrol_confirm,
    session_claims,
)
from casework.app import ACCOUNT, DEPS, SIGN_IN, TOKENS, _any_case, _visible_case
from casework.dashboard import add_dashboard_routes
from casework.dashboard_pdf import add_dashboard_pdf_routes
from casework.manual_intake import add_manual_intake_routes
from casework.negative_list import add_negative_list_routes
from casework.notes import add_note_routes
from casework.ui import add_ui_routes
from casework.ui_workspace import add_workspace_ui_routes
from casework.vault import add_vault_routes
from hotline.checkpoints import (
    checkpoint_public_key,
    checkpoint_records,
    make_checkpoint,
    verify_everything,
)
from hotline.clock import utcnow
from hotline.contract import format_time
from hotline.domain.case import Account
from hotline.errors import HotlineError
from hotline.logging import get_logger
from hotline.services import append_audit, audit_trail
from hotline.web import ApiError, read_json

_log = get_logger("hotline.casework")
CHECKPOINT_INTERVAL = web.AppKey("checkpoint_interval", float)

__all__ = ["add_routes"]


def _account(request: web.Request) -> Account:
    return request[ACCOUNT]


def _admin(request: web.Request) -> Account:
    account = _account(request)
    if account.role != "admin":
        raise ApiError(403, "forbidden", "only admins manage accounts")
    return account


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.json_response(doc, status=status, headers={"Cache-Control": "no-store"})


async def totp_enrol(request: web.Request) -> web.Response:
    return _json(await enrol_begin(request.app[SIGN_IN], _account(request)))


async def totp_confirm(request: web.Request) -> web.Response:
    account = _account(request)
    codes = await enrol_confirm(request.app[SIGN_IN], account, request)
    ttl = request.app[DEPS].settings.session_ttl_seconds
    token = request.app[TOKENS].issue(session_claims(account, mfa=True), ttl)
    body: dict[str, Any] = {"recovery_codes": codes, "token": token, "expires_in": ttl}
    if account.must_change_password:
        body["password_change_required"] = True
    return _json(body)


async def password(request: web.Request) -> web.Response:
    doc = await read_json(request, 4096)
    await change_password(request.app[DEPS].store, _account(request), doc)
    return _json({"changed": True, "sign_in_again": True})


def _accounts(request: web.Request) -> AccountAdmin:
    deps = request.app[DEPS]
    return AccountAdmin(deps.store, deps.org, request.app[SIGN_IN].factor)


async def list_accounts(request: web.Request) -> web.Response:
    _admin(request)
    return _json({"items": await _accounts(request).listing()})


async def create_account(request: web.Request) -> web.Response:
    admin = _admin(request)
    doc = await read_json(request, 4096)
    return _json(await _accounts(request).create(admin, doc), status=201)


async def change_account(request: web.Request) -> web.Response:
    admin = _admin(request)
    doc = await read_json(request, 4096)
    return _json(await _accounts(request).change(admin, request.match_info["username"], doc))


async def reset_account(request: web.Request) -> web.Response:
    admin = _admin(request)
    doc = await read_json(request, 1024) if request.can_read_body else {}
    return _json(await _accounts(request).reset(admin, request.match_info["username"], doc))


def add_routes(app: web.Application) -> None:
    app.add_routes([
        web.post("/api/v1/auth/totp/enrol", totp_enrol),
        web.post("/api/v1/auth/totp/confirm", totp_confirm),
        web.post("/api/v1/auth/password", password),
        web.get("/api/v1/accounts", list_accounts),
        web.post("/api/v1/accounts", create_account),
        web.patch("/api/v1/accounts/{username}", change_account),
        web.post("/api/v1/accounts/{username}/reset", reset_account),
        web.post("/api/v1/audit/checkpoints", create_checkpoint),
        web.get("/api/v1/audit/checkpoints", list_checkpoints),
        web.get("/api/v1/audit/public-key", public_key),
        web.get("/api/v1/cases/{case_id}/audit/export", export_trail),
    ])
    add_vault_routes(app)
    add_dashboard_routes(app)
    add_dashboard_pdf_routes(app)
    add_negative_list_routes(app)
    add_manual_intake_routes(app)
    add_note_routes(app)
    add_ui_routes(app)
    add_workspace_ui_routes(app)
    app[CHECKPOINT_INTERVAL] = CHECKPOINT_SECONDS
    app.cleanup_ctx.append(_checkpoint_loop)


# --- audit: checkpoints, public key, export ------------------------------------------

_AUDIT_READERS = frozenset({"auditor", "admin", "supervisor"})
CHECKPOINT_SECONDS = 300.0


def _auditing(request: web.Request, roles: frozenset[str] = _AUDIT_READERS) -> Account:
    account = _account(request)
    if account.role not in roles:
        raise ApiError(403, "forbidden", "only auditors, supervisors and admins")
    return account


async def create_checkpoint(request: web.Request) -> web.Response:
    account = _auditing(request, frozenset({"auditor", "admin"}))
    deps = request.app[DEPS]
    record = await make_checkpoint(deps.store, deps.master)
    if record is None:
        return _json({"created": False})
    _log.info("audit.checkpoint_made", n=record.doc["n"], by=account.username)
    return _json({"created": True, "checkpoint": dict(record.doc)}, status=201)


async def list_checkpoints(request: web.Request) -> web.Response:
    """Checkpoints numbered after ``after``, oldest first, ``limit`` of them (≤ 1,000; 100
    if not given); ``next_after`` is where the next page starts, null after the last."""
    _auditing(request)
    after = _count_param(request, "after", 0, minimum=0, maximum=10**12 - 1)
    limit = _count_param(request, "limit", 100, minimum=1, maximum=1000)
    items = []
    async for record in checkpoint_records(request.app[DEPS].store, after=after, page=limit):
        items.append({k: v for k, v in record.doc.items() if k != "heads"}
                     | {"chains_moved": len(record.doc["heads"])})
        if len(items) == limit:
            break
    return _json({"items": items,
                  "next_after": items[-1]["n"] if len(items) == limit else None})


def _count_param(request: web.Request, name: str, default: int, *, minimum: int,
                 maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise ApiError(400, "invalid_request",
                       f"{name} must be a whole number from {minimum} to {maximum}")
    return int(raw)


async def public_key(request: web.Request) -> web.Response:
    _auditing(request)
    raw = await checkpoint_public_key(request.app[DEPS].store)
    if raw is None:
        raise ApiError(404, "not_found", "no checkpoint has been signed yet")
    pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return _json({"algorithm": "Ed25519", "public_key": base64.b64encode(raw).decode(),
                  "pem": pem})


async def export_trail(request: web.Request) -> web.Response:
    """One case's trail with its verification and the checkpoints that cover it (JSON)."""
    account = _account(request)
    case = await (_any_case(request) if account.role == "auditor" else _visible_case(request))
    store = request.app[DEPS].store
    report = await verify_everything(store, case_ids=[case.id])
    events = await store.audit.events(case.id)
    # Whole checkpoints, so that their signatures verify outside Hotline.
    covering = [dict(r.doc) async for r in checkpoint_records(store)
                if case.id in r.doc["heads"]]
    key = await checkpoint_public_key(store)
    await append_audit(store, case.id, actor=account.username, type_="audit.exported",
                       data={"events": len(events)})
    doc = {"case_id": case.id, "reference": case.reference, "exported_at":
           format_time(utcnow()), "exported_by": account.username,
           "events": await audit_trail(store, case.id, events),
           "verification": report.to_api(),
           "checkpoints": covering,
           "checkpoint_public_key": None if key is None else base64.b64encode(key).decode()}
    return web.json_response(doc, headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="audit-{case.reference}.json"'})


async def _checkpoint_loop(app: web.Application) -> AsyncIterator[None]:
    """Sign a checkpoint every few minutes while the service runs (if heads moved)."""
    deps = app[DEPS]

    async def loop() -> None:
        while True:
            await asyncio.sleep(app[CHECKPOINT_INTERVAL])
            try:
                await make_checkpoint(deps.store, deps.master)
            except HotlineError as exc:  # the store is down: try again next round
                _log.warning("audit.checkpoint_failed", error=type(exc).__name__)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
