"""The officers' web pages: server-rendered (Jinja2), no script, no third-party assets.

Pages call the same logic as the API (same scope, recusal and role checks in the store
queries and handlers), so nothing here decides access on its own. The session is a
sealed cookie (HttpOnly, SameSite=Strict, Secure under TLS) with an idle and an absolute
timeout; every form carries the session's CSRF token; sign-out revokes the session.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from casework import app as api
from casework.accounts import enrol_begin, password_version, session_claims
from casework.dashboard import dashboard as dashboard_api
from casework.dashboard import quarterly_csv
from casework.dashboard_pdf import quarterly_pdf
from casework.negative_list import add_entry, remove_entry, search
from casework.notes import NOTE_READERS, NOTE_WRITERS, open_notes
from casework.vault import decide_disclosure, open_identity, pending_disclosures, request_disclosure
from hotline.casefile import workflow_of
from hotline.checkpoints import make_checkpoint, recent_checkpoints
from hotline.domain.case import Account
from hotline.errors import ConcurrencyConflict, ContractError
from hotline.logging import get_logger
from hotline.totp import TotpError
from hotline.web import ApiError
from hotline.workflow import Actor

__all__ = ["add_ui_routes"]

_log = get_logger("hotline.casework.ui")
COOKIE = "hotline_session"
IDLE_SECONDS = 30 * 60
_HERE = Path(__file__).parent
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- session ---------------------------------------------------------------------------


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto") == "https"


def _set_session(request: web.Request, response: web.StreamResponse,
                 claims: dict[str, Any]) -> None:
    ttl = request.app[api.DEPS].settings.session_ttl_seconds
    now = int(time.time())
    claims = {**claims, "seen": now}
    claims.setdefault("iat", now)
    claims.setdefault("sid", secrets.token_urlsafe(12))
    claims.setdefault("csrf", secrets.token_urlsafe(24))
    remaining = max(1, claims["iat"] + ttl - now)
    token = request.app[api.TOKENS].issue({**claims, "aud": "ui"}, remaining)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/ui",
                        secure=_secure(request))


async def _session(request: web.Request) -> dict[str, Any] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims = request.app[api.TOKENS].verify(token)
    except ContractError:
        return None
    if claims.get("aud") != "ui" or time.time() - int(claims.get("seen", 0)) > IDLE_SECONDS:
        return None
    store = request.app[api.DEPS].store
    if await store.records.get("revoked_session", str(claims.get("sid"))) is not None:
        return None
    account = await store.accounts.get(str(claims.get("sub")))
    if account is None or account.disabled or claims.get("pv") != password_version(account):
        return None
    request[api.ACCOUNT] = account
    return claims


def _render(request: web.Request, template: str, status: int = 200,
            **context: Any) -> web.Response:
    account = request.get(api.ACCOUNT)
    html = _ENV.get_template(template).render(
        account=account, csrf=request.get(_CSRF, ""), flash=request.query.get("flash"),
        error=context.pop("error", request.query.get("error")), **context)
    return web.Response(text=html, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP})


_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


_CSRF = web.RequestKey("csrf", str)
_CLAIMS = web.RequestKey("claims", dict[str, Any])


def page(*, form: bool = False, enrol_ok: bool = False,
         password_ok: bool = False) -> Callable[[Handler], Handler]:
    """A signed-in page: the session (renewed for the idle timeout), and CSRF on forms.

    An account with a one-time password is sent to change it first (``password_ok``
    pages, enrolment and sign-out excepted).
    """
    def wrap(handler: Handler) -> Handler:
        async def inner(request: web.Request) -> web.StreamResponse:
            claims = await _session(request)
            if claims is None:
                raise web.HTTPSeeOther("/ui/login")
            if not enrol_ok and (claims.get("scope") == "enrol" or (
                    request[api.ACCOUNT].role in _TOTP and not claims.get("mfa"))):
                raise web.HTTPSeeOther("/ui/enrol")
            if not (password_ok or enrol_ok) and request[api.ACCOUNT].must_change_password:
                raise web.HTTPSeeOther("/ui/password")
            request[_CSRF] = str(claims["csrf"])
            request[_CLAIMS] = claims
            if form:
                fields = await request.post()
                if not secrets.compare_digest(str(fields.get("csrf", "")), str(claims["csrf"])):
                    return _render(request, "error.html", status=403,
                                   error="The form expired or did not come from this site.")
            response = await handler(request)
            _set_session(request, response, claims)
            return response
        return inner
    return wrap


_TOTP = frozenset({"supervisor", "admin", "auditor"})


def _json_of(response: web.StreamResponse) -> Any:
    assert isinstance(response, web.Response)
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


def _back(path: str, **query: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(path + ("?" + urlencode(query) if query else ""))


async def submit_to_api(request: web.Request, handler: Handler, doc: dict[str, Any],
                        back: str, flash: str) -> NoReturn:
    """A case form: the JSON API handler does the work (same checks as the API), then
    back to ``back`` with its error or with ``flash``."""
    request[api.FORM_BODY] = doc
    try:
        await handler(request)
    except ApiError as exc:
        raise _back(back, error=exc.message) from None
    raise _back(back, flash=flash)


def _case_page(request: web.Request) -> str:
    return f"/ui/cases/{request.match_info['case_id']}"


# --- sign-in ----------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    return _render(request, "login.html")


async def login_submit(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    totp = str(fields.get("totp", "")).strip() or None
    try:
        result = await request.app[api.SIGN_IN](fields.get("username"), fields.get("password"),
                                                totp)
    except ApiError as exc:
        return _render(request, "login.html", status=exc.status, error=exc.message,
                       username=str(fields.get("username", ""))[:64],
                       need_code=exc.code == "totp_required")
    _log.info("officer.signed_in", username=result.account.username, channel="ui")
    response = web.HTTPSeeOther("/ui/enrol" if result.scope == "enrol" else "/ui/queue")
    _set_session(request, response, session_claims(result.account, mfa=result.mfa,
                                                   scope=result.scope))
    raise response


@page(enrol_ok=True)
async def enrol_page(request: web.Request) -> web.Response:
    account: Account = request[api.ACCOUNT]
    if await request.app[api.SIGN_IN].factor.enrolled(account.username):
        raise web.HTTPSeeOther("/ui/queue")
    enrolment = await enrol_begin(request.app[api.SIGN_IN], account)
    return _render(request, "enrol.html", secret=enrolment["secret"], uri=enrolment["uri"])


@page(form=True, enrol_ok=True)
async def enrol_submit(request: web.Request) -> web.StreamResponse:
    account: Account = request[api.ACCOUNT]
    fields = await request.post()
    sign_in = request.app[api.SIGN_IN]
    try:
        codes = await sign_in.factor.confirm(account.username, str(fields.get("code", "")))
    except TotpError as exc:
        enrolment = await enrol_begin(sign_in, account)
        return _render(request, "enrol.html", status=422, error=str(exc),
                       secret=enrolment["secret"], uri=enrolment["uri"])
    from hotline.services import append_system_audit

    await append_system_audit(sign_in.store, actor=account.username, type_="totp.enrolled",
                              data={"username": account.username})
    response = _render(request, "recovery.html", codes=codes)
    request[_CLAIMS].update(session_claims(account, mfa=True))
    return response


@page(form=True, enrol_ok=True)
async def logout(request: web.Request) -> web.StreamResponse:
    claims = request[_CLAIMS]
    with contextlib.suppress(ConcurrencyConflict):  # already signed out
        await request.app[api.DEPS].store.records.put(
            "revoked_session", str(claims["sid"]), {"at": int(time.time())}, expected_version=0)
    response = web.HTTPSeeOther("/ui/login?flash=Signed+out")
    response.del_cookie(COOKIE, path="/ui")
    raise response


# --- queue and case ---------------------------------------------------------------------


@page()
async def queue(request: web.Request) -> web.Response:
    account: Account = request[api.ACCOUNT]
    if account.role == "auditor":
        raise web.HTTPSeeOther("/ui/audit")
    try:
        listing = _json_of(await api.list_cases(request))
    except ApiError as exc:
        return _render(request, "queue.html", status=exc.status, error=exc.message, items=[],
                       next=None, query=dict(request.query),
                       statuses=request.app[api.STATUS_FILTER])
    return _render(request, "queue.html", items=listing["items"], next=listing["next"],
                   query=dict(request.query), statuses=request.app[api.STATUS_FILTER])


@page()
async def case_page(request: web.Request) -> web.Response:
    account: Account = request[api.ACCOUNT]
    try:
        case = await (api._any_case(request) if account.role == "auditor"
                      else api._visible_case(request))
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)
    opened = None
    if request.query.get("reason") and account.role in api._CASE_READERS:
        opened = _json_of(await api.get_case(request))
    workflow = api._workflow_view(request, case) if account.role != "auditor" else None
    specs = {}
    if workflow and "state" in case.workflow:
        engine = request.app[api.WORKFLOWS]
        state = workflow_of(case)

        org = request.app[api.DEPS].org
        units = {u.code: f"{u.code} · {u.name_zh or u.name}" for u in org}
        for spec in engine.allowed_actions(state, Actor(account.username, account.role)):
            specs[spec.name] = [{"name": f.name, "type": f.type, "optional": f.optional,
                                 "choices": list(units if f.type == "unit" else f.choices),
                                 "labels": units if f.type == "unit" else {},
                                 "keys": dict(f.keys)} for f in spec.fields]
    notes = None
    if opened is not None and account.role in NOTE_READERS:
        # Opened with the content, for the same reason (one more audited open).
        notes = await open_notes(request, case, request.query.get("reason", "")[:200] or None)
    history = [e.to_api() for e in await request.app[api.DEPS].store.audit.events(case.id)]
    disclosures = []
    if account.role in ("officer", "supervisor"):
        from casework.vault import _requests, _view

        disclosures = [_view(r) for r in await _requests(request, case)]
    return _render(request, "case.html", case=case.summary(), triage=case.triage,
                   workflow=workflow, specs=specs, opened=opened, history=history,
                   disclosures=disclosures, assignee=case.workflow.get("assignee"),
                   notes=notes, note_writer=account.role in NOTE_WRITERS,
                   reason=request.query.get("reason", "")[:200])


def _action_doc(fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ("csrf",) or value == "":
            continue
        if key.startswith("f."):
            name, _, sub = key[2:].partition(".")
            if sub:
                doc.setdefault(name, {})[sub] = value
            elif value == "on":
                doc[name] = True
            elif str(value).isdigit() and name in ("days", "survey_rating"):
                doc[name] = int(value)
            else:
                doc[name] = value
        elif key in ("action", "note"):
            doc[key] = value
    return doc


@page(form=True)
async def case_action(request: web.Request) -> web.StreamResponse:
    await submit_to_api(request, api.post_action, _action_doc(await request.post()),
                        _case_page(request), "Done")


@page(form=True)
async def case_message(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    await submit_to_api(request, api.post_message, {"body": str(fields.get("body", ""))},
                        _case_page(request), "Message sent")


@page(form=True)
async def disclosure_request(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    await submit_to_api(request, request_disclosure, {"reason": str(fields.get("reason", ""))},
                        _case_page(request), "Disclosure requested")


@page(form=True)
async def disclosure_decide(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    doc: dict[str, Any] = {"decision": str(fields.get("decision", ""))}
    if fields.get("note"):
        doc["note"] = str(fields["note"])
    if fields.get("withhold_notice") and doc["decision"] == "approve":
        doc["withhold_notice"] = True
        doc["withhold_reason"] = str(fields.get("withhold_reason", ""))
    back = str(fields.get("back", "")) or _case_page(request)
    back = back if back.startswith("/ui/") else "/ui/disclosures"
    await submit_to_api(request, decide_disclosure, doc, back, "Request " + (
        "approved" if doc["decision"] == "approve" else "denied"))


@page()
async def identity_page(request: web.Request) -> web.Response:
    try:
        shown = _json_of(await open_identity(request))
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)
    return _render(request, "identity.html", identity=shown["identity"],
                   case_id=request.match_info["case_id"])


@page()
async def disclosures_page(request: web.Request) -> web.Response:
    try:
        pending = _json_of(await pending_disclosures(request))
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)
    return _render(request, "disclosures.html", items=pending["items"])


# --- dashboard, audit, negative list ------------------------------------------------------


@page()
async def dashboard_page(request: web.Request) -> web.Response:
    try:
        figures = _json_of(await dashboard_api(request))
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)
    return _render(request, "dashboard.html", figures=figures, query=dict(request.query))


@page()
async def dashboard_export(request: web.Request) -> web.StreamResponse:
    """The quarterly PDF or CSV download, through the API's handler (same scope)."""
    export = quarterly_pdf if request.match_info["format"] == "pdf" else quarterly_csv
    try:
        return await export(request)
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)


