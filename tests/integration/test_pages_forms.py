"""intake's public pages without JavaScript, against real SQLite: filing, sealing on
arrival, CSRF, headers, limits, languages, follow-up and what reaches the logs."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from hotline.blobs import FileBlobStore
from hotline.contract import Submission
from hotline.crypto import open_sealed
from hotline.ports import Message
from hotline.services import load_keyring
from intake.app import IntakeDeps, create_app
from intake.pages import BLOBS, FORMS, LIMITS, PAGE_CSP, FormTokens, Limits
from router.worker import Router
from tests.support import hpke_ref
from tests.support.browser import exif_of, gps_jpeg
from tests.support.client import b64d, b64e, solve
from tests.support.embedded import Embedded, embedded, table_counts

pytestmark = pytest.mark.integration

Client: TypeAlias = "TestClient[web.Request, web.Application]"
ClientFactory: TypeAlias = "Callable[..., Awaitable[Client]]"

SMALL = Limits(max_files=2, max_file_bytes=4096, max_total_file_bytes=6000,
               form_min_age_seconds=0.0)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Embedded]:
    async with embedded(tmp_path, HOTLINE_MAX_BODY_BYTES="65536") as instance:
        yield instance


def make_app(env: Embedded, limits: Limits) -> web.Application:
    app = create_app(IntakeDeps(env.settings, env.store, env.bus, env.org, env.receipts))
    app[LIMITS] = limits
    app[FORMS] = FormTokens(env.receipts.subkey("form-token"), limits)
    return app


@pytest.fixture
async def client(env: Embedded, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(make_app(env, SMALL))


async def csrf(client: Client, path: str) -> str:
    html = await (await client.get(path)).text()
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def form(fields: dict[str, str], files: list[tuple[str, str, bytes]] = ()  # type: ignore[assignment]
         ) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    for filename, content_type, content in files:
        data.add_field("attachments", content, filename=filename, content_type=content_type)
    return data


REPORT = {"category": "safety", "unit": "GD", "title": "Valve",
          "description": "The relief valve at plant 3 was removed on purpose.",
          "subject_name_1": "Wang Wu", "subject_position_1": "Shift lead",
          "occurred_at": "2026-03-01", "location": "Plant 3", "amount_value": "1,200",
          "amount_currency": "CNY", "evidence": "Maintenance log page 12",
          "clean_metadata": "1", "identity_mode": "anonymous", "identity_name": "ignored"}


async def queued(env: Embedded) -> list[Submission]:
    async with env.store.transaction() as db:
        rows = await (await db.execute("SELECT body FROM bus_messages ORDER BY seq")).fetchall()
    return [Submission.from_bytes(row[0]) for row in rows]


async def opened(env: Embedded, submission: Submission, purpose: str) -> dict[str, Any]:
    ring = await load_keyring(env.store, env.master)
    plaintext = open_sealed(submission.sealed, ring.private_key(submission.sealed.kid),
                            purpose=purpose)
    doc: dict[str, Any] = json.loads(plaintext)
    return doc


def receipt_in(html: str) -> str:
    match = re.search(r'id="receipt" class="receipt" value="([0-9A-Z-]{23})"', html)
    assert match is not None, html[:2000]
    return match.group(1)


async def test_plain_report_is_sealed_on_arrival_with_photo_cleaned(
        client: Client, env: Embedded) -> None:
    """No JS: the receipt page answers only after publishing; content and photo are sealed."""
    token = await csrf(client, "/report")
    resp = await client.post("/report", data=form(
        {**REPORT, "csrf": token}, [("plant.jpg", "image/jpeg", gps_jpeg())]))
    html = await resp.text()
    assert 200 == resp.status
    assert "no-store" == resp.headers["Cache-Control"]
    receipt = receipt_in(html)
    assert receipt not in str(resp.url)
    [submission] = await queued(env)
    assert ("report", "intake", "safety", "GD", "en") == (
        submission.kind, submission.sealed_by, submission.category, submission.unit,
        submission.locale)
    wire = submission.to_bytes()
    for secret in (b"relief valve", b"Wang Wu", b"SpyCam", receipt.encode()):
        assert secret not in wire
    payload = await opened(env, submission, "report")
    [attachment] = payload.pop("attachments")
    assert {"description": REPORT["description"], "title": "Valve", "location": "Plant 3",
            "evidence": "Maintenance log page 12", "occurred_at": "2026-03-01",
            "subjects": [{"name": "Wang Wu", "position": "Shift lead"}],
            "amount": {"value": 1200, "currency": "CNY"}} == payload
    assert ("plant.jpg", "image/jpeg", True) == (
        attachment["name"], attachment["type"], attachment["metadata_removed"])
    blob_file = env.settings.data_dir / "blobs" / attachment["blob"][:2] / attachment["blob"]
    assert b"SpyCam" not in blob_file.read_bytes()
    sealed = await FileBlobStore(env.settings.data_dir / "blobs").get(attachment["blob"])
    assert sealed is not None
    ring = await load_keyring(env.store, env.master)
    image = open_sealed(sealed, ring.private_key(sealed.kid), purpose="attachment")
    assert ({}, {}) == exif_of(image)


async def test_named_report_carries_identity_and_complaint_has_every_field(
        client: Client, env: Embedded) -> None:
    """Real-name identity travels sealed; a complaint form becomes the §2 complaint payload."""
    token = await csrf(client, "/report?lang=zh-Hant")
    resp = await client.post("/report", data=form({
        "csrf": token, "category": "fraud", "description": "假發票", "lang": "zh-Hant",
        "identity_mode": "named", "identity_name": "李四", "identity_email": "li@example.cn"}))
    assert 200 == resp.status
    token = await csrf(client, "/complaint")
    resp = await client.post("/complaint", data=form({
        "csrf": token, "category": "billing", "unit": "OVERSEAS", "name": "Ann Lee",
        "email": "ann@example.org", "phone": "+44 20 0000", "customer_ref": "C-77",
        "subject": "Charged twice", "description": "May invoice charged twice."}))
    assert 200 == resp.status
    report, complaint = await queued(env)
    assert "zh-Hant" == report.locale
    assert {"name": "李四", "email": "li@example.cn"} == (
        await opened(env, report, "report"))["identity"]
    assert ("complaint", "intake", "OVERSEAS") == (complaint.kind, complaint.sealed_by,
                                                   complaint.unit)
    assert {"name": "Ann Lee", "email": "ann@example.org", "phone": "+44 20 0000",
            "customer_ref": "C-77", "subject": "Charged twice",
            "description": "May invoice charged twice."} == await opened(env, complaint,
                                                                         "complaint")


CSRF_CASES: list[tuple[str, Callable[[str, str], str]]] = [
    ("missing", lambda good, other: ""),
    ("forged mac", lambda good, other: good[:-4] + "AAAA"),
    ("token of another form", lambda good, other: other),
    ("garbage", lambda good, other: "f1.x.y"),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=n) for n, m in CSRF_CASES])
async def test_form_posts_without_a_valid_token_are_refused(
        client: Client, env: Embedded, mutate: Callable[[str, str], str]) -> None:
    """Without the form's own signed token a post is 403 and nothing is stored."""
    good = await csrf(client, "/report")
    other = await csrf(client, "/complaint")
    before = await table_counts(env.store)
    resp = await client.post("/report", data=form({**REPORT, "csrf": mutate(good, other)}))
    assert 403 == resp.status
    assert before == await table_counts(env.store)


