"""The browser's HPKE (static/hpke.js, WebCrypto) against RFC 9180 and against Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from playwright.async_api import Browser, Page

from hotline.crypto import Sealed, open_sealed, seal
from tests.e2e.conftest import DevInstance
from tests.support import hpke_ref
from tests.support.browser import (  # noqa: F401 — fixtures used by name
    artifacts,
    browser,
    new_context,
    site,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

VECTOR = json.loads((Path(__file__).parents[1] / "data" / "vectors" /
                     "hpke-base-x25519-sha256-aes256gcm.json").read_text())[0]
_RAW = serialization.Encoding.Raw


async def hpke_page(browser: Browser, site: DevInstance) -> Page:  # noqa: F811
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(site.public + "/")
    return page


async def test_browser_hpke_reproduces_the_rfc_9180_vector(
        browser: Browser, site: DevInstance) -> None:  # noqa: F811
    """With skE fixed, the browser derives the vector's enc, key schedule and every ct."""
    page = await hpke_page(browser, site)
    result: dict[str, Any] = await page.evaluate("""async (v) => {
        const h = await import("/static/hpke.js");
        const {enc, context} = await h.setupBaseS(h.hexToBytes(v.pkRm), h.hexToBytes(v.info),
                                                  h.hexToBytes(v.skEm));
        const cts = [];
        for (const e of v.encryptions) {
            cts.push(h.bytesToHex(await context.seal(h.hexToBytes(e.aad), h.hexToBytes(e.pt))));
        }
        const values = Object.fromEntries(Object.entries(context.values)
            .map(([k, x]) => [k, h.bytesToHex(x)]));
        const receiver = await h.setupBaseR(enc, h.hexToBytes(v.skRm), h.hexToBytes(v.info));
        const pts = [];
        for (const e of v.encryptions) {
            pts.push(h.bytesToHex(await receiver.open(h.hexToBytes(e.aad), h.hexToBytes(e.ct))));
        }
        return {enc: h.bytesToHex(enc), cts, values, pts};
    }""", VECTOR)
    await page.context.close()
    assert VECTOR["enc"] == result["enc"]
    assert [e["ct"] for e in VECTOR["encryptions"]] == result["cts"]
    assert [e["pt"] for e in VECTOR["encryptions"]] == result["pts"]
    for name in ("shared_secret", "key_schedule_context", "secret", "key", "base_nonce"):
        assert VECTOR[name] == result["values"][name], name


async def test_python_opens_browser_seals_and_browser_opens_python_seals(
        browser: Browser, site: DevInstance) -> None:  # noqa: F811
    """Interop both ways: product and reference Python open the browser's output, and back."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(_RAW, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    raw_public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    text = "举报：阀门被拆除 — valve removed ✓"
    python_sealed = seal(text.encode(), private.public_key(), kid="k", purpose="report")
    page = await hpke_page(browser, site)
    result: dict[str, str] = await page.evaluate("""async (a) => {
        const h = await import("/static/hpke.js");
        const box = await h.seal(h.hexToBytes(a.pk), "report", new TextEncoder().encode(a.text));
        const opened = await h.open(h.hexToBytes(a.sk), "report", h.hexToBytes(a.enc),
                                    h.hexToBytes(a.ct));
        return {enc: h.bytesToHex(box.enc), ct: h.bytesToHex(box.ciphertext),
                opened: new TextDecoder().decode(opened)};
    }""", {"pk": raw_public.hex(), "sk": raw_private.hex(), "text": text,
           "enc": python_sealed.enc.hex(), "ct": python_sealed.ciphertext.hex()})
    await page.context.close()
    browser_sealed = Sealed("k", bytes.fromhex(result["enc"]), bytes.fromhex(result["ct"]))
    assert text == open_sealed(browser_sealed, private, purpose="report").decode()
    assert text == hpke_ref.open_single(raw_private, browser_sealed.enc, b"hotline/1 report",
                                        browser_sealed.ciphertext).decode()
    assert text == result["opened"]
