"""Playwright fixtures: one headless Debian Chromium and one real ``hotline dev`` per
test session, and where screenshots go (``test-artifacts/browser``, git-ignored).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from PIL import Image
from playwright.async_api import Browser, BrowserContext, ViewportSize, async_playwright

from tests.e2e.conftest import DevInstance, start_dev
from tests.support.client import Officer
from tests.support.processes import run_cli

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1024, "height": 900}


@pytest.fixture(scope="session")
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where screenshots are written; kept as test artifacts, never committed."""
    path = request.config.rootpath / "test-artifacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevInstance]:
    """A real ``hotline dev`` shared by the browser tests of the session."""
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    process = start_dev(data_dir)
    try:
        yield DevInstance(process, data_dir,
                          "http://" + process.find(r"public\s*: http://(\S+?)/?$"),
                          "http://" + process.find(r"internal\s*: http://(\S+?)/?$"),
                          process.find(r"one-time password: (\S+)"))
    finally:
        process.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def officer(site: DevInstance, http_session: aiohttp.ClientSession) -> Officer:
    """A headquarters supervisor: sees every case and may write to reporters."""
    password = "browser-test-supervisor-pw-1"
    result = run_cli(["officer", "add", "lead", "--unit", "HQ", "--role", "supervisor",
                      "--password-stdin"], site.env, stdin=password + "\n")
    assert 0 == result.returncode, result.stderr
    supervisor = Officer(http_session, site.internal)
    await supervisor.login("lead", password)
    return supervisor


def gps_jpeg() -> bytes:
    """A small JPEG whose EXIF names a camera and carries a GPS position."""
    image = Image.new("RGB", (96, 64), (180, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Industries"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (22.0, 32.0, 10.0), 3: "E", 4: (114.0, 3.0, 5.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def exif_of(data: bytes) -> tuple[dict[int, object], dict[int, object]]:
    """``(main EXIF tags, GPS tags)`` of an image, as Pillow reads them."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        return dict(exif), dict(exif.get_ifd(0x8825))


async def new_context(browser: Browser, *, javascript: bool = True, locale: str = "en-US",
                      phone: bool = False) -> BrowserContext:
    return await browser.new_context(java_script_enabled=javascript, locale=locale,
                                     viewport=PHONE if phone else DESKTOP,
                                     service_workers="block")
