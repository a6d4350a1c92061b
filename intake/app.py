"""intake: the public API. Holds only the organisation's public key.

A submission is sealed (by the client, or here the moment it arrives), published, and
answered with 202 only once the bus has durably taken it. The receipt is returned once
and travels on only as a keyed hash.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from prometheus_client import Counter

from hotline.clock import utcnow
from hotline.contract import (
    COMPLAINT_CATEGORIES,
    REPORT_CATEGORIES,
    Submission,
    format_time,
)
from hotline.crypto import (
    SUITE_NAME,
    PowIssuer,
    ReceiptKeys,
    Sealed,
    TokenSigner,
    b64e,
    new_receipt,
    normalise_receipt,
    open_sealed,
    receipt_reply_private_key,
    receipt_reply_public_key,
    seal,
)
from hotline.domain.case import Case, CaseMessage, followup_status
from hotline.errors import BusUnavailable, ContractError, SealError, UnknownKey
from hotline.logging import get_logger
from hotline.org import OrgTree
from hotline.ports import Bus, Message, Store
from hotline.services import PublicKeyCache
from hotline.settings import Settings
from hotline.web import (
    ApiError,
    error_middleware,
    health_routes,
    read_json,
    security_headers_middleware,
)
from intake.openapi import OPENAPI

__all__ = ["IntakeDeps", "create_app"]

_log = get_logger("hotline.intake")

ACCEPTED = Counter("hotline_submissions_accepted_total", "Submissions durably accepted",
                   ["kind", "channel"])
REFUSED = Counter("hotline_submissions_refused_total", "Submissions refused at the edge",
                  ["kind", "reason"])

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


@dataclass(frozen=True)
class IntakeDeps:
    settings: Settings
    store: Store
    bus: Bus
    org: OrgTree
    receipts: ReceiptKeys


DEPS = web.AppKey("deps", IntakeDeps)
KEYS = web.AppKey("keys", PublicKeyCache)
POW = web.AppKey("pow", PowIssuer)
TOKENS = web.AppKey("tokens", TokenSigner)


def _string(doc: dict[str, Any], name: str, *, required: bool = True, max_len: int = 256,
            pattern: re.Pattern[str] | None = None) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise ApiError(400, "invalid_request", f"{name} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_request", f"{name} must be a non-empty string")
    if len(value) > max_len:
        raise ApiError(400, "invalid_request", f"{name} is longer than {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise ApiError(400, "invalid_request", f"{name} has an invalid format")
    return value


def _only(doc: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)[:200]}")


def _unit(app: web.Application, doc: dict[str, Any]) -> str | None:
    unit = _string(doc, "unit", required=False, max_len=32)
    if unit is not None and unit not in app[DEPS].org:
        raise ApiError(422, "unknown_unit", "unit is not an organisation unit")
    return unit


def _category(doc: dict[str, Any], choices: tuple[str, ...]) -> str:
    category = _string(doc, "category", max_len=32)
    assert category is not None
    if category not in choices:
        raise ApiError(422, "unknown_category", f"category must be one of {', '.join(choices)}")
    return category


async def _check_pow(request: web.Request, doc: dict[str, Any], kind: str) -> None:
    issuer = request.app[POW]
    if issuer.difficulty == 0 and doc.get("pow") is None:
        return  # nothing to verify, and no exception to raise and catch on every request
    now = utcnow()
    try:
        problem = issuer.verify(doc.get("pow"), now)
    except ContractError as exc:
        REFUSED.labels(kind, "pow").inc()
        raise ApiError(403, "proof_of_work", str(exc)) from None
    if not await request.app[DEPS].store.pow.burn(problem.challenge_id, problem.expires_at):
        REFUSED.labels(kind, "pow_reused").inc()
        raise ApiError(429, "proof_of_work_reused",
                       "this challenge was already used; fetch a new one")


def _message(submission: Submission) -> Message:
    return Message(routing_key=submission.routing_key, message_id=submission.id,
                   body=submission.to_bytes(), correlation_id=submission.correlation_id,
                   headers={"schema": "hotline.submission/1"})


async def _publish(request: web.Request, submission: Submission) -> None:
    await _publish_message(request, _message(submission), kind=submission.kind,
                           channel=submission.channel, sealed_by=submission.sealed_by)


async def _publish_message(request: web.Request, message: Message, *, kind: str, channel: str,
                           sealed_by: str) -> None:
    try:
        await request.app[DEPS].bus.publish(message)
    except BusUnavailable:
        REFUSED.labels(kind, "bus_unavailable").inc()
        _log.error("submission.not_queued", submission_id=message.message_id, kind=kind)
        raise ApiError(503, "queue_unavailable",
                       "the submission could not be stored safely; please try again") from None
    _accepted_counter(kind, channel).inc()
    # Debug, not info: the counter above already counts acceptances, and a JSON line per
    # submission was ≈ 8 % of intake's CPU per report (issue 7's profile).
    _log.debug("submission.accepted", submission_id=message.message_id, kind=kind,
               channel=channel, sealed_by=sealed_by)


@functools.cache
def _accepted_counter(kind: str, channel: str) -> Any:
    # The labelled child, looked up once: labels() takes a lock and builds tuples.
    return ACCEPTED.labels(kind, channel)


def _new_id() -> str:
    return secrets.token_urlsafe(18)


def _accepted(submission: Submission, receipt: str) -> web.Response:
    # Written out, not json.dumps'd (≈ 2 µs of a report's CPU, issue 7): both values are
    # ASCII with nothing to escape, an id of token_urlsafe and a receipt of Crockford
    # symbols and hyphens.
    body = f'{{"submission_id":"{submission.id}","receipt":"{receipt}"}}'.encode()
    return web.Response(body=body, status=202, content_type="application/json",
                        charset="utf-8", headers={"Cache-Control": "no-store"})


async def get_key(request: web.Request) -> web.Response:
    try:
        kid, public = await request.app[KEYS].active()
    except UnknownKey:
        raise ApiError(503, "no_key", "the organisation key is not configured yet") from None
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return web.json_response({"kid": kid, "suite": SUITE_NAME, "public_key": b64e(raw)},
                             headers={"Cache-Control": "public, max-age=60"})


async def get_pow(request: web.Request) -> web.Response:
    problem = request.app[POW].issue(utcnow())
    return web.json_response({"challenge": problem.challenge, "difficulty": problem.difficulty,
                              "expires_at": format_time(problem.expires_at)})


async def post_report(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    doc = await read_json(request, deps.settings.max_body_bytes)
    _only(doc, {"kid", "enc", "ciphertext", "category", "unit", "locale", "pow"})
    kid = _string(doc, "kid", max_len=64)
    assert kid is not None
    try:
        sealed = Sealed.from_wire({"kid": kid, "enc": doc.get("enc"),
                                   "ciphertext": doc.get("ciphertext")}, field="envelope")
    except ContractError as exc:
        REFUSED.labels("report", "envelope").inc()
        raise ApiError(400, "invalid_envelope", str(exc)) from None
    if sealed.ciphertext_size < 17:
        raise ApiError(400, "invalid_envelope", "ciphertext is too short to be sealed")
    category = _category(doc, REPORT_CATEGORIES)
    unit = _unit(request.app, doc)
    locale = _string(doc, "locale", required=False, max_len=35, pattern=_LOCALE)
    if not await request.app[KEYS].accepts(kid):
        REFUSED.labels("report", "unknown_kid").inc()
        raise ApiError(422, "unknown_kid", "kid names no key of this organisation; "
                       "fetch /api/v1/intake/key again")
    await _check_pow(request, doc, "report")
    receipt, canonical = new_receipt()
    now = utcnow()
    submission = Submission(
        id=_new_id(), occurred_at=now, correlation_id=_new_id(), kind="report", channel="web",
        sealed=sealed, sealed_by="client", category=category, unit=unit, locale=locale,
        receipt_hash=deps.receipts.receipt_hash(canonical),
        reply_key=receipt_reply_public_key(canonical))
    message, answer = _message(submission), _accepted(submission, receipt)
    # From here on only the message body is needed: without the parsed request, the
    # envelope and the submission, a large report is held once (plus the queue's own
    # copies) while the queue commits it, not three more times.
    del doc, sealed, submission
    await _publish_message(request, message, kind="report", channel="web", sealed_by="client")
    return answer


async def post_complaint(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    doc = await read_json(request, deps.settings.max_body_bytes)
    _only(doc, {"name", "email", "phone", "customer_ref", "unit", "category", "subject",
                "description", "locale", "pow"})
    payload = {
        "name": _string(doc, "name", max_len=200),
        "email": _string(doc, "email", max_len=320, pattern=_EMAIL),
        "phone": _string(doc, "phone", required=False, max_len=40),
        "customer_ref": _string(doc, "customer_ref", required=False, max_len=100),
        "subject": _string(doc, "subject", max_len=300),
        "description": _string(doc, "description", max_len=deps.settings.max_body_bytes),
    }
    category = _category(doc, COMPLAINT_CATEGORIES)
    unit = _unit(request.app, doc)
    locale = _string(doc, "locale", required=False, max_len=35, pattern=_LOCALE)
    await _check_pow(request, doc, "complaint")
    try:
        kid, public = await request.app[KEYS].active()
    except UnknownKey:
        raise ApiError(503, "no_key", "the organisation key is not configured yet") from None
    plaintext = json.dumps({k: v for k, v in payload.items() if v is not None},
                           ensure_ascii=False).encode()
    sealed = seal(plaintext, public, kid=kid, purpose="complaint")
    del plaintext, payload
    receipt, canonical = new_receipt()
    submission = Submission(
        id=_new_id(), occurred_at=utcnow(), correlation_id=_new_id(), kind="complaint",
        channel="web", sealed=sealed, sealed_by="intake", category=category, unit=unit,
        locale=locale, receipt_hash=deps.receipts.receipt_hash(canonical),
        reply_key=receipt_reply_public_key(canonical))
    await _publish(request, submission)
    return _accepted(submission, receipt)


_UNAUTHORISED = "receipt not recognised"


async def followup_login(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        doc: dict[str, Any] = await read_json(request, 16_384)
    except ApiError as exc:
        if exc.status == 413:
            raise
        doc = {}  # a malformed login is just another wrong receipt
    except ContractError:
        doc = {}
    raw = doc.get("receipt")
    canonical = normalise_receipt(raw) if isinstance(raw, str) else None
    # The same work whatever is wrong (format, unknown, not yet routed): hash and look up.
    receipt_hash = deps.receipts.receipt_hash(canonical or "0" * 20)
    record = await deps.store.receipts.get(receipt_hash)
    if canonical is None or record is None or set(doc) != {"receipt"}:
        raise ApiError(401, "unauthorized", _UNAUTHORISED)
    ttl = deps.settings.followup_token_ttl_seconds
    token = request.app[TOKENS].issue({"rh": receipt_hash, "r": canonical}, ttl)
    return web.json_response({"token": token, "expires_in": ttl},
                             headers={"Cache-Control": "no-store"})


def _claims(request: web.Request) -> dict[str, Any]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "a follow-up token is required")
    try:
        return request.app[TOKENS].verify(header.removeprefix("Bearer ").strip())
    except ContractError:
        raise ApiError(401, "unauthorized", "the follow-up token is invalid or expired") from None


async def reporter_view(store: Store, claims: dict[str, Any]
                        ) -> tuple[Case, list[tuple[CaseMessage, str]]] | None:
    """The case of a follow-up session and the messages the receipt opens, or None.

    Shared by the JSON API and the follow-up page: both read replies sealed to the key
    only the receipt derives.
    """
    record = await store.receipts.get(claims["rh"])
    case = None if record is None else await store.cases.get(record.case_id)
    if case is None:
        return None
    reply_key = receipt_reply_private_key(claims["r"])
    messages = []
    for message in await store.cases.messages(case.id):
        if message.sealed_for_reporter is None:
            continue
        try:
            body = open_sealed(message.sealed_for_reporter, reply_key, purpose="message")
        except SealError:
            _log.error("followup.message_unreadable", case_id=case.id, message_id=message.id)
            continue
        messages.append((message, body.decode("utf-8", errors="replace")))
    return case, messages


async def get_followup(request: web.Request) -> web.Response:
    view = await reporter_view(request.app[DEPS].store, _claims(request))
    if view is None:
        raise ApiError(401, "unauthorized", _UNAUTHORISED)
    case, messages = view
    return web.json_response({
        "reference": case.reference, "status": followup_status(case),
        "messages": [{"from": m.author, "at": format_time(m.at), "body": body}
                     for m, body in messages]}, headers={"Cache-Control": "no-store"})


async def post_followup_message(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    claims = _claims(request)
    doc = await read_json(request, deps.settings.max_body_bytes)
    _only(doc, {"body"})
    body = _string(doc, "body", max_len=deps.settings.max_body_bytes)
    assert body is not None
    record = await deps.store.receipts.get(claims["rh"])
    if record is None:
        raise ApiError(401, "unauthorized", _UNAUTHORISED)
    kid, public = await request.app[KEYS].active()
    reporter_public = X25519PublicKey.from_public_bytes(receipt_reply_public_key(claims["r"]))
    plaintext = body.encode()
    submission = Submission(
        id=_new_id(), occurred_at=utcnow(), correlation_id=record.submission_id[:64],
        kind="followup", channel="web", sealed=seal(plaintext, public, kid=kid, purpose="message"),
        sealed_by="intake", receipt_hash=claims["rh"],
        reporter_copy=seal(plaintext, reporter_public, kid="receipt", purpose="message"))
    del plaintext, body
    await _publish(request, submission)
    return web.json_response({"submission_id": submission.id}, status=202)


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def create_app(deps: IntakeDeps) -> web.Application:
    """The intake web application (public API) for already-opened store and bus."""
    app = web.Application(
        middlewares=[error_middleware("intake"), security_headers_middleware],
        client_max_size=deps.settings.max_body_bytes + 4096)
    app[DEPS] = deps
    app[KEYS] = PublicKeyCache(deps.store)
    app[POW] = PowIssuer(deps.receipts.subkey("pow"), deps.settings.pow_difficulty,
                         deps.settings.pow_ttl_seconds)
    app[TOKENS] = TokenSigner(deps.receipts.subkey("followup-token"), audience="followup")

    async def ready() -> dict[str, bool]:
        return {"store": await deps.store.ping(), "bus": await deps.bus.ping()}

    app.add_routes([
        web.get("/api/v1/intake/key", get_key),
        web.get("/api/v1/intake/pow", get_pow),
        web.post("/api/v1/reports", post_report),
        web.post("/api/v1/complaints", post_complaint),
        web.post("/api/v1/followup/login", followup_login),
        web.get("/api/v1/followup", get_followup),
        web.post("/api/v1/followup/messages", post_followup_message),
        web.get("/api/v1/openapi.json", openapi),
        *health_routes(ready),
    ])
    from intake.pages import add_page_routes  # the pages build on this module's handlers

    add_page_routes(app)
    return app

