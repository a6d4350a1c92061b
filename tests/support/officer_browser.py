"""An officer in Chromium (Playwright) driving the casework pages of a real ``hotline dev``.

Screenshots go to ``test-artifacts/casework/`` (git-ignored) so that a person can look at
every page a browser test passed through.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class OfficerBrowser:
    """One officer's browser session: sign-in (with TOTP enrolment), pages, screenshots."""

    def __init__(self, page: Page, base: str, shots: Path, name: str) -> None:
        self.page = page
        self.base = base
        self.shots = shots
        self.name = name
        self.secret: str | None = None
        self._step = 0
        self.taken: list[Path] = []
        self.changed: dict[str, str] = {}  # one-time password → the one chosen instead

    async def shot(self, label: str) -> Path:
        path = self.shots / f"{len(list(self.shots.glob('*.png'))) + 1:02d}-{self.name}-{label}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path

    def code(self) -> str:
        assert self.secret is not None
        import time

        now = int(time.time()) // 30
        self._step = max(now, self._step + 1)
        if self._step > now + 1:
            time.sleep((self._step - 1) * 30 - time.time() + 0.1)
        return pyotp.TOTP(self.secret).at(self._step * 30)

    async def sign_in(self, username: str, password: str) -> None:
        """Sign in; enrol TOTP on the enrolment page when the role requires it, and replace
        a one-time password on the password page."""
        password = self.changed.get(password, password)
        await self.page.goto(f"{self.base}/ui/login")
        await self.page.fill("#username", username)
        await self.page.fill("#password", password)
        if self.secret:
            await self.page.fill("#totp", self.code())
        await self.page.click("button[type=submit]")
        if self.page.url.endswith("/ui/enrol"):
            await self.shot("enrol")
            self.secret = (await self.page.text_content("#totp-secret") or "").strip()
            await self.page.fill("#code", self.code())
            await self.page.click("form[action='/ui/enrol'] button")
            await self.shot("recovery-codes")
            await self.page.click("text=Continue to the queue")
        if self.page.url.endswith("/ui/password"):
            await self.shot("password-required")
            new = password + "-changed"
            await self.page.fill("#current", password)
            await self.page.fill("#new", new)
            await self.page.fill("#repeat", new)
            await self.page.click("form[action='/ui/password'] button[type=submit]")
            self.changed[password] = new

    async def sign_out(self) -> None:
        await self.page.click("header form button")


async def act(officer: OfficerBrowser, action: str, **fields: str | bool) -> str:
    """Submit the case page's form for ``action``; the workflow state shown afterwards."""
    form = officer.page.locator(f"#action-{action}")
    for name, value in fields.items():
        target = form.locator(f"[name='f.{name}']")
        if value is True:
            await target.check()
        elif await target.evaluate("e => e.tagName") == "SELECT":
            await target.select_option(str(value))
        else:
            await target.fill(str(value))
    await form.locator("button").click()
    error = officer.page.locator(".error")
    if await error.count():
        raise AssertionError(f"{action}: {await error.text_content()}")
    return (await officer.page.text_content("#wf-state") or "").strip()
