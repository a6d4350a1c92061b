"""intake's public pages: landing, report and complaint forms, receipt, follow-up.

Server-rendered (Jinja2, autoescaped) and complete without JavaScript: a form posted in
clear is sealed here, in memory, the moment it arrives, and becomes the same
``Submission`` the JSON API publishes. With JavaScript the browser seals the report and
its attachments itself (``static/hpke.js``, CONTRACT §6) and posts only the envelope.

No cookies: a signed, short-lived form token in a hidden field guards every post
(CSRF); filing tokens are single-use (burnt in the store like proof-of-work challenges)
and, for the no-JavaScript path, must be a few seconds old — rate limiting that needs no
IP address. The follow-up "session" is an encrypted token in a hidden field, never in a
URL. Nothing a person typed is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
import zhconv  # type: ignore[import-untyped]  # ships without type hints
from aiohttp import BodyPartReader, web
from babel.messages.pofile import read_po
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from hotline.blobs import BlobStore, FileBlobStore, strip_metadata
from hotline.clock import utcnow
from hotline.contract import COMPLAINT_CATEGORIES, REPORT_CATEGORIES, Submission
from hotline.crypto import (
    Sealed,
    b64d,
    b64e,
    new_receipt,
    normalise_receipt,
    receipt_reply_public_key,
    seal,
)
from hotline.domain.case import followup_status, page_language
from hotline.errors import ContractError, UnknownKey
from hotline.logging import get_logger
from hotline.surveys import COMMENT_MAX_CHARS, SURVEY_PURPOSE, valid_token
from hotline.web import ApiError
from intake.app import DEPS, KEYS, TOKENS, _check_pow, _new_id, _publish, reporter_view

__all__ = [
    "BLOBS",
    "FORMS",
    "LANGUAGES",
    "LIMITS",
    "FormTokens",
    "Limits",
    "add_page_routes",
    "negotiate_language",
]

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
_CATALOG_DIRS = {"zh-Hans": "zh_Hans", "zh-Hant": "zh_Hant"}
_LANGUAGE_NAMES = {"en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文"}

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), "
                      "magnetometer=(), microphone=(), payment=(), usb=(), "
                      "browsing-topics=()")


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; ``_`` translates it at render."""
    return message


REPORT_CATEGORY_LABELS = {
    "corruption": N_("Corruption or bribery"),
    "fraud": N_("Fraud or embezzlement"),
    "safety": N_("Safety hazard"),
    "wage_arrears": N_("Unpaid wages"),
    "labour_rights": N_("Labour rights"),
    "environment": N_("Environmental harm"),
    "data_security": N_("Data security or privacy"),
    "conduct": N_("Misconduct at work"),
    "other": N_("Something else"),
}
COMPLAINT_CATEGORY_LABELS = {
    "service_quality": N_("Quality of service"),
    "construction_quality": N_("Quality of construction work"),
    "billing": N_("Billing"),
    "staff_conduct": N_("Behaviour of our staff"),
    "delay": N_("Delay"),
    "other": N_("Something else"),
}
STATUS_LABELS = {
    "received": N_("Received — waiting to be assigned"),
    "in_progress": N_("Being looked into"),
    "answered": N_("Answered"),
    "closed": N_("Closed"),
}
assert set(REPORT_CATEGORY_LABELS) == set(REPORT_CATEGORIES)
assert set(COMPLAINT_CATEGORY_LABELS) == set(COMPLAINT_CATEGORIES)


@dataclass(frozen=True)
class Limits:
    """What the pages promise and the server enforces."""

    max_files: int = 5
    max_file_bytes: int = 10 * 1024 * 1024
    max_total_file_bytes: int = 25 * 1024 * 1024
    max_text_chars: int = 20_000
    form_token_ttl_seconds: int = 3600
    form_min_age_seconds: float = 2.0  # the no-JavaScript path's stand-in for proof of work

    @property
    def max_file_mb(self) -> int:
        return self.max_file_bytes // (1024 * 1024)

    @property
    def max_total_mb(self) -> int:
        return self.max_total_file_bytes // (1024 * 1024)


# --- language ----------------------------------------------------------------------------

