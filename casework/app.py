"""casework: the officers' API. Unit scope is applied in every store query."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from prometheus_client import Counter

from casework.accounts import SignIn, password_version, session_claims
from casework.openapi import openapi_document
from hotline.casefile import (
    apply_workflow,
    case_statuses,
    map_sealed_values,
    seal_action_text,
    workflow_of,
)
from hotline.checkpoints import verify_everything
from hotline.clock import utcnow
from hotline.contract import CHANNELS, format_time, parse_time
from hotline.crypto import (
    KeyRing,
    MasterKey,
    ReceiptKeys,
    Sealed,
    TokenSigner,
    open_sealed,
    seal,
)
from hotline.domain.case import SEVERITIES, Account, Case, CaseMessage, CaseQuery, identities
from hotline.errors import ConcurrencyConflict, ContractError, SealError, UnknownKey
from hotline.logging import get_logger
from hotline.mail.config import load_mailboxes
from hotline.mail.replies import queue_complaint_reply
from hotline.org import OrgTree
from hotline.ports import Bus, Store
from hotline.retention import archive_if_closed
from hotline.services import append_audit, audit_text, audit_trail, load_keyring
from hotline.settings import Settings
from hotline.totp import TOTP_ROLES
from hotline.web import (
    ApiError,
    error_middleware,
    health_routes,
    read_json,
    security_headers_middleware,
)
from hotline.workflow import Actor, WorkflowEngine, WorkflowError

__all__ = ["CaseworkDeps", "create_app"]

_log = get_logger("hotline.casework")

LOGINS = Counter("hotline_officer_logins_total", "Officer sign-in attempts", ["outcome"])
CONTENT_OPENS = Counter("hotline_case_content_opened_total", "Case content opened by officers")

_VERIFIERS = frozenset({"auditor", "admin", "supervisor"})
_CASE_READERS = frozenset({"officer", "supervisor", "admin", "clerk"})


@dataclass(frozen=True)
class CaseworkDeps:
    settings: Settings
    store: Store
    bus: Bus
    org: OrgTree
    master: MasterKey
    # Intake's receipt key, when this casework may hand out receipts for manual intake
    # (post, phone, visit) so that those reporters can follow up online too.
    receipts: ReceiptKeys | None = None


DEPS = web.AppKey("deps", CaseworkDeps)
TOKENS = web.AppKey("tokens", TokenSigner)
KEYRING = web.AppKey("keyring", dict[str, KeyRing])
WORKFLOWS = web.AppKey("workflows", WorkflowEngine)
# What the case list's status filter accepts (and the queue page offers): every status a
# case can have, derived from the workflow definitions, plus "archived" (see list_cases).
STATUS_FILTER = web.AppKey("status_filter", tuple[str, ...])
OPENAPI = web.AppKey("openapi", dict[str, Any])
ACTIONS = Counter("hotline_workflow_actions_total", "Workflow actions applied", ["action"])
ACCOUNT = web.RequestKey("account", Account)
SIGN_IN = web.AppKey("sign_in", SignIn)
# A server-rendered form, already checked for CSRF, handed to the API's logic (casework/ui.py).
FORM_BODY = web.RequestKey("form_body", dict[str, Any])


async def request_body(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The JSON body of an API call, or the fields of a UI form posted to the same logic."""
    form = request.get(FORM_BODY)
    if form is not None:
        return dict(form)
    return await read_json(request, max_bytes)


async def _keyring(app: web.Application, kid: str) -> KeyRing:
    holder = app[KEYRING]
    ring = holder.get("ring")
    if ring is None or kid not in ring:
        ring = holder["ring"] = await load_keyring(app[DEPS].store, app[DEPS].master)
    return ring


@web.middleware
async def auth_middleware(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
    public = request.path in ("/api/v1/auth/login", "/api/v1/openapi.json", "/healthz",
                              "/readyz", "/metrics") or request.path.startswith("/ui/")
    if public:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "sign in first")
    try:
        claims = request.app[TOKENS].verify(header.removeprefix("Bearer ").strip())
    except ContractError:
        raise ApiError(401, "unauthorized", "the session is invalid or expired") from None
    account = await request.app[DEPS].store.accounts.get(str(claims.get("sub")))
    if account is None or account.disabled:
        raise ApiError(401, "unauthorized", "the account is not active")
    _check_session(request, account, claims)
    request[ACCOUNT] = account
    return await handler(request)