@page()
async def audit_page(request: web.Request) -> web.Response:
    account: Account = request[api.ACCOUNT]
    if account.role not in ("auditor", "admin", "supervisor"):
        return _render(request, "error.html", status=403, error="Only auditors, supervisors "
                       "and admins verify the audit trail.")
    verdict = _json_of(await api.audit_verify(request))
    records = await recent_checkpoints(request.app[api.DEPS].store, 20)
    checkpoints = [{"n": r.doc["n"], "at": r.doc["at"], "moved": len(r.doc["heads"]),
                    "chains": r.doc["chains"]} for r in records]
    return _render(request, "audit.html", verdict=verdict, checkpoints=checkpoints)


@page(form=True)
async def audit_checkpoint(request: web.Request) -> web.StreamResponse:
    account: Account = request[api.ACCOUNT]
    if account.role not in ("auditor", "admin"):
        raise _back("/ui/audit", error="Only auditors and admins sign checkpoints")
    deps = request.app[api.DEPS]
    record = await make_checkpoint(deps.store, deps.master)
    raise _back("/ui/audit", flash="Checkpoint signed" if record else "Nothing moved")


@page()
async def negative_list_page(request: web.Request) -> web.Response:
    try:
        found = _json_of(await search(request))
    except ApiError as exc:
        return _render(request, "error.html", status=exc.status, error=exc.message)
    return _render(request, "negative_list.html", items=found["items"],
                   q=request.query.get("q", ""))