async def test_token_is_single_use_and_foreign_origin_refused(
        client: Client, env: Embedded) -> None:
    """Replaying a sent form or posting from another site's page does not file twice."""
    token = await csrf(client, "/report")
    assert 200 == (await client.post("/report", data=form({**REPORT, "csrf": token}))).status
    assert 403 == (await client.post("/report", data=form({**REPORT, "csrf": token}))).status
    fresh = await csrf(client, "/report")
    resp = await client.post("/report", data=form({**REPORT, "csrf": fresh}),
                             headers={"Origin": "https://evil.example"})
    assert 403 == resp.status
    assert 1 == len(await queued(env))


async def test_form_sent_faster_than_a_person_could_is_refused(
        env: Embedded, aiohttp_client: ClientFactory) -> None:
    """The no-JS path's stand-in for proof of work: a form younger than 2 s is refused."""
    client = await aiohttp_client(make_app(env, Limits()))
    token = await csrf(client, "/report")
    assert 403 == (await client.post("/report", data=form({**REPORT, "csrf": token}))).status
    assert [] == await queued(env)


LIMIT_CASES: list[tuple[str, list[tuple[str, str, bytes]]]] = [
    ("too many files", [("a.txt", "text/plain", b"a")] * 3),
    ("file too large", [("big.bin", "application/octet-stream", b"x" * 4097)]),
    ("files too large together", [("a.bin", "application/octet-stream", b"x" * 4000)] * 2),
]


