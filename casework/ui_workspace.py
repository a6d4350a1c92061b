"""More officers' pages (issue 5): case notes, the password change, account administration
and manual intake. Like casework/ui.py, every page calls the API's own logic (same role,
scope and recusal checks, same audit events); nothing here decides access on its own.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from aiohttp import web

from casework import app as api
from casework.accounts import AccountAdmin, change_password, session_claims
from casework.attachments import download as download_attachment
from casework.manual_intake import register
from casework.notes import add_note
from casework.ui import _CLAIMS, _back, _case_page, _json_of, _render, page, submit_to_api
from hotline.clock import utcnow
from hotline.contract import COMPLAINT_CATEGORIES, REPORT_CATEGORIES, format_time
from hotline.domain.case import ROLES, Account
from hotline.errors import ConcurrencyConflict
from hotline.web import ApiError

__all__ = ["add_workspace_ui_routes"]


def _see_other(location: str) -> web.Response:
    """A redirect that is returned (not raised), so the page wrapper renews the session."""
    return web.Response(status=303, headers={"Location": location})


# --- case notes -----------------------------------------------------------------------------


@page(form=True)
async def case_note(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    await submit_to_api(request, add_note, {"body": str(fields.get("body", ""))},
                        _case_page(request), "Note added")


@page()
async def case_attachment(request: web.Request) -> web.StreamResponse:
    """A sealed attachment of a visible case, opened through the API's audited download."""
    try:
        return await download_attachment(request)
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)


# --- one's own password ---------------------------------------------------------------------


@page(password_ok=True)
async def password_page(request: web.Request) -> web.Response:
    return _render(request, "password.html")


@page(form=True, password_ok=True)
async def password_submit(request: web.Request) -> web.StreamResponse:
    account: Account = request[api.ACCOUNT]
    fields = await request.post()
    current, new = str(fields.get("current", "")), str(fields.get("new", ""))
    if new != str(fields.get("repeat", "")):
        return _render(request, "password.html", status=422,
                       error="The new password and its repetition differ.")
    try:
        updated = await change_password(request.app[api.DEPS].store, account,
                                        {"current": current, "new": new})
    except ApiError as exc:
        return _render(request, "password.html", status=exc.status, error=exc.message)
    claims = request[_CLAIMS]
    # The password fingerprint moved on, which ends every other session; this one goes on.
    claims.update(session_claims(updated, mfa=bool(claims.get("mfa")),
                                 scope=str(claims.get("scope", "full"))))
    return _see_other("/ui/queue?flash=Password+changed")


# --- account administration (admins) ---------------------------------------------------------


def _admin_service(request: web.Request) -> AccountAdmin:
    deps = request.app[api.DEPS]
    return AccountAdmin(deps.store, deps.org, request.app[api.SIGN_IN].factor)


async def _accounts_view(request: web.Request, status: int = 200, **context: Any
                         ) -> web.Response:
    deps = request.app[api.DEPS]
    return _render(request, "accounts.html", status=status,
                   items=await _admin_service(request).listing(), roles=ROLES,
                   units=[unit.code for unit in deps.org], **context)


def _not_admin(request: web.Request) -> web.Response | None:
    if request[api.ACCOUNT].role != "admin":
        return _render(request, "error.html", status=403, error="Only admins manage accounts.")
    return None


@page()
async def accounts_page(request: web.Request) -> web.Response:
    return _not_admin(request) or await _accounts_view(request)


@page(form=True)
async def account_create(request: web.Request) -> web.Response:
    refused = _not_admin(request)
    if refused is not None:
        return refused
    fields = await request.post()
    doc = {k: str(fields.get(k, "")).strip() for k in ("username", "role", "unit")}
    employee_id = str(fields.get("employee_id", "")).strip()
    if employee_id:
        doc["employee_id"] = employee_id
    try:
        created = await _admin_service(request).create(request[api.ACCOUNT], doc)
    except ApiError as exc:
        return await _accounts_view(request, status=exc.status, error=exc.message)
    # Shown once, on this answer only (no-store); it is nowhere else in clear.
    return await _accounts_view(request, status=201, one_time={
        "username": created["username"], "password": created["one_time_password"],
        "why": "created"})


@page(form=True)
async def account_change(request: web.Request) -> web.StreamResponse:
    refused = _not_admin(request)
    if refused is not None:
        return refused
    fields = await request.post()
    username = request.match_info["username"]
    current = await request.app[api.DEPS].store.accounts.get(username[:64])
    doc: dict[str, Any] = {}
    if "disabled" in fields:
        doc["disabled"] = str(fields["disabled"]) == "true"
    for name in ("role", "unit"):
        value = str(fields.get(name, ""))
        if value and (current is None or value != getattr(current, name)):
            doc[name] = value
    if not doc:
        raise _back("/ui/accounts", flash=f"Nothing changed for {username}")
    try:
        await _admin_service(request).change(request[api.ACCOUNT], username, doc)
    except ApiError as exc:
        raise _back("/ui/accounts", error=exc.message) from None
    raise _back("/ui/accounts", flash=f"Saved {username}")


