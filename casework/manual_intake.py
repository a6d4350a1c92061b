"""Manual intake: a clerk registers a report or complaint received by post box, phone or
visit. It is sealed here at once and published as a ``Submission`` with that channel, so
it flows through the router (triage, workflow, clocks) like any other."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import date
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from casework.app import ACCOUNT, DEPS, _keyring, _scope, request_body
from casework.attachments import BLOBS
from hotline.clock import utcnow
from hotline.contract import COMPLAINT_CATEGORIES, REPORT_CATEGORIES, Submission
from hotline.crypto import (
    generate_receipt,
    normalise_receipt,
    receipt_reply_public_key,
    seal,
)
from hotline.domain.case import Account
from hotline.errors import BusUnavailable, HotlineError
from hotline.ports import Message
from hotline.services import append_system_audit
from hotline.web import ApiError

__all__ = ["add_manual_intake_routes"]

_CHANNELS = ("post", "phone", "visit")
_ORAL = ("phone", "visit")
_FIELDS = {"kind", "channel", "received_on", "category", "unit", "description", "identity",
           "transcript_confirmed", "attachments"}


def _payload(doc: dict[str, Any]) -> dict[str, Any]:
    """The sealed content, checked field by field (422 naming the first bad one)."""
    if set(doc) - _FIELDS:
        raise ApiError(422, "unprocessable",
                       f"unknown field(s): {', '.join(sorted(set(doc) - _FIELDS))}")
    description = doc.get("description")
    if not isinstance(description, str) or not description.strip() or len(description) > 20000:
        raise ApiError(422, "unprocessable", "description (the report's text) is required")
    received = doc.get("received_on")
    try:
        received_on = date.fromisoformat(received) if isinstance(received, str) else None
    except ValueError:
        received_on = None
    if received_on is None or received_on > utcnow().date():
        raise ApiError(422, "unprocessable", "received_on must be a date, not in the future")
    payload: dict[str, Any] = {"description": description.strip(),
                               "received_on": received_on.isoformat()}
    identity = doc.get("identity")
    if identity is not None:
        if not isinstance(identity, dict) or not identity or not all(
                isinstance(k, str) and isinstance(v, str) and len(v) <= 200
                for k, v in identity.items()) or set(identity) - {"name", "phone", "email",
                                                                  "address"}:
            raise ApiError(422, "unprocessable",
                           "identity: name, phone, email and/or address (texts)")
        payload["identity"] = identity
    attachments = doc.get("attachments", [])
    if not isinstance(attachments, list) or len(attachments) > 5 or not all(
            isinstance(a, dict) and set(a) == {"name", "type", "data"} and all(
                isinstance(v, str) for v in a.values()) for a in attachments):
        raise ApiError(422, "unprocessable",
                       "attachments: up to 5 of {name, type, data (base64)}")
    if attachments:
        payload["attachments"] = attachments  # e.g. the scanned letter, sealed with the rest
    return payload


async def register(request: web.Request) -> web.Response:
    account: Account = request[ACCOUNT]
    if account.role != "clerk":
        raise ApiError(403, "forbidden", "manual intake is the intake clerks' task")
    deps = request.app[DEPS]
    doc = await request_body(request, deps.settings.max_body_bytes)
    kind, channel = doc.get("kind"), doc.get("channel")
    if kind not in ("report", "complaint"):
        raise ApiError(422, "unprocessable", "kind must be report or complaint")
    if channel not in _CHANNELS:
        raise ApiError(422, "unprocessable", "channel must be post, phone or visit")
    categories = REPORT_CATEGORIES if kind == "report" else COMPLAINT_CATEGORIES
    category = doc.get("category", "other")
    if category not in categories:
        raise ApiError(422, "unprocessable", f"category must be one of {', '.join(categories)}")
    unit = doc.get("unit", account.unit)
    if not isinstance(unit, str) or unit not in _scope(request):
        raise ApiError(422, "unprocessable", "unit must be your unit or one below it")
    if channel in _ORAL and doc.get("transcript_confirmed") is not True:
        raise ApiError(422, "unprocessable",
                       "an oral report needs transcript_confirmed: true (read back and "
                       "confirmed by the reporter)")
    payload = _payload(doc)
    ring = await _keyring(request.app, "")
    kid, public = ring.active_public_key()
    if "attachments" in payload:
        payload["attachments"] = await _seal_attachments(request, payload["attachments"],
                                                         kid, public)
    if channel in _ORAL:
        payload["transcript_confirmed_by_reporter"] = True
    payload["registered_by"] = account.username
    sealed = seal(json.dumps(payload, ensure_ascii=False).encode(), public, kid=kid,
                  purpose=kind)
    del payload, doc
    # A receipt as the web gives one (intake/app.py): shown once, stored only as intake's
    # keyed hash, and the reply key derived from it, so the reporter can follow up online.
    receipt = generate_receipt() if deps.receipts is not None else None
    canonical = None if receipt is None else normalise_receipt(receipt)
    submission = Submission(
        id="man_" + secrets.token_urlsafe(18), occurred_at=utcnow(),
        correlation_id="man_" + secrets.token_urlsafe(12), kind=kind, channel=channel,
        sealed=sealed, sealed_by="intake", category=category, unit=unit,
        receipt_hash=None if canonical is None or deps.receipts is None
        else deps.receipts.receipt_hash(canonical),
        reply_key=None if canonical is None else receipt_reply_public_key(canonical))
    try:
        await deps.bus.publish(Message(submission.routing_key, submission.id,
                                       submission.to_bytes(),
                                       correlation_id=submission.correlation_id))
    except BusUnavailable:
        raise ApiError(503, "unavailable", "not registered: the queue is unavailable; "
                       "retry") from None
    await append_system_audit(deps.store, actor=account.username, type_="intake.registered",
                              data={"submission_id": submission.id, "channel": channel,
                                    "kind": kind, "unit": unit})
    return web.json_response({"submission_id": submission.id, "channel": channel,
                              "status": "queued", "receipt": receipt}, status=202,
                             headers={"Cache-Control": "no-store"})


async def _seal_attachments(request: web.Request, attachments: list[dict[str, str]], kid: str,
                            public: X25519PublicKey) -> list[dict[str, Any]]:
    """Each file sealed on its own into the blob store; the content keeps a reference, so
    officers download it through the audited attachments endpoint (casework/attachments.py)."""
    refs = []
    for attachment in attachments:
        try:
            data = base64.b64decode(attachment["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "unprocessable", "attachments: data must be base64") from None
        name = attachment["name"].strip()[:200] or "attachment"
        try:
            blob = await request.app[BLOBS].put(seal(data, public, kid=kid,
                                                     purpose="attachment"))
        except (HotlineError, OSError):
            raise ApiError(503, "unavailable", "not registered: the file store is "
                           "unavailable; retry") from None
        refs.append({"blob": blob, "name": name, "type": attachment["type"][:100],
                     "size": len(data)})
        del data
    return refs


def add_manual_intake_routes(app: web.Application) -> None:
    app.add_routes([web.post("/api/v1/intake/manual", register)])