@pytest.mark.parametrize("files", [pytest.param(f, id=n) for n, f in LIMIT_CASES])
async def test_attachment_limits_are_enforced_and_stated(
        client: Client, env: Embedded, files: list[tuple[str, str, bytes]]) -> None:
    """Count, size and total limits give 413 with the form again; nothing is queued."""
    token = await csrf(client, "/report")
    resp = await client.post("/report", data=form({**REPORT, "csrf": token}, files))
    assert 413 == resp.status
    assert 'role="alert"' in await resp.text()
    assert [] == await queued(env)


class BrokenBlobStore:
    """A blob store whose backend is down."""

    async def put(self, sealed: Any) -> str:
        raise OSError("disk full")

    async def get(self, blob: str) -> Any:
        raise OSError("disk full")


async def test_files_refused_cleanly_when_the_blob_store_fails(
        env: Embedded, aiohttp_client: ClientFactory) -> None:
    """When files cannot be stored, a report with files gets a clear 503 page, not a
    crash, and nothing is queued."""
    app = make_app(env, SMALL)
    app[BLOBS] = BrokenBlobStore()
    client = await aiohttp_client(app)
    token = await csrf(client, "/report")
    resp = await client.post("/report", data=form({**REPORT, "csrf": token},
                                                  [("a.txt", "text/plain", b"a")]))
    assert 503 == resp.status
    assert "Files cannot be received at the moment" in await resp.text()
    assert [] == await queued(env)


async def test_default_limits_are_stated_on_the_page(client: Client) -> None:
    """The report page states the limits the server enforces."""
    html = await (await client.get("/report?lang=en")).text()
    assert f"Up to {SMALL.max_files} files" in html


async def test_missing_description_keeps_what_was_typed(client: Client, env: Embedded) -> None:
    """A refused form comes back with the error and the person's text, not a blank form."""
    token = await csrf(client, "/report")
    resp = await client.post("/report", data=form({**REPORT, "description": "",
                                                   "csrf": token}))
    html = await resp.text()
    assert 422 == resp.status
    assert "Please describe what happened." in html
    assert 'value="Plant 3"' in html
    assert [] == await queued(env)


PAGES = ["/", "/report", "/complaint", "/followup"]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_carry_strict_security_headers_and_no_inline_script(
        client: Client, path: str) -> None:
    """CSP without inline script, no referrer, no framing, no sniffing, no features."""
    resp = await client.get(path)
    html = await resp.text()
    assert 200 == resp.status
    assert PAGE_CSP == resp.headers["Content-Security-Policy"]
    assert "unsafe" not in PAGE_CSP
    assert "script-src 'self'" in PAGE_CSP
    assert "frame-ancestors 'none'" in PAGE_CSP
    assert "no-referrer" == resp.headers["Referrer-Policy"]
    assert "DENY" == resp.headers["X-Frame-Options"]
    assert "nosniff" == resp.headers["X-Content-Type-Options"]
    assert "geolocation=()" in resp.headers["Permissions-Policy"]
    assert "no-store" == resp.headers["Cache-Control"]
    assert "Set-Cookie" not in resp.headers
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP here
    assert [] == re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert [] == re.findall(r"\son[a-z]+\s*=", html)
    assert [] == re.findall(r"(?:src|href)=\"(?:https?:)?//", html)