class Catalogs:
    """gettext catalogs (``locales/<lang>/LC_MESSAGES/intake.po``), read once with Babel."""

    def __init__(self) -> None:
        self._messages: dict[str, dict[str, str]] = {"en": {}}
        root = resources.files("intake") / "locales"
        for language, directory in _CATALOG_DIRS.items():
            with (root / directory / "LC_MESSAGES" / "intake.po").open("rb") as fh:
                catalog = read_po(fh)
            self._messages[language] = {
                str(m.id): str(m.string) for m in catalog
                if m.id and isinstance(m.string, str) and m.string and not m.fuzzy}

    def gettext(self, language: str) -> Callable[..., str]:
        table = self._messages.get(language, {})

        def translate(message: str, **values: Any) -> str:
            text = table.get(message, message)
            return text % values if values else text

        return translate

    def messages(self, language: str) -> dict[str, str]:
        return dict(self._messages.get(language, {}))


def negotiate_language(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` if it names a language we have, else the best of ``Accept-Language``."""
    if query in LANGUAGES:
        return query
    best, best_q = "en", -1.0
    for position, item in enumerate((accept_language or "")[:512].split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        match = re.search(r"q=([0-9.]{1,5})", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                continue
        language = page_language(tag)
        # Earlier entries win ties, as the header's order is the user's order.
        if language is not None and q > 0 and q - position * 1e-6 > best_q:
            best, best_q = language, q - position * 1e-6
    return best


# --- form tokens (CSRF, single use, minimum age) -----------------------------------------

_FORMS = {"report": 1, "complaint": 2, "followup": 3, "message": 4, "survey": 5}


class FormTokenError(Exception):
    """The hidden form token is missing, forged, expired, too fresh or for another form."""


class FormTokens:
    """``f1.<b64 issued|expires|form|random>.<mac>``: stateless, signed, short-lived."""

    def __init__(self, key: bytes, limits: Limits) -> None:
        self._key = key
        self.limits = limits

    def _mac(self, body: str) -> str:
        return b64e(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:16])

    def issue(self, form: str, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        raw = struct.pack(">ddB", issued, issued + self.limits.form_token_ttl_seconds,
                          _FORMS[form]) + secrets.token_bytes(12)
        body = "f1." + b64e(raw)
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str | None, form: str, *, min_age: float = 0.0,
               now: float | None = None) -> tuple[str, datetime]:
        """The token's id and expiry (to burn it), or :class:`FormTokenError`."""
        if not token or len(token) > 200:
            raise FormTokenError("missing")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "f1":
            raise FormTokenError("malformed")
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body), parts[2]):
            raise FormTokenError("forged")
        try:
            raw = b64d(parts[1], field="csrf")
            issued, expires, kind = struct.unpack(">ddB", raw[:17])
        except (ContractError, struct.error):
            raise FormTokenError("malformed") from None
        current = time.time() if now is None else now
        if kind != _FORMS[form]:
            raise FormTokenError("other form")
        if current >= expires:
            raise FormTokenError("expired")
        if current - issued < min_age:
            raise FormTokenError("too fresh")
        return "form:" + hashlib.sha256(body.encode()).hexdigest()[:32], datetime.fromtimestamp(
            expires, UTC)


# --- application state -------------------------------------------------------------------

FORMS = web.AppKey("forms", FormTokens)
BLOBS = web.AppKey("blobs", BlobStore)
LIMITS = web.AppKey("limits", Limits)
_ENV = web.AppKey("page_env", jinja2.Environment)
_CATALOGS = web.AppKey("catalogs", Catalogs)
_STATIC = web.AppKey("static", dict[str, tuple[bytes, str]])

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


def _static_files() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in (resources.files("intake") / "static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


class PageError(Exception):
    """Refuse a post with a status and a (translatable) message, re-rendering the page."""

    def __init__(self, status: int, message: str, **values: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.values = values


# --- rendering ---------------------------------------------------------------------------

def _headers(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@dataclass
class Page:
    request: web.Request
    language: str

    @property
    def _(self) -> Callable[..., str]:
        return self.request.app[_CATALOGS].gettext(self.language)

    def units(self, levels: Iterable[str]) -> list[tuple[str, str]]:
        wanted = set(levels)
        out = []
        for unit in self.request.app[DEPS].org:
            if unit.level not in wanted:
                continue
            if self.language == "en" or not unit.name_zh:
                label = unit.name
            elif self.language == "zh-Hant":
                label = str(zhconv.convert(unit.name_zh, "zh-hant"))
            else:
                label = unit.name_zh
            out.append((unit.code, label))
        return out

    def render(self, template: str, status: int = 200, *, values: dict[str, str] | None = None,
               **context: Any) -> web.Response:
        forms = self.request.app[FORMS]
        kept = values or {}
        html = self.request.app[_ENV].get_template(template).render(
            _=self._, lang=self.language, languages=_LANGUAGE_NAMES,
            path=self.request.path, limits=self.request.app[LIMITS],
            token=forms.issue, v=lambda name: kept.get(name, ""), **context)
        response = web.Response(text=html, status=status, content_type="text/html",
                                charset="utf-8")
        _headers(response)
        return response


def _page(request: web.Request, form: FormData | None = None) -> Page:
    chosen = form.first("lang") if form is not None else request.query.get("lang")
    return Page(request, negotiate_language(chosen, request.headers.get("Accept-Language")))


# --- reading posted forms ----------------------------------------------------------------

@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class FormData:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def text(self, name: str, *, max_len: int = 300) -> str | None:
        value = (self.first(name) or "").strip()
        if not value:
            return None
        if len(value) > max_len:
            raise PageError(400, N_("A field is longer than allowed."))
        return value


_BIG_FIELDS = {"sealed_ciphertext", "sealed_attachment"}


async def read_form(request: web.Request, limits: Limits, max_body: int) -> FormData:
    """The posted form, enforcing field, file count, file size and total limits."""
    total_limit = limits.max_total_file_bytes * 4 // 3 + max_body + 256 * 1024
    if request.content_length is not None and request.content_length > total_limit:
        raise PageError(413, N_("What you sent is larger than allowed."))
    form = FormData()
    if request.content_type == "application/x-www-form-urlencoded":
        if request.content_length is None or request.content_length > 256 * 1024:
            raise PageError(413, N_("What you sent is larger than allowed."))
        for name, value in (await request.post()).items():
            if isinstance(value, str):
                form.fields.setdefault(name, []).append(value)
        return form
    if request.content_type != "multipart/form-data":
        raise PageError(400, N_("This form could not be read. Please try again."))
    reader = await request.multipart()
    file_total = 0
    received = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise PageError(400, N_("This form could not be read. Please try again."))
        name = part.name or ""
        is_file = part.filename is not None
        if is_file:
            cap = limits.max_file_bytes
        elif name in _BIG_FIELDS:
            cap = max(max_body, limits.max_file_bytes) * 4 // 3 + 1024
        else:
            cap = limits.max_text_chars * 4 + 1024
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await part.read_chunk(65536)
            if not chunk:
                break
            size += len(chunk)
            received += len(chunk)
            if size > cap or received > total_limit:
                if is_file:
                    raise PageError(413, N_("Each file may be at most %(size)s MB."),
                                    size=limits.max_file_mb)
                raise PageError(413, N_("What you sent is larger than allowed."))
            chunks.append(chunk)
        data = b"".join(chunks)
        chunks.clear()  # a large field is held as bytes and text, not also as chunks
        if is_file:
            if not data and not part.filename:
                continue  # an empty file input
            file_total += len(data)
            if len(form.files) >= limits.max_files:
                raise PageError(413, N_("You can attach at most %(count)s files."),
                                count=limits.max_files)
            if file_total > limits.max_total_file_bytes:
                raise PageError(413, N_("All files together may be at most %(size)s MB."),
                                size=limits.max_total_mb)
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            form.files.append(Upload((part.filename or "file")[:200], content_type[:100], data))
        else:
            try:
                form.fields.setdefault(name, []).append(data.decode("utf-8"))
            except UnicodeDecodeError:
                raise PageError(400, N_("This form could not be read. Please try again.")
                                ) from None
    return form


# --- payloads (the same shape CONTRACT §2 and static/hotline.js use) ---------------------

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def report_payload(form: FormData, limits: Limits) -> dict[str, Any]:
    """The report payload (CONTRACT §2) from the clear form; :class:`PageError` if invalid."""
    description = form.text("description", max_len=limits.max_text_chars)
    if description is None:
        raise PageError(422, N_("Please describe what happened."))
    payload: dict[str, Any] = {"description": description}
    for name, max_len in (("title", 300), ("location", 300)):
        if (value := form.text(name, max_len=max_len)) is not None:
            payload[name] = value
    if (evidence := form.text("evidence", max_len=limits.max_text_chars)) is not None:
        payload["evidence"] = evidence
    if (occurred := form.text("occurred_at", max_len=10)) is not None:
        if not _DATE.match(occurred):
            raise PageError(422, N_("Please give the date as YYYY-MM-DD."))
        payload["occurred_at"] = occurred
    subjects = []
    for index in (1, 2, 3):
        subject_name = form.text(f"subject_name_{index}", max_len=200)
        if subject_name is None:
            continue
        subject: dict[str, str] = {"name": subject_name}
        for key in ("unit", "position"):
            if (value := form.text(f"subject_{key}_{index}", max_len=200)) is not None:
                subject[key] = value
        subjects.append(subject)
    if subjects:
        payload["subjects"] = subjects
    if (amount := form.text("amount_value", max_len=20)) is not None:
        try:
            number = float(amount.replace(",", ""))
        except ValueError:
            raise PageError(422, N_("The amount must be a number.")) from None
        if not 0 <= number < 1e15:
            raise PageError(422, N_("The amount must be a number."))
        currency = (form.text("amount_currency", max_len=3) or "CNY").upper()
        if not _CURRENCY.match(currency):
            raise PageError(422, N_("The amount must be a number."))
        payload["amount"] = {"value": int(number) if number.is_integer() else number,
                             "currency": currency}
    if form.first("identity_mode") == "named":
        identity_name = form.text("identity_name", max_len=200)
        if identity_name is None:
            raise PageError(422, N_("Please give your name, or choose to stay anonymous."))
        identity: dict[str, str] = {"name": identity_name}
        for key, max_len in (("employee_id", 50), ("phone", 40), ("email", 320)):
            if (value := form.text(f"identity_{key}", max_len=max_len)) is not None:
                identity[key] = value
        if "email" in identity and not _EMAIL.match(identity["email"]):
            raise PageError(422, N_("Please check the e-mail address."))
        payload["identity"] = identity
    return payload


def complaint_payload(form: FormData, limits: Limits) -> dict[str, Any]:
    name = form.text("name", max_len=200)
    email = form.text("email", max_len=320)
    subject = form.text("subject", max_len=300)
    description = form.text("description", max_len=limits.max_text_chars)
    if name is None or email is None or subject is None or description is None:
        raise PageError(422, N_("Please fill in every field marked as required."))
    if not _EMAIL.match(email):
        raise PageError(422, N_("Please check the e-mail address."))
    payload = {"name": name, "email": email, "subject": subject, "description": description}
    for key, max_len in (("phone", 40), ("customer_ref", 100)):
        if (value := form.text(key, max_len=max_len)) is not None:
            payload[key] = value
    return payload


def _choice(form: FormData, name: str, choices: Iterable[str], *, required: bool) -> str | None:
    value = form.first(name) or None
    if value is None:
        if required:
            raise PageError(422, N_("Please choose what the report is about."))
        return None
    if value not in set(choices):
        raise PageError(422, N_("Please choose from the list."))
    return value


# --- handlers ----------------------------------------------------------------------------

async def landing(request: web.Request) -> web.Response:
    return _page(request).render("landing.html")


def _report_context(page: Page) -> dict[str, Any]:
    return {"categories": REPORT_CATEGORY_LABELS,
            "units": page.units(("hq", "province", "subsidiary", "overseas"))}


def _complaint_context(page: Page) -> dict[str, Any]:
    return {"categories": COMPLAINT_CATEGORY_LABELS,
            "units": page.units(("province", "overseas"))}


async def report_form(request: web.Request) -> web.Response:
    page = _page(request)
    return page.render("report.html", **_report_context(page))


async def complaint_form(request: web.Request) -> web.Response:
    page = _page(request)
    return page.render("complaint.html", **_complaint_context(page))


async def followup_form(request: web.Request) -> web.Response:
    return _page(request).render("followup_login.html")


def _check_origin(request: web.Request) -> None:
    # Browsers send "null" under Referrer-Policy: no-referrer; a foreign origin is refused.
    origin = request.headers.get("Origin")
    if origin not in (None, "null") and origin != f"{request.scheme}://{request.host}":
        raise FormTokenError("cross-origin")


async def _form_token(request: web.Request, form: FormData, kind: str, *, burn: bool,
                      min_age: float = 0.0) -> None:
    _check_origin(request)
    token_id, expires_at = request.app[FORMS].verify(form.first("csrf"), kind, min_age=min_age)
    if burn and not await request.app[DEPS].store.pow.burn(token_id, expires_at):
        raise FormTokenError("replayed")


def _expired(page: Page) -> web.Response:
    return page.render("message.html", status=403, title=page._("This form has expired"),
                       text=page._("For your safety each form can be sent once and only for "
                                   "an hour. If you already saw a receipt, your submission "
                                   "arrived. Otherwise please open the form again."))


def _unavailable(page: Page) -> web.Response:
    return page.render("message.html", status=503, title=page._("Not received"),
                       text=page._("Your submission could not be stored safely and was not "
                                   "received. Nothing was kept. Please try again in a few "
                                   "minutes."))


async def _put(request: web.Request, sealed: Sealed) -> str:
    try:
        return await request.app[BLOBS].put(sealed)
    except Exception:  # a blob store that cannot take the file: nothing is queued, say so
        get_logger("hotline.intake.pages").error("attachment.not_stored")
        raise PageError(503, N_("Files cannot be received at the moment. Please send your "
                                "report without files.")) from None


async def _seal_uploads(request: web.Request, uploads: list[Upload], public: X25519PublicKey,
                        kid: str, clean: bool) -> list[dict[str, Any]]:
    refs = []
    for upload in uploads:
        data, cleaned = strip_metadata(upload.data, upload.content_type) if clean else (
            upload.data, False)
        blob = await _put(request, seal(data, public, kid=kid, purpose="attachment"))
        del data
        refs.append({"blob": blob, "name": upload.filename, "type": upload.content_type,
                     "size": len(upload.data), "metadata_removed": cleaned})
    return refs


async def _store_sealed_attachments(request: web.Request, form: FormData, kid: str,
                                    limits: Limits) -> None:
    values = form.fields.get("sealed_attachment", [])
    if len(values) > limits.max_files:
        raise PageError(413, N_("You can attach at most %(count)s files."), count=limits.max_files)
    total = 0
    for value in values:
        try:
            raw = b64d(value, field="sealed_attachment")
        except ContractError:
            raise PageError(400, N_("This form could not be read. Please try again.")) from None
        if len(raw) < 32 + 16:
            raise PageError(400, N_("This form could not be read. Please try again."))
        size = len(raw) - 32 - 16
        total += size
        if size > limits.max_file_bytes:
            raise PageError(413, N_("Each file may be at most %(size)s MB."),
                            size=limits.max_file_mb)
        if total > limits.max_total_file_bytes:
            raise PageError(413, N_("All files together may be at most %(size)s MB."),
                            size=limits.max_total_mb)
        sealed = Sealed(kid, raw[:32], raw[32:])
        del raw  # the sealed copy is all the blob store needs
        await _put(request, sealed)


async def _file(request: web.Request, kind: str) -> web.Response:
    """POST /report and /complaint: clear (sealed here) or sealed by the browser."""
    deps = request.app[DEPS]
    limits = request.app[LIMITS]
    page = _page(request)
    context = _report_context(page) if kind == "report" else _complaint_context(page)
    template = f"{kind}.html"
    categories = REPORT_CATEGORIES if kind == "report" else COMPLAINT_CATEGORIES
    form = FormData()
    try:
        form = await read_form(request, limits, deps.settings.max_body_bytes)
        page = _page(request, form)
        context = _report_context(page) if kind == "report" else _complaint_context(page)
        sealed_by_browser = form.first("sealed_kid") is not None
        category = _choice(form, "category", categories, required=True)
        unit = _choice(form, "unit", [code for code, _ in context["units"]], required=False)
        try:
            await _form_token(request, form, kind, burn=True,
                              min_age=0.0 if sealed_by_browser else limits.form_min_age_seconds)
        except FormTokenError:
            return _expired(page)
        if sealed_by_browser:
            sealed = await _browser_sealed(request, form, kind, limits)
        else:
            kid, public = await request.app[KEYS].active()
            if kind == "report":
                payload = report_payload(form, limits)
                attachments = await _seal_uploads(
                    request, form.files, public, kid, clean=form.first("clean_metadata") == "1")
                if attachments:
                    payload["attachments"] = attachments
            else:
                payload = complaint_payload(form, limits)
            plaintext = json.dumps(payload, ensure_ascii=False).encode()
            sealed = seal(plaintext, public, kid=kid, purpose=kind)
            del plaintext, payload
        receipt, canonical = new_receipt()
        submission = Submission(
            id=_new_id(), occurred_at=utcnow(), correlation_id=_new_id(), kind=kind,  # type: ignore[arg-type]
            channel="web", sealed=sealed,
            sealed_by="client" if sealed_by_browser else "intake", category=category, unit=unit,
            locale=page.language, receipt_hash=deps.receipts.receipt_hash(canonical),
            reply_key=receipt_reply_public_key(canonical))
        await _publish(request, submission)
    except PageError as exc:
        return page.render(template, status=exc.status, values=_kept(form),
                           error=page._(exc.message, **exc.values), **context)
    except ApiError as exc:
        if exc.status == 503:
            return _unavailable(page)
        return page.render(template, status=exc.status, values=_kept(form),
                           error=page._("The security check of your browser failed. Please "
                                        "send the form again."), **context)
    except UnknownKey:
        return _unavailable(page)
    return page.render("receipt.html", receipt=receipt, kind=kind, switch=False)


def _kept(form: FormData) -> dict[str, str]:
    """What the person typed, to show again with the error (never secrets or envelopes)."""
    return {name: values[0] for name, values in form.fields.items()
            if values and name not in ("csrf", "session", "receipt")
            and not name.startswith(("sealed_", "pow_"))}


async def _browser_sealed(request: web.Request, form: FormData, kind: str,
                          limits: Limits) -> Sealed:
    deps = request.app[DEPS]
    try:
        sealed = Sealed.from_wire({"kid": form.first("sealed_kid"),
                                   "enc": form.first("sealed_enc"),
                                   "ciphertext": form.first("sealed_ciphertext")})
    except ContractError:
        raise PageError(400, N_("This form could not be read. Please try again.")) from None
    if not 17 <= sealed.ciphertext_size <= deps.settings.max_body_bytes:
        raise PageError(413, N_("What you sent is larger than allowed."))
    if not await request.app[KEYS].accepts(sealed.kid):
        raise PageError(422, N_("The organisation key changed. Please send the form again."))
    pow_doc = {"challenge": form.first("pow_challenge"), "nonce": form.first("pow_nonce")}
    await _check_pow(request, {"pow": pow_doc if pow_doc["challenge"] else None}, kind)
    await _store_sealed_attachments(request, form, sealed.kid, limits)
    return sealed


async def post_report(request: web.Request) -> web.Response:
    return await _file(request, "report")


async def post_complaint(request: web.Request) -> web.Response:
    return await _file(request, "complaint")


# --- follow-up ---------------------------------------------------------------------------

def _unrecognised(page: Page) -> web.Response:
    """One page for every wrong receipt or stale session, whatever the reason."""
    return page.render("followup_login.html", status=401,
                       error=page._("This receipt was not recognised. Please check it and "
                                    "try again."))


async def _claims_for(request: web.Request, form: FormData) -> dict[str, Any] | None:
    """Follow-up claims from a typed receipt or a session token; None if not valid.

    The same work whatever is wrong (format, unknown, not yet routed): hash and look up.
    """
    deps = request.app[DEPS]
    session = form.first("session")
    if session is not None:
        try:
            claims = request.app[TOKENS].verify(session)
        except ContractError:
            claims = {"rh": deps.receipts.receipt_hash("0" * 20)}
        record = await deps.store.receipts.get(claims["rh"])
        return claims if record is not None and "r" in claims else None
    raw = form.first("receipt") or ""
    canonical = normalise_receipt(raw)
    receipt_hash = deps.receipts.receipt_hash(canonical or "0" * 20)
    record = await deps.store.receipts.get(receipt_hash)
    if canonical is None or record is None:
        return None
    return {"rh": receipt_hash, "r": canonical}


async def _followup_page(request: web.Request, page: Page, claims: dict[str, Any],
                         notice: str | None = None) -> web.Response:
    deps = request.app[DEPS]
    view = await reporter_view(deps.store, claims)
    if view is None:
        return _unrecognised(page)
    case, opened = view
    messages = [{"from": m.author, "at": m.at.strftime("%Y-%m-%d %H:%M UTC"), "body": body}
                for m, body in opened]
    status = followup_status(case)
    session = request.app[TOKENS].issue({"rh": claims["rh"], "r": claims["r"]},
                                        deps.settings.followup_token_ttl_seconds)
    reply_public = b64e(receipt_reply_public_key(claims["r"]))
    return page.render("followup.html", reference=case.reference, case_status=status,
                       reply_key=reply_public,
                       status_label=page._(STATUS_LABELS[status]), messages=messages,
                       session=session, notice=notice, switch=False)


async def post_followup(request: web.Request) -> web.Response:
    page = _page(request)
    try:
        form = await read_form(request, request.app[LIMITS], 64 * 1024)
    except PageError:
        return _unrecognised(page)
    page = _page(request, form)
    try:
        await _form_token(request, form, "followup", burn=False)
    except FormTokenError:
        return _expired(page)
    claims = await _claims_for(request, form)
    if claims is None:
        return _unrecognised(page)
    return await _followup_page(request, page, claims)


async def post_followup_message(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    limits = request.app[LIMITS]
    page = _page(request)
    try:
        form = await read_form(request, limits, deps.settings.max_body_bytes)
    except PageError as exc:
        return page.render("message.html", status=exc.status, title=page._("Not received"),
                           text=page._(exc.message, **exc.values))
    page = _page(request, form)
    try:
        await _form_token(request, form, "message", burn=True)
    except FormTokenError:
        return _expired(page)
    claims = await _claims_for(request, form)
    if claims is None:
        return _unrecognised(page)
    record = await deps.store.receipts.get(claims["rh"])
    assert record is not None
    try:
        if form.first("sealed_kid") is not None:
            sealed, copy = await _browser_sealed_message(request, form, limits)
            await _publish(request, Submission(
                id=_new_id(), occurred_at=utcnow(), correlation_id=record.submission_id[:64],
                kind="followup", channel="web", sealed=sealed, sealed_by="client",
                receipt_hash=claims["rh"], reporter_copy=copy))
            return await _followup_page(request, page, claims, notice=page._(
                "Thank you. Your information was received and added to your case."))
        body = form.text("body", max_len=limits.max_text_chars)
        if body is None and not form.files:
            raise PageError(422, N_("Please write the information you want to add."))
        kid, public = await request.app[KEYS].active()
        refs = await _seal_uploads(request, form.files, public, kid,
                                   clean=form.first("clean_metadata") == "1")
        lines = [body or ""] + [
            page._("Attachment: %(name)s (blob %(blob)s)", name=r["name"], blob=r["blob"])
            for r in refs]
        plaintext = "\n".join(line for line in lines if line).encode()
        reporter_public = X25519PublicKey.from_public_bytes(
            receipt_reply_public_key(claims["r"]))
        submission = Submission(
            id=_new_id(), occurred_at=utcnow(), correlation_id=record.submission_id[:64],
            kind="followup", channel="web",
            sealed=seal(plaintext, public, kid=kid, purpose="message"), sealed_by="intake",
            receipt_hash=claims["rh"],
            reporter_copy=seal(plaintext, reporter_public, kid="receipt", purpose="message"))
        del plaintext, body
        await _publish(request, submission)
    except PageError as exc:
        return await _followup_page(request, page, claims,
                                    notice=page._(exc.message, **exc.values))
    except ApiError:
        return _unavailable(page)
    return await _followup_page(
        request, page, claims,
        notice=page._("Thank you. Your information was received and added to your case."))


async def _browser_sealed_message(request: web.Request, form: FormData,
                                  limits: Limits) -> tuple[Sealed, Sealed]:
    """A follow-up sealed in the browser: one copy for the organisation, one for the receipt."""
    try:
        sealed = Sealed.from_wire({"kid": form.first("sealed_kid"),
                                   "enc": form.first("sealed_enc"),
                                   "ciphertext": form.first("sealed_ciphertext")})
        copy = Sealed.from_wire({"kid": "receipt", "enc": form.first("copy_enc"),
                                 "ciphertext": form.first("copy_ciphertext")})
    except ContractError:
        raise PageError(400, N_("This form could not be read. Please try again.")) from None
    for box in (sealed, copy):
        if box.ciphertext_size < 17 or box.ciphertext_size > request.app[
                DEPS].settings.max_body_bytes:
            raise PageError(413, N_("What you sent is larger than allowed."))
    if not await request.app[KEYS].accepts(sealed.kid):
        raise PageError(422, N_("The organisation key changed. Please send the form again."))
    await _store_sealed_attachments(request, form, sealed.kid, limits)
    return sealed, copy


# --- satisfaction survey (issue 5) -----------------------------------------------------
# Intake cannot tell a valid survey token from an invalid one (only the router can look
# it up), so every well-formed answer is sealed and published, and every post gets the
# same thank-you page: nothing here reveals whether a token exists.

async def survey_form(request: web.Request) -> web.Response:
    return _page(request).render("survey.html", comment_max=COMMENT_MAX_CHARS)


def _survey_thanks(page: Page) -> web.Response:
    return page.render("message.html", title=page._("Thank you"),
                       text=page._("Thank you for your answer. It helps us improve."))


async def post_survey(request: web.Request) -> web.Response:
    page = _page(request)
    try:
        form = await read_form(request, request.app[LIMITS], 64 * 1024)
    except PageError as exc:
        return page.render("message.html", status=exc.status, title=page._("Not received"),
                           text=page._(exc.message, **exc.values))
    page = _page(request, form)
    try:
        await _form_token(request, form, "survey", burn=True)
    except FormTokenError:
        return _expired(page)
    raw = form.first("rating") or ""
    rating = int(raw) if raw in ("1", "2", "3", "4", "5") else None
    try:
        comment = form.text("comment", max_len=COMMENT_MAX_CHARS)
        if rating is None:
            raise PageError(422, N_("Please choose a rating from 1 to 5."))
    except PageError as exc:
        return page.render("survey.html", status=exc.status, values=_kept(form),
                           error=page._(exc.message, **exc.values),
                           comment_max=COMMENT_MAX_CHARS)
    token = request.match_info["token"]
    if valid_token(token):  # the shape is public; a malformed one cannot be a real link
        try:
            kid, public = await request.app[KEYS].active()
        except UnknownKey:
            return _unavailable(page)
        plaintext = json.dumps({"token": token, "rating": rating, "comment": comment},
                               ensure_ascii=False).encode()
        submission = Submission(
            id=_new_id(), occurred_at=utcnow(), correlation_id=_new_id(), kind="survey",
            channel="web", sealed=seal(plaintext, public, kid=kid, purpose=SURVEY_PURPOSE),
            sealed_by="intake", locale=page.language)
        del plaintext, comment, token
        try:
            await _publish(request, submission)
        except ApiError:
            return _unavailable(page)
    return _survey_thanks(page)


# --- static files ------------------------------------------------------------------------

async def static(request: web.Request) -> web.Response:
    entry = request.app[_STATIC].get(request.match_info["name"])
    if entry is None:
        raise web.HTTPNotFound()
    body, content_type = entry
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    _headers(response)
    response.headers["Cache-Control"] = "no-cache"
    return response


def blob_store_for(app: web.Application) -> BlobStore:
    settings = app[DEPS].settings
    if settings.store_kind == "mongodb":
        from hotline.adapters.mongo_blobs import MongoBlobStore

        return MongoBlobStore(app[DEPS].store.collection)  # type: ignore[attr-defined]
    return FileBlobStore(settings.data_dir / "blobs")


def add_page_routes(app: web.Application, limits: Limits | None = None) -> None:
    """Mount the public pages on the intake app (call after DEPS and the other keys)."""
    app[LIMITS] = limits or Limits()
    app[FORMS] = FormTokens(app[DEPS].receipts.subkey("form-token"), app[LIMITS])
    app[BLOBS] = blob_store_for(app)
    app[_CATALOGS] = Catalogs()
    app[_ENV] = jinja2.Environment(
        loader=jinja2.PackageLoader("intake", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    app[_STATIC] = _static_files()
    app.add_routes([
        web.get("/", landing),
        web.get("/report", report_form),
        web.post("/report", post_report),
        web.get("/complaint", complaint_form),
        web.post("/complaint", post_complaint),
        web.get("/followup", followup_form),
        web.post("/followup", post_followup),
        web.post("/followup/message", post_followup_message),
        web.get("/survey/{token}", survey_form),
        web.post("/survey/{token}", post_survey),
        web.get("/static/{name}", static),
    ])