@page(form=True)
async def negative_list_submit(request: web.Request) -> web.StreamResponse:
    fields = await request.post()
    try:
        if "entry_id" in request.match_info:
            request[api.FORM_BODY] = {"reason": str(fields.get("reason", ""))}
            await remove_entry(request)
        else:
            request[api.FORM_BODY] = {k: str(fields.get(k, "")) for k in
                                      ("supplier", "scope", "reason", "case")}
            await add_entry(request)
    except ApiError as exc:
        raise _back("/ui/negative-list", error=exc.message) from None
    raise _back("/ui/negative-list", flash="Saved")


async def static(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(_HERE / "static" / "casework.css",
                            headers={"Cache-Control": "max-age=3600"})


async def root(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/ui/queue")


def add_ui_routes(app: web.Application) -> None:
    app.add_routes([
        web.get("/ui/", root),
        web.get("/ui/static/casework.css", static),
        web.get("/ui/login", login_page),
        web.post("/ui/login", login_submit),
        web.get("/ui/enrol", enrol_page),
        web.post("/ui/enrol", enrol_submit),
        web.post("/ui/logout", logout),
        web.get("/ui/queue", queue),
        web.get("/ui/cases/{case_id}", case_page),
        web.post("/ui/cases/{case_id}/actions", case_action),
        web.post("/ui/cases/{case_id}/messages", case_message),
        web.post("/ui/cases/{case_id}/disclosures", disclosure_request),
        web.post("/ui/cases/{case_id}/disclosures/{request_id}/decision", disclosure_decide),
        web.get("/ui/cases/{case_id}/identity", identity_page),
        web.get("/ui/disclosures", disclosures_page),
        web.get("/ui/dashboard", dashboard_page),
        web.get(r"/ui/dashboard/quarterly.{format:pdf|csv}", dashboard_export),
        web.get("/ui/audit", audit_page),
        web.post("/ui/audit/checkpoints", audit_checkpoint),
        web.get("/ui/negative-list", negative_list_page),
        web.post("/ui/negative-list", negative_list_submit),
        web.post("/ui/negative-list/{entry_id}/remove", negative_list_submit),
    ])