async def test_json_api_keeps_its_own_strict_csp(client: Client) -> None:
    """The API's CSP stays default-src 'none'; static JS is served with the page policy."""
    resp = await client.get("/api/v1/intake/key")
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    js = await client.get("/static/hpke.js")
    assert ("text/javascript", PAGE_CSP) == (js.content_type,
                                             js.headers["Content-Security-Policy"])
    assert 404 == (await client.get("/static/..%2Fpages.py")).status


@pytest.mark.parametrize(("header", "query", "expected"), [
    ("zh-TW,zh;q=0.8,en;q=0.5", "", "zh-Hant"),
    ("zh-HK", "", "zh-Hant"),
    ("zh-CN,zh;q=0.9", "", "zh-Hans"),
    ("en-GB,en;q=0.9", "", "en"),
    ("fr-FR,de;q=0.5", "", "en"),
    ("zh-CN", "?lang=en", "en"),
    ("en", "?lang=zh-Hant", "zh-Hant"),
    ("en", "?lang=xx", "en"),
])
async def test_language_from_accept_language_or_switch(
        client: Client, header: str, query: str, expected: str) -> None:
    """Accept-Language picks the language; ?lang= overrides it without any cookie."""
    html = await (await client.get("/report" + query,
                                   headers={"Accept-Language": header})).text()
    assert f'<html lang="{expected}">' in html


ALLOWED_LATIN = {"Cookie", "JavaScript", "JPEG", "PNG", "WebP", "PDF", "Office", "GPS", "IP",
                 "MB", "CNY", "HKD", "MOP", "USD", "EUR", "English", "Hotline", "HQ"}


@pytest.mark.parametrize("lang", ["zh-Hans", "zh-Hant"])
@pytest.mark.parametrize("path", PAGES)
async def test_chinese_pages_have_no_untranslated_english(
        client: Client, lang: str, path: str) -> None:
    """Every visible string of a Chinese page is translated (no mixed-language pages)."""
    html = await (await client.get(f"{path}?lang={lang}")).text()
    assert set() == latin_words(html)


def latin_words(html: str) -> set[str]:
    html = re.sub(r"<option value=\"[A-Z-]+\">[^<]*</option>", "", html)  # unit codes
    html = re.sub(r'<input[^>]*class="receipt"[^>]*>', "", html)
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S))
    attributes = " ".join(re.findall(r'(?:aria-label|data-msg-[a-z-]+|placeholder)="([^"]*)"',
                                     html))
    return set(re.findall(r"[A-Za-z]{2,}", text + " " + attributes)) - ALLOWED_LATIN


@pytest.mark.parametrize("lang", ["zh-Hans", "zh-Hant"])
async def test_chinese_answers_to_posts_have_no_untranslated_english(
        client: Client, lang: str) -> None:
    """Receipt, refused form, expired form and wrong-receipt pages are translated too."""
    typed = {**REPORT, "description": "阀门被拆除", "evidence": "维修日志"}
    pages = []
    token = await csrf(client, "/report")
    pages.append(await client.post("/report", data=form({**typed, "csrf": token, "lang": lang})))
    token = await csrf(client, "/report")
    pages.append(await client.post("/report", data=form(
        {**typed, "description": "", "csrf": token, "lang": lang})))
    pages.append(await client.post("/report", data=form({**typed, "lang": lang})))
    token = await csrf(client, "/followup")
    pages.append(await client.post("/followup", data=form(
        {"receipt": "nope", "csrf": token, "lang": lang})))
    assert [200, 422, 403, 401] == [page.status for page in pages]
    for page in pages:
        html = await page.text()
        assert f'<html lang="{lang}">' in html
        assert set() == latin_words(html)


