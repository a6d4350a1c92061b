"""The public pages in Chromium against a real ``hotline dev``: file with and without
JavaScript, complain, follow up; officers read it decrypted; nothing leaves in clear."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, FilePayload, Page, Request

from hotline.adapters.sqlite_store import SqliteStore
from hotline.blobs import FileBlobStore
from hotline.crypto import MasterKey, open_sealed
from hotline.services import load_keyring
from tests.e2e.conftest import DevInstance
from tests.support.browser import (  # noqa: F401 — fixtures used by name
    artifacts,
    browser,
    exif_of,
    gps_jpeg,
    http_session,
    new_context,
    officer,
    site,
)
from tests.support.client import Officer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MIN_FORM_AGE = 2.1  # the no-JavaScript path refuses forms younger than 2 s


async def find_case(officer: Officer, description: str) -> dict[str, Any]:  # noqa: F811
    """The case whose decrypted description is ``description`` (waits for the router)."""
    seen: set[str] = set()
    for _ in range(100):
        for item in await officer.all_cases():
            if item["id"] in seen:
                continue
            status, case = await officer.get(f"/api/v1/cases/{item['id']}")
            assert 200 == status, case
            if case["content"].get("description") == description:
                return dict(case)
            seen.add(item["id"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no case with description {description!r}")


async def open_attachment(site: DevInstance, blob: str) -> bytes:  # noqa: F811
    """Open a sealed blob from the data dir with the organisation's private key."""
    store = SqliteStore(site.data_dir / "hotline.sqlite3")
    await store.open()
    try:
        ring = await load_keyring(store, MasterKey.load(site.data_dir / "master.key"))
    finally:
        await store.close()
    sealed = await FileBlobStore(site.data_dir / "blobs").get(blob)
    assert sealed is not None
    return open_sealed(sealed, ring.private_key(sealed.kid), purpose="attachment")


async def fill_report(page: Page, description: str) -> None:
    await page.select_option("#category", "safety")
    await page.select_option("#unit", "GD")
    await page.fill("#title", "Valve")
    await page.fill("#description", description)
    await page.fill("#subject_name_1", "Wang Wu")
    await page.fill("#amount_value", "1200")
    photo: FilePayload = {"name": "plant.jpg", "mimeType": "image/jpeg", "buffer": gps_jpeg()}
    await page.set_input_files("#attachments", files=[photo])


async def receipt_of(page: Page) -> str:
    await page.wait_for_selector(".receipt-box", timeout=20_000)
    return await page.input_value(".receipt-box input")


async def test_report_with_javascript_is_sealed_in_the_browser(
        browser: Browser, site: DevInstance, officer: Officer, artifacts: Any) -> None:  # noqa: F811
    """JS on: only the envelope leaves the page, no other host is asked; officers read it."""
    description = "JS-on: the pressure valve at plant 3 was removed 阀门被拆除"
    context = await new_context(browser)
    page = await context.new_page()
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    await page.goto(site.public + "/report?lang=en")
    await fill_report(page, description)
    await page.click("button[type=submit]")
    receipt = await receipt_of(page)
    await page.screenshot(path=str(artifacts / "flow-js-receipt.png"), full_page=True)
    await context.close()

    server = urlsplit(site.public).netloc
    assert {server} == {urlsplit(r.url).netloc for r in requests}
    posts = [r for r in requests if r.method == "POST"]
    assert ["/report"] == [urlsplit(r.url).path for r in posts]
    body = posts[0].post_data_buffer
    assert body is not None
    assert b"sealed_ciphertext" in body
    for secret in (description, "pressure valve", "阀门", "Wang Wu", "SpyCam"):
        for request in requests:
            assert secret.encode() not in (request.post_data_buffer or b""), secret
            assert secret not in request.url

    case = await find_case(officer, description)
    content = case["content"]
    assert [{"name": "Wang Wu"}] == content["subjects"]
    assert {"value": 1200, "currency": "CNY"} == content["amount"]
    [attachment] = content["attachments"]
    assert ("plant.jpg", True) == (attachment["name"], attachment["metadata_removed"])
    image = await open_attachment(site, attachment["blob"])
    assert ({}, {}) == exif_of(image)
    assert "GD" == case["unit"]

    # The officer replies; the reporter reads it with the receipt and adds information.
    status, _ = await officer.post(f"/api/v1/cases/{case['id']}/messages",
                                   {"body": "Thank you. Which shift was it?"})
    assert 201 == status
    context = await new_context(browser, phone=True)
    page = await context.new_page()
    await page.goto(site.public + "/followup?lang=en")
    await page.fill("#receipt", receipt.lower().replace("-", " "))
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.wait_for_selector(".messages")
    assert "Thank you. Which shift was it?" in await page.inner_text(".messages")
    await page.screenshot(path=str(artifacts / "flow-followup.png"), full_page=True)
    await page.fill("#body", "The night shift, 2 to 6 am.")
    added: list[Request] = []
    page.on("request", lambda request: added.append(request))
    await page.click("form[action='/followup/message'] button[type=submit]")
    await page.wait_for_selector(".notice")
    [post] = [r for r in added if r.method == "POST"]
    assert b"copy_ciphertext" in (post.post_data_buffer or b"")
    assert b"night shift" not in (post.post_data_buffer or b"")
    for _ in range(100):
        _, updated = await officer.get(f"/api/v1/cases/{case['id']}")
        bodies = [m["body"] for m in updated["messages"] if m["from"] == "reporter"]
        if bodies:
            break
        await asyncio.sleep(0.1)
    assert ["The night shift, 2 to 6 am."] == bodies
    # The browser's copy for the reporter opens with the receipt's key on the page, too.
    await page.click("form.inline button[type=submit]")
    await page.wait_for_selector(".from-reporter")
    assert "The night shift, 2 to 6 am." in await page.inner_text(".from-reporter")
    await context.close()