@page(form=True)
async def account_reset(request: web.Request) -> web.Response:
    refused = _not_admin(request)
    if refused is not None:
        return refused
    fields = await request.post()
    username = request.match_info["username"]
    try:
        reset = await _admin_service(request).reset(
            request[api.ACCOUNT], username, {"totp": fields.get("totp") == "on"})
    except ApiError as exc:
        return await _accounts_view(request, status=exc.status, error=exc.message)
    return await _accounts_view(request, one_time={
        "username": username, "password": reset["one_time_password"], "why": "reset"})


# --- manual intake (clerks) ---------------------------------------------------------------------

_IDENTITY = ("name", "phone", "email", "address")
_FORM_KIND = "intake_form"  # forms already sent (their ids), so that a re-post is refused


def _intake_form(request: web.Request, status: int = 200, values: dict[str, Any] | None = None,
                 error: str | None = None) -> web.Response:
    account: Account = request[api.ACCOUNT]
    scope = api._scope(request)
    units = [unit.code for unit in request.app[api.DEPS].org if unit.code in scope]
    return _render(request, "intake.html", status=status, error=error, units=units,
                   form_id=secrets.token_urlsafe(16),
                   report_categories=REPORT_CATEGORIES,
                   complaint_categories=COMPLAINT_CATEGORIES, today=utcnow().date().isoformat(),
                   values=values or {"unit": account.unit, "kind": "report",
                                     "channel": "post"})


def _not_clerk(request: web.Request) -> web.Response | None:
    if request[api.ACCOUNT].role != "clerk":
        return _render(request, "error.html", status=403,
                       error="Manual intake is the intake clerks' task.")
    return None


@page()
async def intake_page(request: web.Request) -> web.Response:
    return _not_clerk(request) or _intake_form(request)


@page(form=True)
async def intake_submit(request: web.Request) -> web.Response:
    refused = _not_clerk(request)
    if refused is not None:
        return refused
    fields = await request.post()
    values = {k: str(fields.get(k, "")) for k in ("kind", "channel", "received_on", "category",
                                                  "unit", "description")}
    doc: dict[str, Any] = {k: v for k, v in values.items() if v}
    if values["kind"] == "report":
        doc["category"] = str(fields.get("report_category", "")) or "other"
    else:
        doc["category"] = str(fields.get("complaint_category", "")) or "other"
    identity = {k: str(fields.get(f"identity_{k}", "")).strip() for k in _IDENTITY}
    if any(identity.values()):
        doc["identity"] = {k: v for k, v in identity.items() if v}
    if fields.get("transcript_confirmed") == "on":
        doc["transcript_confirmed"] = True
    letter = fields.get("letter")
    if isinstance(letter, web.FileField):
        data = letter.file.read()
        if data:
            doc["attachments"] = [{"name": letter.filename or "letter",
                                   "type": letter.content_type or "application/octet-stream",
                                   "data": base64.b64encode(data).decode("ascii")}]
        del data
    request[api.FORM_BODY] = doc
    try:
        await _burn_form(request, str(fields.get("form_id", "")))
        accepted = _json_of(await register(request))
    except ApiError as exc:
        shown = {**values, "report_category": fields.get("report_category", ""),
                 "complaint_category": fields.get("complaint_category", ""),
                 "transcript_confirmed": "transcript_confirmed" in doc,
                 **{f"identity_{k}": v for k, v in identity.items()}}
        return _intake_form(request, status=exc.status, values=shown, error=exc.message)
    return _render(request, "intake_done.html", status=201, accepted=accepted)


async def _burn_form(request: web.Request, form_id: str) -> None:
    """Each intake form registers once: reloading the receipt page (which re-posts the
    form) must not register the report a second time, nor show a second receipt."""
    if not 16 <= len(form_id) <= 64:
        raise ApiError(400, "invalid_request", "the form is incomplete; open it again")
    try:
        await request.app[api.DEPS].store.records.put(
            _FORM_KIND, form_id, {"at": format_time(utcnow())}, expected_version=0)
    except ConcurrencyConflict:
        raise ApiError(409, "conflict", "this form was sent already: the report is "
                       "registered and its receipt was shown then") from None


def add_workspace_ui_routes(app: web.Application) -> None:
    app.add_routes([
        web.post("/ui/cases/{case_id}/notes", case_note),
        web.get("/ui/cases/{case_id}/attachments/{blob}", case_attachment),
        web.get("/ui/password", password_page),
        web.post("/ui/password", password_submit),
        web.get("/ui/accounts", accounts_page),
        web.post("/ui/accounts", account_create),
        web.post("/ui/accounts/{username}", account_change),
        web.post("/ui/accounts/{username}/reset", account_reset),
        web.get("/ui/intake", intake_page),
        web.post("/ui/intake", intake_submit),
    ])