def test_catalogs_translate_every_message() -> None:
    """Each message marked in templates and pages.py has a non-empty zh-Hans and zh-Hant text."""
    import ast

    from intake.pages import Catalogs

    root = Path(__file__).parents[2] / "intake"
    ids: set[str] = set()
    for template in (root / "templates").glob("*.html"):
        ids |= set(re.findall(r'\b_\(\s*"([^"]+)"', template.read_text()))
    for node in ast.walk(ast.parse((root / "pages.py").read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (
                (isinstance(node.func, ast.Name) and node.func.id == "N_")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "_")):
            ids.add(node.args[0].value)
    catalogs = Catalogs()
    assert len(ids) > 100
    for lang in ("zh-Hans", "zh-Hant"):
        messages = catalogs.messages(lang)
        assert set() == ids - set(messages), lang
    assert catalogs.messages("zh-Hans") != catalogs.messages("zh-Hant")


async def route_all(env: Embedded) -> None:
    """Play the router: open cases for everything queued (what ``hotline dev`` does)."""
    router = Router(store=env.store, bus=env.bus, org=env.org, master=env.master)
    async with env.store.transaction() as db:
        rows = await (await db.execute(
            "SELECT routing_key, message_id, body FROM bus_messages WHERE routing_key LIKE "
            "'submission.%' ORDER BY seq")).fetchall()
        await db.execute("DELETE FROM bus_messages")
    for routing_key, message_id, body in rows:
        await router.handle(Message(routing_key, message_id, body))


async def test_followup_by_receipt_is_uniform_for_every_wrong_receipt(
        client: Client, env: Embedded) -> None:
    """Unknown, malformed, empty and stale-session attempts all get the same 401 page."""
    answers = set()
    for fields in ({"receipt": "AAAAA-BBBBB-CCCCC-DDDDD"}, {"receipt": "nonsense"},
                   {"receipt": ""}, {"receipt": "Z" * 5000}, {"session": "forged"}, {}):
        token = await csrf(client, "/followup")
        resp = await client.post("/followup", data=form({**fields, "csrf": token}))
        html = re.sub(r'name="csrf" value="[^"]+"', "", await resp.text())
        answers.add((resp.status, html))
    assert 1 == len(answers)
    assert 401 == next(iter(answers))[0]


async def test_followup_page_shows_replies_and_adds_information(
        client: Client, env: Embedded) -> None:
    """With the receipt the page shows the case and takes new information and a sealed file."""
    token = await csrf(client, "/report")
    receipt = receipt_in(await (await client.post("/report", data=form({
        "csrf": token, "category": "safety", "description": "Guard rail missing."}))).text())
    await route_all(env)
    token = await csrf(client, "/followup")
    resp = await client.post("/followup", data=form({"receipt": receipt.lower(), "csrf": token}))
    html = await resp.text()
    assert 200 == resp.status
    assert "No messages yet." in html
    assert receipt not in html
    session = re.search(r'name="session" value="([^"]+)"', html)
    message_token = re.search(r'action="/followup/message".*?name="csrf" value="([^"]+)"', html,
                              re.S)
    assert session is not None
    assert message_token is not None
    resp = await client.post("/followup/message", data=form({
        "csrf": message_token.group(1), "session": session.group(1),
        "body": "It happened again last night.", "clean_metadata": "1"},
        [("second.jpg", "image/jpeg", gps_jpeg())]))
    assert 200 == resp.status
    assert "Your information was received" in await resp.text()
    [followup] = await queued(env)
    assert ("followup", "intake") == (followup.kind, followup.sealed_by)
    ring = await load_keyring(env.store, env.master)
    text = open_sealed(followup.sealed, ring.private_key(followup.sealed.kid),
                       purpose="message").decode()
    blob = re.search(r"Attachment: second\.jpg \(blob ([0-9a-f]{64})\)", text)
    assert blob is not None, text
    sealed = await FileBlobStore(env.settings.data_dir / "blobs").get(blob.group(1))
    assert sealed is not None
    assert ({}, {}) == exif_of(open_sealed(sealed, ring.private_key(sealed.kid),
                                           purpose="attachment"))
    await route_all(env)
    token = await csrf(client, "/followup")
    html = await (await client.post("/followup", data=form({"receipt": receipt,
                                                             "csrf": token}))).text()
    assert "It happened again last night." in html


async def test_no_form_content_receipt_or_client_detail_reaches_the_logs(
        client: Client, env: Embedded) -> None:
    """Whole page flows under capture_logs: nothing typed, no receipt, no IP or UA logged."""
    headers = {"User-Agent": "ReporterBrowser/1.0", "X-Forwarded-For": "203.0.113.9"}
    with capture_logs() as logs:
        token = await csrf(client, "/report")
        html = await (await client.post("/report", data=form(
            {**REPORT, "csrf": token}, [("p.jpg", "image/jpeg", gps_jpeg())]),
            headers=headers)).text()
        receipt = receipt_in(html)
        token = await csrf(client, "/complaint")
        await client.post("/complaint", headers=headers, data=form({
            "csrf": token, "category": "billing", "name": "Secret Name",
            "email": "secret@example.org", "subject": "s", "description": "Secret complaint"}))
        token = await csrf(client, "/followup")
        await client.post("/followup", data=form({"receipt": receipt, "csrf": token}))
        await client.post("/report", data=b"\xff" * 100,
                          headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert logs, "expected some log entries"
    flat = json.dumps(logs, ensure_ascii=False, default=str)
    for secret in (REPORT["description"], "Wang Wu", "Plant 3", receipt, "ReporterBrowser",
                   "203.0.113.9", "127.0.0.1", "Secret Name", "secret@example.org",
                   "Secret complaint", "p.jpg"):
        assert secret not in flat


async def sealed_fields(client: Client, payload: dict[str, Any]) -> dict[str, str]:
    """What static/hotline.js posts: the envelope, a solved challenge, no clear text."""
    key = await (await client.get("/api/v1/intake/key")).json()
    problem = await (await client.get("/api/v1/intake/pow")).json()
    enc, ct = hpke_ref.seal_single(b64d(key["public_key"]), b"hotline/1 report",
                                   json.dumps(payload).encode())
    return {"csrf": await csrf(client, "/report"), "category": "corruption", "unit": "",
            "sealed_kid": key["kid"], "sealed_enc": b64e(enc), "sealed_ciphertext": b64e(ct),
            "pow_challenge": problem["challenge"],
            "pow_nonce": solve(problem["challenge"], problem["difficulty"])}


async def test_browser_sealed_post_is_published_as_sealed(
        client: Client, env: Embedded) -> None:
    """The JS path's envelope is published untouched with sealed_by=client."""
    fields = await sealed_fields(client, {"description": "sealed in the browser"})
    resp = await client.post("/report", data=form(fields))
    assert 200 == resp.status
    receipt_in(await resp.text())
    [submission] = await queued(env)
    assert ("client", None) == (submission.sealed_by, submission.unit)
    assert fields["sealed_ciphertext"] == b64e(submission.sealed.ciphertext)
    assert {"description": "sealed in the browser"} == await opened(env, submission, "report")


SEALED_CASES: list[tuple[str, dict[str, str], int]] = [
    ("wrong nonce", {"pow_nonce": "x"}, 403),
    ("no proof of work", {"pow_challenge": "", "pow_nonce": ""}, 403),
    ("unknown kid", {"sealed_kid": "0000000000000000"}, 422),
    ("short enc", {"sealed_enc": "AAAA"}, 400),
    ("unknown category", {"category": "gossip"}, 422),
]


@pytest.mark.parametrize(("change", "status"),
                         [pytest.param(c, s, id=n) for n, c, s in SEALED_CASES])
async def test_bad_browser_envelopes_are_refused_without_trace(
        client: Client, env: Embedded, change: dict[str, str], status: int) -> None:
    """Proof of work, key id, envelope and category are checked on the JS path too."""
    fields = {**await sealed_fields(client, {"description": "x"}), **change}
    resp = await client.post("/report", data=form(fields))
    assert status == resp.status
    assert 'role="alert"' in await resp.text()
    assert [] == await queued(env)