async def test_report_without_javascript_is_sealed_on_arrival(
        browser: Browser, site: DevInstance, officer: Officer) -> None:  # noqa: F811
    """JS off: the plain form works, intake seals it and strips the photo's EXIF/GPS."""
    description = "JS-off: wages for March were never paid at the GD depot"
    context = await new_context(browser, javascript=False, locale="zh-CN")
    page = await context.new_page()
    await page.goto(site.public + "/report")
    assert "zh-Hans" == await page.get_attribute("html", "lang")
    await fill_report(page, description)
    await page.wait_for_timeout(MIN_FORM_AGE * 1000)
    await page.click("button[type=submit]")
    receipt = await receipt_of(page)
    await context.close()
    assert 23 == len(receipt)
    case = await find_case(officer, description)
    [attachment] = case["content"]["attachments"]
    assert True is attachment["metadata_removed"]
    assert ({}, {}) == exif_of(await open_attachment(site, attachment["blob"]))


async def test_complaint_form_reaches_the_officer(
        browser: Browser, site: DevInstance, officer: Officer) -> None:  # noqa: F811
    """A complaint sealed in the browser is opened by the router with every field."""
    description = "The technician arrived three days late and left the site dirty."
    context = await new_context(browser, locale="zh-TW")
    page = await context.new_page()
    await page.goto(site.public + "/complaint")
    assert "zh-Hant" == await page.get_attribute("html", "lang")
    await page.fill("#name", "陳大文")
    await page.fill("#email", "chan@example.hk")
    await page.fill("#phone", "+852 5555 0000")
    await page.fill("#customer_ref", "HK-7781")
    await page.select_option("#unit", "HK")
    await page.select_option("#category", "delay")
    await page.fill("#subject", "Late repair")
    await page.fill("#description", description)
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    await page.click("button[type=submit]")
    await receipt_of(page)
    await context.close()
    [post] = [r for r in requests if r.method == "POST"]
    assert b"sealed_ciphertext" in (post.post_data_buffer or b"")
    for secret in ("陳大文", "chan@example.hk", "three days late"):
        assert secret.encode() not in (post.post_data_buffer or b"")
    case = await find_case(officer, description)
    assert {"name": "陳大文", "email": "chan@example.hk", "phone": "+852 5555 0000",
            "customer_ref": "HK-7781", "subject": "Late repair",
            "description": description} == case["content"]
    assert ("complaint", "HK") == (case["kind"], case["unit"])


PAGES = ["/", "/report", "/complaint", "/followup"]


@pytest.mark.parametrize("lang", ["en", "zh-Hans", "zh-Hant"])
async def test_screenshots_of_every_page_at_phone_width(
        browser: Browser, site: DevInstance, artifacts: Any, lang: str) -> None:  # noqa: F811
    """Each page, in each language, fits 360 px without horizontal scrolling."""
    locale = {"en": "en-US", "zh-Hans": "zh-CN", "zh-Hant": "zh-TW"}[lang]
    context = await new_context(browser, phone=True, locale=locale)  # native controls too
    page = await context.new_page()
    for path in PAGES:
        await page.goto(f"{site.public}{path}?lang={lang}")
        assert lang == await page.get_attribute("html", "lang")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert 360 >= width, path
        name = path.strip("/") or "landing"
        await page.screenshot(path=str(artifacts / f"{name}-{lang}.png"), full_page=True)
    # A receipt and a follow-up page in this language, too.
    await page.goto(f"{site.public}/report?lang={lang}")
    await page.select_option("#category", "other")
    await page.fill("#description", f"screenshot run {lang}")
    await page.click("button[type=submit]")
    receipt = await receipt_of(page)
    await page.screenshot(path=str(artifacts / f"receipt-{lang}.png"), full_page=True)
    for _ in range(50):
        await page.goto(f"{site.public}/followup?lang={lang}")
        await page.fill("#receipt", receipt)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        if await page.query_selector(".facts"):
            break
        await asyncio.sleep(0.2)
    await page.screenshot(path=str(artifacts / f"followup-case-{lang}.png"), full_page=True)
    assert await page.query_selector(".facts") is not None
    await context.close()


async def test_keyboard_reaches_every_field_with_visible_focus(
        browser: Browser, site: DevInstance) -> None:  # noqa: F811
    """Tab walks the report form in order and the focused control shows an outline."""
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(site.public + "/report?lang=en")
    seen: list[str] = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused: dict[str, str] = await page.evaluate("""() => {
            const el = document.activeElement;
            if (el === document.body) return {id: "", outline: "body"};
            return {id: el.id || el.textContent.trim().slice(0, 20),
                    outline: getComputedStyle(el).outlineStyle};
        }""")
        if focused["outline"] == "body":
            break  # tabbed past the last control
        seen.append(focused["id"])
        assert "none" != focused["outline"], focused
    await context.close()
    for field in ("category", "unit", "description", "attachments", "identity_anonymous"):
        assert field in seen
    assert json.dumps(seen).index("category") < json.dumps(seen).index("description")