_ENROL_PATHS = frozenset({"/api/v1/auth/totp/enrol", "/api/v1/auth/totp/confirm"})
# Enrolment first (a one-time password does not replace the second factor), then the
# password; API tokens are stateless, so there is no sign-out to allow.
_PASSWORD_CHANGE_PATHS = frozenset({"/api/v1/auth/password", *_ENROL_PATHS})


def _check_session(request: web.Request, account: Account, claims: dict[str, Any]) -> None:
    """A reset password ends old sessions; TOTP roles need a second factor or enrolment."""
    if claims.get("aud") == "ui":  # a page session's cookie is not an API token
        raise ApiError(401, "unauthorized", "use a token from /api/v1/auth/login")
    if claims.get("pv") != password_version(account):
        raise ApiError(401, "unauthorized", "the session ended; sign in again")
    second_factor_missing = claims.get("scope") == "enrol" or (
        account.role in TOTP_ROLES and not claims.get("mfa"))
    if second_factor_missing and request.path not in _ENROL_PATHS:
        raise ApiError(403, "totp_enrolment_required",
                       "enrol a second factor first (POST /api/v1/auth/totp/enrol)")
    if account.must_change_password and request.path not in _PASSWORD_CHANGE_PATHS:
        # Set when an admin created or reset the account: its password is a one-time one.
        raise ApiError(403, "password_change_required",
                       "change the one-time password first (POST /api/v1/auth/password)")


def _account(request: web.Request) -> Account:
    return request[ACCOUNT]


async def login(request: web.Request) -> web.Response:
    """Password, then the TOTP code (or a recovery code) for accounts that enrolled one."""
    deps = request.app[DEPS]
    doc = await read_json(request, 8192)
    if set(doc) - {"username", "password", "totp"}:
        raise ApiError(400, "invalid_request", "fields: username, password, totp")
    try:
        result = await request.app[SIGN_IN](doc.get("username"), doc.get("password"),
                                            doc.get("totp"))
    except ApiError as exc:
        LOGINS.labels("throttled" if exc.status == 429 else "failed").inc()
        raise
    account = result.account
    LOGINS.labels("ok").inc()
    _log.info("officer.signed_in", username=account.username, role=account.role,
              second_factor=result.method)
    ttl = deps.settings.session_ttl_seconds
    if result.scope == "enrol":
        ttl = min(ttl, 900)
    token = request.app[TOKENS].issue(session_claims(account, mfa=result.mfa,
                                                     scope=result.scope), ttl)
    body: dict[str, Any] = {"token": token, "expires_in": ttl}
    if result.scope == "enrol":
        body["enrolment_required"] = True
    if account.must_change_password:
        body["password_change_required"] = True  # see _check_session
    if result.method == "recovery":
        body["recovery_codes_left"] = await request.app[SIGN_IN].factor.recovery_left(
            account.username)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _scope(request: web.Request) -> frozenset[str]:
    account = _account(request)
    return request.app[DEPS].org.subtree(account.unit)


def status_filter(engine: WorkflowEngine) -> tuple[str, ...]:
    """The values of the case list's ``status`` filter: every case status, and "archived"
    (closed and archived) next to "closed"."""
    statuses = list(case_statuses(engine))
    statuses.insert(statuses.index("closed") + 1 if "closed" in statuses else len(statuses),
                    "archived")
    return tuple(statuses)


def _choice(request: web.Request, name: str, choices: tuple[str, ...] | frozenset[str]
            ) -> str | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        raise ApiError(400, "invalid_request",
                       f"{name} must be one of {', '.join(sorted(choices))}")
    return value


