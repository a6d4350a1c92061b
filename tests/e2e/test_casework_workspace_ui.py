"""The rest of the officers' workspace in Chromium against a real ``hotline dev``: the admin
changes the one-time password and creates accounts, a clerk registers a phone report and
hands out a receipt, the reporter follows up with it on the public page, and the handler
filters the queue by channel and adds a case note — a screenshot of each page, kept in
test-artifacts/browser/workspace/."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import FilePayload

from tests.e2e.conftest import DevInstance
from tests.support.client import Reporter
from tests.support.officer_browser import OfficerBrowser, chromium

pytestmark = pytest.mark.e2e

CALL = "来电称：仓库主管把报废钢材私自变卖，发生在三月初的夜班"
NOTE = "已调取三月份出库记录，待与仓库主管谈话"


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    path: Path = request.config.rootpath / "test-artifacts" / "browser" / "workspace"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


async def one_time_password(admin: OfficerBrowser) -> str:
    text = await admin.page.text_content("#one-time-password")
    assert text
    return text.strip()


async def test_accounts_manual_intake_receipt_followup_queue_filter_and_notes(
        dev: DevInstance, http: aiohttp.ClientSession, shots: Path) -> None:
    """Admin page, clerk's intake page with receipt, public follow-up, queue filter, notes."""
    async with chromium() as browser:
        async def officer(name: str) -> OfficerBrowser:
            context = await browser.new_context(viewport={"width": 1366, "height": 900})
            return OfficerBrowser(await context.new_page(), dev.internal, shots, name)

        # The admin's one-time password from the first start must be replaced first.
        admin = await officer("admin")
        await admin.sign_in("admin", dev.admin_password)
        assert admin.page.url.endswith("/ui/queue?flash=Password+changed")
        await admin.page.goto(f"{dev.internal}/ui/accounts")
        passwords = {}
        for username, role in (("clerk-gd", "clerk"), ("handler-gd", "officer"),
                               ("leaver", "officer")):
            form = admin.page.locator("#create-account")
            await form.locator("[name=username]").fill(username)
            await form.locator("[name=role]").select_option(role)
            await form.locator("[name=unit]").select_option("GD")
            await form.locator("[name=employee_id]").fill(f"E-{username}")
            await form.locator("button").click()
            passwords[username] = await one_time_password(admin)
            if username == "clerk-gd":
                await admin.shot("accounts-created")
        row = admin.page.locator("#account-leaver")
        await row.locator("button", has_text="Disable").click()
        row = admin.page.locator("#account-handler-gd")
        await row.locator("button", has_text="Reset password").click()
        passwords["handler-gd"] = await one_time_password(admin)
        await admin.page.goto(f"{dev.internal}/ui/accounts")
        assert "disabled" in (await admin.page.locator("#account-leaver").inner_text())
        await admin.shot("accounts")

        # The clerk registers a phone call and reads the receipt out to the caller.
        clerk = await officer("clerk")
        await clerk.sign_in("clerk-gd", passwords["clerk-gd"])
        await clerk.page.goto(f"{dev.internal}/ui/intake")
        page = clerk.page
        await page.check("input[name=channel][value=phone]")
        await page.check("input[name=kind][value=report]")
        await page.select_option("#report_category", "fraud")
        await page.select_option("#unit", "GD")
        await page.fill("#description", CALL)
        await page.fill("#identity_name", "李四")
        await page.fill("#identity_phone", "+86 139 0000 0000")
        letter: FilePayload = {"name": "call-notes.pdf", "mimeType": "application/pdf",
                               "buffer": b"%PDF-1.4 call notes"}
        await page.set_input_files("#letter", files=[letter])
        await page.check("#transcript_confirmed")
        await clerk.shot("intake-form")
        await page.click("#intake button[type=submit]")
        receipt = (await page.text_content("#receipt") or "").strip()
        assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", receipt)
        await clerk.shot("intake-receipt")
        await page.goto(f"{dev.internal}/ui/queue")
        assert receipt not in await page.content()

        # The caller follows up online with the receipt, like a web reporter.
        reporter = Reporter(http, dev.public)
        for _ in range(100):
            status, followup = await reporter.followup(receipt)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert 200 == status, followup
        public = await (await browser.new_context(viewport={"width": 1366, "height": 900})
                        ).new_page()
        await public.goto(f"{dev.public}/followup?lang=en")
        await public.fill("#receipt", receipt)
        await public.click("button[type=submit]")
        await public.wait_for_selector(".case-status")
        assert followup["reference"] in await public.inner_text("dl.facts")
        await public.screenshot(path=str(shots / "20-reporter-followup.png"), full_page=True)

        # The handler filters the queue by channel, opens the case and adds a note.
        handler = await officer("handler")
        await handler.sign_in("handler-gd", passwords["handler-gd"])
        await handler.page.goto(f"{dev.internal}/ui/queue")
        await handler.page.select_option("select[name=channel]", "phone")
        await handler.page.click("form.filters button[type=submit]")
        assert "channel=phone" in handler.page.url
        rows = handler.page.locator("#queue tbody tr")
        assert 1 == await rows.count()
        assert followup["reference"] in await rows.inner_text()
        await handler.shot("queue-channel-phone")
        await rows.locator("a").click()
        await handler.page.fill("#note-body", NOTE)
        await handler.page.click("form[action$='/notes'] button")
        assert "Note added" in await handler.page.inner_text(".flash")
        await handler.page.fill("#reason", "first review of the call")
        await handler.page.click("#content button[type=submit]")
        assert NOTE in await handler.page.inner_text("#note-list")
        assert CALL in await handler.page.inner_text("#case-content")
        await handler.shot("case-notes")
        async with handler.page.expect_download() as download_info:
            await handler.page.click("#attachments a")
        download = await download_info.value
        assert "call-notes.pdf" == download.suggested_filename
        saved = await download.path()
        assert b"%PDF-1.4 call notes" == await asyncio.to_thread(Path(saved).read_bytes)
        await handler.page.reload()
        history = await handler.page.inner_text("#history")
        assert "note.added" in history
        assert "notes.opened" in history
        assert "attachment.downloaded" in history
