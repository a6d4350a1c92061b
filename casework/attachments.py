"""Attachments of a case: opened on demand, each download an audit event with who and why.

An attachment is downloadable only when the case's own sealed content names its blob id,
so a visible case cannot be used to fetch someone else's file by guessing ids.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from casework.app import (
    DEPS,
    _account,
    _keyring,
    _open,
    _visible_case,
)
from hotline.blobs import BlobStore, FileBlobStore
from hotline.crypto import open_sealed
from hotline.errors import ContractError, SealError, UnknownKey
from hotline.logging import get_logger
from hotline.services import append_audit, audit_text
from hotline.web import ApiError

__all__ = ["add_attachment_routes", "blob_store_for"]

_log = get_logger("hotline.casework.attachments")
BLOBS = web.AppKey("blobs", BlobStore)
_READERS = frozenset({"officer", "supervisor", "clerk", "admin"})
# Types a browser may render from our origin are served as downloads of a neutral type.
_TYPE = re.compile(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")


def blob_store_for(app: web.Application) -> BlobStore:
    settings = app[DEPS].settings
    if settings.store_kind == "mongodb":
        from hotline.adapters.mongo_blobs import MongoBlobStore

        return MongoBlobStore(app[DEPS].store.collection)  # type: ignore[attr-defined]
    return FileBlobStore(settings.data_dir / "blobs")


def _named(content: dict[str, Any], blob: str) -> dict[str, Any] | None:
    for entry in content.get("attachments") or ():
        if isinstance(entry, dict) and entry.get("blob") == blob:
            return entry
    return None


async def download(request: web.Request) -> web.StreamResponse:
    account = _account(request)
    if account.role not in _READERS:
        raise ApiError(403, "forbidden", "this role does not open attachments")
    case = await _visible_case(request)
    blob = request.match_info["blob"]
    entry = _named(await _open(request, case), blob)
    if entry is None:
        raise ApiError(404, "not_found", "no such attachment on this case")
    try:
        sealed = await request.app[BLOBS].get(blob)
    except ContractError:
        raise ApiError(404, "not_found", "no such attachment on this case") from None
    if sealed is None:
        _log.error("attachment.missing", case_id=case.id, blob=blob)
        raise ApiError(410, "gone", "the attachment's sealed file is missing")
    try:
        ring = await _keyring(request.app, sealed.kid)
        data = open_sealed(sealed, ring.private_key(sealed.kid), purpose="attachment")
    except (UnknownKey, SealError):
        _log.error("attachment.unreadable", case_id=case.id, blob=blob)
        raise ApiError(500, "content_unreadable", "the attachment does not open") from None
    reason = request.query.get("reason", "")[:200] or None
    store = request.app[DEPS].store
    await append_audit(store, case.id, actor=account.username, type_="attachment.downloaded",
                       data={"blob": blob, **({"reason": await audit_text(store, case.id, reason)}
                                              if reason else {})})
    name = str(entry.get("name") or "attachment")[:200]
    declared = str(entry.get("type") or "")
    response = web.Response(body=data, content_type=declared if _TYPE.match(declared) and
                            not declared.startswith(("text/html", "image/svg", "application/xhtml"))
                            else "application/octet-stream")
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def add_attachment_routes(app: web.Application) -> None:
    app[BLOBS] = blob_store_for(app)
    app.router.add_get("/api/v1/cases/{case_id}/attachments/{blob}", download)