def _encode_cursor(case: Case) -> str:
    raw = json.dumps([format_time(case.opened_at), case.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        opened, case_id = json.loads(raw)
        if not isinstance(case_id, str):
            raise ValueError
        return parse_time(opened, field="cursor"), case_id
    except (ValueError, TypeError, ContractError):
        raise ApiError(400, "invalid_request", "cursor is not one this API issued") from None


async def list_cases(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    account = _account(request)
    if account.role == "auditor":
        raise ApiError(403, "forbidden", "auditors read audit trails, not case lists")
    scope = _scope(request)
    unit = request.query.get("unit") or None
    if unit is not None and unit not in deps.org:
        raise ApiError(400, "invalid_request", "unit is not an organisation unit")
    overdue = _choice(request, "overdue", ("true", "false"))
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "invalid_request", "limit must be an integer") from None
    if not 1 <= limit <= 200:
        raise ApiError(400, "invalid_request", "limit must be between 1 and 200")
    cursor = request.query.get("cursor")
    assigned = _choice(request, "assigned", ("me",))
    status = _choice(request, "status", request.app[STATUS_FILTER])
    # "Archived" is a flag set when a case closes (hotline/retention.py), not a status:
    # status=archived means closed and archived; status=closed means every closed case.
    archived = status == "archived" or None
    query = CaseQuery(
        units=scope, kind=_choice(request, "kind", ("report", "complaint")),
        status="closed" if archived else status, archived=archived,
        severity=_choice(request, "severity", SEVERITIES), unit=unit,
        overdue_at=utcnow() if overdue == "true" else None,
        after=_decode_cursor(cursor) if cursor else None, limit=limit + 1,
        viewer=identities(account), channel=_choice(request, "channel", CHANNELS),
        assignee=account.username if assigned == "me" else None)
    cases = await deps.store.cases.query(query)
    page, more = cases[:limit], len(cases) > limit
    return web.json_response({"items": [c.summary() for c in page],
                              "next": _encode_cursor(page[-1]) if more and page else None})


async def _visible_case(request: web.Request) -> Case:
    case_id = request.match_info["case_id"]
    if len(case_id) > 80:
        raise ApiError(404, "not_found", "no such case")
    store = request.app[DEPS].store
    case = await store.cases.get(case_id)
    if case is None:
        case = await store.cases.by_reference(case_id)
    # A case outside the caller's scope, or about the caller (never-to-the-subject), does
    # not exist for them.
    account = _account(request)
    if case is None or case.unit not in _scope(request) or set(identities(account)) & set(
            case.excluded):
        raise ApiError(404, "not_found", "no such case")
    return case


def _gone_if_purged(case: Case) -> None:
    """A tombstone (retention ended, hotline/retention.py) has no content to work on."""
    if case.status == "purged":
        raise ApiError(410, "gone", "this case was purged after its retention period; "
                       "only its tombstone and audit trail remain")


async def _open(request: web.Request, case: Case) -> dict[str, Any]:
    _gone_if_purged(case)
    purpose = "report" if case.kind == "report" else "complaint"
    try:
        ring = await _keyring(request.app, case.content.kid)
        opened = open_sealed(case.content, ring.private_key(case.content.kid), purpose=purpose)
        content: dict[str, Any] = json.loads(opened)
    except (UnknownKey, SealError):
        _log.error("case.content_unreadable", case_id=case.id, kid=case.content.kid)
        raise ApiError(500, "content_unreadable",
                       "the content does not open with the keys held here") from None
    return content


async def _messages(request: web.Request, case: Case) -> list[dict[str, Any]]:
    out = []
    for message in await request.app[DEPS].store.cases.messages(case.id):
        body: str | None = None
        if message.sealed_for_org is not None:
            try:
                ring = await _keyring(request.app, message.sealed_for_org.kid)
                body = open_sealed(message.sealed_for_org,
                                   ring.private_key(message.sealed_for_org.kid),
                                   purpose="message").decode("utf-8", errors="replace")
            except (UnknownKey, SealError):
                body = None
        out.append({"id": message.id, "from": message.author, "actor": message.actor,
                    "at": format_time(message.at), "body": body})
    return out


async def get_case(request: web.Request) -> web.Response:
    account = _account(request)
    if account.role not in _CASE_READERS:
        raise ApiError(403, "forbidden", "this role does not read case content")
    case = await _visible_case(request)
    reason = request.query.get("reason", "")[:200] or None
    content, named = _pseudonymised(await _open(request, case))
    store = request.app[DEPS].store
    await append_audit(store, case.id, actor=account.username, type_="content.opened",
                       data={"reason": await audit_text(store, case.id, reason)}
                       if reason else {})
    CONTENT_OPENS.inc()
    return web.json_response({
        **case.summary(),
        "content": content,
        "identity": {"sealed": named},
        "workflow": _workflow_view(request, case, await _opened_record(request, case)),
        "triage": {"rules": list(case.triage.get("rules", [])),
                   "explanation": case.triage.get("explanation", []),
                   "flow": case.triage.get("flow"),
                   "retaliation_risk": case.triage.get("retaliation_risk"),
                   "escalated": case.triage.get("escalated", False)},
        "messages": await _messages(request, case),
    }, headers={"Cache-Control": "no-store"})


def _pseudonymised(content: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The identity vault (casework/vault.py): the case view never carries the identity."""
    from casework.vault import pseudonymise

    return pseudonymise(content)


def _recorded(case: Case) -> Any:
    return (case.workflow.get("state") or {}).get("record") or {}


def _record_view(case: Case) -> Any:
    """What each action recorded, free text shown only as ``{"sealed": true}``."""
    return map_sealed_values(_recorded(case), lambda _envelope: {"sealed": True})


async def _opened_record(request: web.Request, case: Case) -> Any:
    """What each action recorded, free text opened: only with an audited content open."""
    kids: set[str] = set()
    map_sealed_values(_recorded(case), lambda envelope: kids.add(str(envelope.get("kid"))))
    rings = {kid: await _keyring(request.app, kid) for kid in kids}

    def opened(envelope: Any) -> str | None:
        try:
            sealed = Sealed.from_wire(dict(envelope), field="workflow value")
            ring = rings[sealed.kid]
            return open_sealed(sealed, ring.private_key(sealed.kid),
                               purpose="workflow").decode("utf-8", errors="replace")
        except (KeyError, UnknownKey, SealError, ContractError):
            _log.error("case.workflow_value_unreadable", case_id=case.id)
            return None

    return map_sealed_values(_recorded(case), opened)


async def _text_sealer(app: web.Application, case: Case) -> Callable[[str], dict[str, str]]:
    """Seals a free-text workflow value to the organisation's active key."""
    ring = await _keyring(app, case.content.kid)
    kid, public = ring.active_public_key()
    return lambda text: seal(text.encode(), public, kid=kid, purpose="workflow").to_wire()


def _workflow_view(request: web.Request, case: Case, record: Any = None) -> dict[str, Any]:
    """CONTRACT §3's workflow object: state, the caller's allowed actions, deadlines, and
    what each action recorded (``record``: free text opened, or sealed placeholders)."""
    if "state" not in case.workflow:
        return {"name": "", "state": case.status, "actions": [], "deadlines": []}
    engine = request.app[WORKFLOWS]
    state = workflow_of(case)
    account = _account(request)
    allowed = engine.allowed_actions(state, Actor(account.username, account.role))
    return {"name": case.workflow.get("name", ""), "state": state.state,
            "actions": [spec.name for spec in allowed],
            "action_fields": {spec.name: [f.name for f in spec.fields] for spec in allowed},
            "deadlines": [{"name": d["name"], "due_at": d["due_at"], "met_at": d["met_at"]}
                          for d in case.workflow.get("deadlines", [])],
            "record": _record_view(case) if record is None else record}


async def post_action(request: web.Request) -> web.Response:
    """Apply a workflow action (CONTRACT §3): 409 wrong state, 403 role, 422 fields."""
    deps = request.app[DEPS]
    account = _account(request)
    case = await _visible_case(request)
    doc = await request_body(request, 65_536)
    action = doc.pop("action", None)
    note = doc.pop("note", None)
    if not isinstance(action, str) or not action or (note is not None and
                                                    not isinstance(note, str)):
        raise ApiError(400, "invalid_request", "action must be a string (note optional)")
    _gone_if_purged(case)
    if action == "change_severity":
        updated = await _change_severity(request, case, doc, account)
    elif action == "assign":
        updated = await _assign(request, case, doc, account)
    elif action == "declare_recusal":
        updated = await _declare_recusal(request, case, doc, account)
    else:
        engine = request.app[WORKFLOWS]
        now = utcnow()
        try:
            state = engine.apply(workflow_of(case), action,
                                 Actor(account.username, account.role), doc, now)
        except WorkflowError as exc:
            code = {403: "forbidden", 409: "conflict", 422: "unprocessable"}.get(
                exc.status, "invalid")
            raise ApiError(exc.status, code, str(exc)) from None
        # Free text (findings, root cause …) is sealed before it is stored (casefile.py).
        state = seal_action_text(state, engine.definition(state), action,
                                 await _text_sealer(request.app, case))
        if action == "send_survey":  # the complainant gets the link (casework/survey.py)
            await _send_survey(request, case, account, now)
        # A case that closes is archived with its retention end (hotline/retention.py).
        updated = await _save(deps.store, archive_if_closed(
            apply_workflow(case, state, engine), now, deps.settings.retention_days),
            case.version)
        await append_audit(deps.store, case.id, actor=account.username,
                           type_=f"workflow.{action}",
                           data={"from": case.status, "to": updated.status,
                                 "fields": sorted(doc), "note": note is not None})
    ACTIONS.labels(action).inc()
    return web.json_response({**updated.summary(), "workflow": _workflow_view(request, updated)})


async def _send_survey(request: web.Request, case: Case, account: Account,
                       now: datetime) -> None:
    from casework.survey import send_invitation

    await send_invitation(request.app, case, actor=account.username, now=now)


async def _save(store: Store, case: Case, version: int) -> Case:
    try:
        return await store.cases.update(case, expected_version=version)
    except ConcurrencyConflict:
        raise ApiError(409, "conflict", "the case changed meanwhile; reload and retry") from None


async def _assign(request: web.Request, case: Case, doc: dict[str, Any],
                  account: Account) -> Case:
    """Supervisors assign a handler who can see the case and is not excluded from it."""
    deps = request.app[DEPS]
    if account.role != "supervisor":
        raise ApiError(403, "forbidden", "only supervisors assign cases")
    name = doc.get("assignee")
    if not isinstance(name, str) or set(doc) != {"assignee"}:
        raise ApiError(422, "unprocessable", "assignee (a username) is required")
    assignee = await deps.store.accounts.get(name)
    if assignee is None or assignee.disabled or assignee.role not in ("officer", "supervisor"):
        raise ApiError(422, "unprocessable", "assignee must be an active officer or supervisor")
    if case.unit not in deps.org.subtree(assignee.unit):
        raise ApiError(422, "unprocessable", "assignee's unit does not cover this case")
    if set(identities(assignee)) & set(case.excluded):
        # Never-to-the-subject and recusals: refused without saying which applies.
        raise ApiError(422, "unprocessable", "this person cannot be assigned to this case")
    updated = await _save(deps.store, replace(case, workflow={**case.workflow,
                                                              "assignee": name}), case.version)
    await append_audit(deps.store, case.id, actor=account.username, type_="case.assigned",
                       data={"assignee": name})
    return updated


async def _declare_recusal(request: web.Request, case: Case, doc: dict[str, Any],
                           account: Account) -> Case:
    """An officer declares a conflict; from now on the case is hidden from them."""
    deps = request.app[DEPS]
    ground = doc.get("ground")
    if ground not in ("relative", "witness", "interest", "other") or set(doc) != {"ground"}:
        raise ApiError(422, "unprocessable",
                       "ground must be relative, witness, interest or other")
    excluded = tuple(sorted({*case.excluded, f"user:{account.username}"}))
    workflow = {**case.workflow}
    if workflow.get("assignee") == account.username:
        workflow.pop("assignee")
    updated = await _save(deps.store, replace(case, excluded=excluded, workflow=workflow),
                          case.version)
    await append_audit(deps.store, case.id, actor=account.username, type_="recusal.declared",
                       data={"ground": ground})
    return updated


async def list_stubs(request: web.Request) -> web.Response:
    """Cases forwarded away from the caller's units: reference and where, nothing else."""
    account = _account(request)
    if account.role == "auditor":
        raise ApiError(403, "forbidden", "auditors read audit trails, not case lists")
    stubs = await request.app[DEPS].store.cases.query(CaseQuery(
        units=None, stub_units=_scope(request), viewer=identities(account), limit=200))
    return web.json_response({"items": [
        {"id": c.id, "reference": c.reference, "kind": c.kind, "stub": True,
         "from_unit": c.stub_unit, "forwarded_to": c.unit,
         "forwarded_at": format_time(c.opened_at)} for c in stubs]})


async def _change_severity(request: web.Request, case: Case, doc: dict[str, Any],
                           account: Account) -> Case:
    """Officers may raise freely; lowering needs a reason (DOMAIN.md)."""
    if account.role not in ("officer", "supervisor"):
        raise ApiError(403, "forbidden", "only officers and supervisors change severity")
    severity, reason = doc.get("severity"), doc.get("reason")
    if severity not in SEVERITIES or set(doc) - {"severity", "reason"}:
        raise ApiError(422, "unprocessable", "severity must be major, high, general or low")
    lowering = SEVERITIES.index(severity) > SEVERITIES.index(case.severity)
    if lowering and (not isinstance(reason, str) or not reason.strip()):
        raise ApiError(422, "unprocessable", "lowering the severity needs a reason")
    triage = {**case.triage, "severity": severity,
              "officer_override": {"id": "officer.override", "severity": severity,
                                   "reason": f"set by {account.username}"}}
    updated = await _save(request.app[DEPS].store, replace(case, severity=severity,
                                                           triage=triage), case.version)
    await append_audit(request.app[DEPS].store, case.id, actor=account.username,
                       type_="severity.changed",
                       data={"from": case.severity, "to": severity,
                             "reason_given": bool(reason)})
    return updated


async def get_audit(request: web.Request) -> web.Response:
    case = await _visible_case(request) if _account(request).role != "auditor" else \
        await _any_case(request)
    return web.json_response({"case_id": case.id, "reference": case.reference,
                              "events": await audit_trail(request.app[DEPS].store, case.id)})


async def _any_case(request: web.Request) -> Case:
    store = request.app[DEPS].store
    case_id = request.match_info["case_id"][:80]
    case = await store.cases.get(case_id) or await store.cases.by_reference(case_id)
    # Auditors read every unit's trails, but never-to-the-subject and recusal still hold.
    if case is None or set(identities(_account(request))) & set(case.excluded):
        raise ApiError(404, "not_found", "no such case")
    return case


async def audit_verify(request: web.Request) -> web.Response:
    if _account(request).role not in _VERIFIERS:
        raise ApiError(403, "forbidden", "only auditors, supervisors and admins verify")
    report = await verify_everything(request.app[DEPS].store)
    return web.json_response(report.to_api())


# --- complaint replies by e-mail (issue 4) -------------------------------------------
async def mail_reply(deps: CaseworkDeps, case: Case, message_id: str, body: str,
                     ring: KeyRing, actor: str) -> str | None:
    """Queue an officer's message to a complainant as a threaded e-mail; the outbound id,
    or None when the case has no address to write to."""
    kid, public = ring.active_public_key()
    return await queue_complaint_reply(
        deps.store, deps.bus,
        load_mailboxes(deps.org, deps.settings.mail_domain, deps.settings.mailboxes_file),
        mail_domain=deps.settings.mail_domain, case=case, message_id=message_id, body=body,
        private_key=ring.private_key(case.content.kid), kid=kid, public=public, actor=actor)
# --- end complaint replies ------------------------------------------------------------


async def store_officer_message(app: web.Application, case: Case, body: str,
                                actor: str, *, org_copy: str | None = None) -> CaseMessage:
    """Store an officer's message on ``case``, sealed for the organisation and, when the
    case has a receipt, for the receipt only (what the reporter's follow-up view opens).

    ``org_copy`` is what the organisation's copy says when it must not be ``body`` (a
    survey link, which no officer may read and answer in the complainant's place). The
    caller writes the audit event (and e-mails complainants); the text is never kept in
    clear.
    """
    ring = await _keyring(app, case.content.kid)
    kid, public = ring.active_public_key()
    plaintext = body.encode()
    for_reporter = None if case.reply_key is None else seal(
        plaintext, X25519PublicKey.from_public_bytes(case.reply_key), kid="receipt",
        purpose="message")
    for_org = plaintext if org_copy is None else org_copy.encode()
    message = CaseMessage(id=secrets.token_urlsafe(18), case_id=case.id, at=utcnow(),
                          author="officer", actor=actor,
                          sealed_for_org=seal(for_org, public, kid=kid, purpose="message"),
                          sealed_for_reporter=for_reporter)
    del plaintext, for_org
    await app[DEPS].store.cases.add_message(message)
    return message


async def post_message(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    account = _account(request)
    if account.role not in ("officer", "supervisor"):
        raise ApiError(403, "forbidden", "only officers and supervisors write to reporters")
    case = await _visible_case(request)
    _gone_if_purged(case)
    doc = await request_body(request, deps.settings.max_body_bytes)
    body = doc.get("body")
    if set(doc) != {"body"} or not isinstance(body, str) or not body.strip():
        raise ApiError(400, "invalid_request", "body must be a non-empty string")
    ring = await _keyring(request.app, case.content.kid)
    message = await store_officer_message(request.app, case, body, account.username)
    reply_text = body if case.kind == "complaint" else None  # e-mailed below (issue 4)
    del body
    await append_audit(deps.store, case.id, actor=account.username, type_="message.sent",
                       data={"message_id": message.id,
                             "to": "reporter" if case.kind == "report" else "complainant"})
    if reply_text is not None:
        await mail_reply(deps, case, message.id, reply_text, ring, account.username)
    return web.json_response({"id": message.id, "at": format_time(message.at)}, status=201)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def create_app(deps: CaseworkDeps) -> web.Application:
    app = web.Application(middlewares=[error_middleware("casework"), security_headers_middleware,
                                       auth_middleware],
                          client_max_size=deps.settings.max_body_bytes + 4096)
    app[DEPS] = deps
    app[TOKENS] = TokenSigner(deps.master.derive("casework-session"), audience="casework")
    app[KEYRING] = {}
    app[WORKFLOWS] = WorkflowEngine.load(units=[unit.code for unit in deps.org])
    statuses = status_filter(app[WORKFLOWS])
    app[STATUS_FILTER] = statuses
    app[OPENAPI] = openapi_document(statuses)
    app[SIGN_IN] = SignIn(deps.store, deps.master)

    async def ready() -> dict[str, bool]:
        return {"store": await deps.store.ping(), "bus": await deps.bus.ping()}

    app.add_routes([
        web.post("/api/v1/auth/login", login),
        web.get("/api/v1/cases", list_cases),
        web.get("/api/v1/stubs", list_stubs),
        web.get("/api/v1/cases/{case_id}", get_case),
        web.get("/api/v1/cases/{case_id}/audit", get_audit),
        web.post("/api/v1/cases/{case_id}/messages", post_message),
        web.post("/api/v1/cases/{case_id}/actions", post_action),
        web.get("/api/v1/audit/verify", audit_verify),
        web.get("/api/v1/openapi.json", openapi),
        *health_routes(ready),
    ])
    _add_workspace_routes(app)
    return app


def _add_workspace_routes(app: web.Application) -> None:
    """Issue 5's routes (accounts, audit checkpoints, vault, dashboard …), kept apart."""
    from casework import routes  # the routes import this module's keys
    from casework.attachments import add_attachment_routes

    routes.add_routes(app)
    add_attachment_routes(app)
