"""The quarterly PDF export: the dashboard's figures for one quarter, scoped, in Chinese too."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pypdf import PdfReader

from casework import dashboard_pdf
from casework.app import CaseworkDeps, create_app
from casework.dashboard import DashboardFilter
from hotline.org import load_org
from hotline.services import add_account
from tests.support.casework_cases import sealed_case
from tests.support.embedded import embedded
from tests.support.officer_login import officer_headers

pytestmark = pytest.mark.integration

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]
PASSWORD = "a long enough passphrase"
Q3 = datetime(2026, 8, 10, 9, tzinfo=UTC)


def recorded(**actions: dict[str, Any]) -> dict[str, Any]:
    """A workflow document whose record holds ``actions`` (what the dashboard counts)."""
    return {"state": {"record": actions},
            "deadlines": [{"name": "acknowledge", "clock": "acknowledge",
                           "due_at": (Q3 + timedelta(days=1)).isoformat(),
                           "met_at": Q3.isoformat()}]}


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: ClientFactory) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with embedded(tmp_path) as env:
        for name, unit, role in (("gd-super", "GD", "supervisor"), ("gd-officer", "GD", "officer"),
                                 ("hq-super", "HQ", "supervisor")):
            await add_account(env.store, env.org, name, unit=unit, role=role, password=PASSWORD)
        await sealed_case(env, "gd-1", opened=Q3, workflow=recorded(
            propose_disposition={"disposition": "談話函詢"}, conclude={"outcome": "錯告"}))
        await sealed_case(env, "gd-2", opened=Q3 + timedelta(hours=1), channel="post",
                          workflow=recorded(propose_disposition={"disposition": "談話函詢"}))
        await sealed_case(env, "gd-design", unit="GD-DESIGN", channel="phone", opened=Q3,
                          kind="complaint", category="service_quality",
                          workflow=recorded(record_survey={"survey_result": "satisfied"},
                                            record_resolution={
                                                "root_cause": {"sealed": {"kid": "k"}},
                                                "root_cause_category": "billing_error"}))
        for n in range(7):  # Sichuan's cases: HQ counts them, GD must not
            await sealed_case(env, f"sc-{n}", unit="SC", channel="visit", opened=Q3)
        await sealed_case(env, "gd-q2", opened=Q3 - timedelta(days=60))
        yield await aiohttp_client(create_app(CaseworkDeps(
            env.settings, env.store, env.bus, env.org, env.master)))


async def pdf_text(client: TestClient, who: str, query: str) -> tuple[int, str]:  # type: ignore[type-arg]
    resp = await client.get(f"/api/v1/dashboard/quarterly.pdf{query}",
                            headers=await officer_headers(client, who, PASSWORD))
    if resp.status != 200:
        return resp.status, ""
    assert "application/pdf" == resp.content_type
    reader = PdfReader(io.BytesIO(await resp.read()))
    return 200, "\n".join(page.extract_text() for page in reader.pages)


def fonts(pdf: bytes) -> dict[str, bool]:
    """Each font the PDF's pages use (base name) and whether its glyphs are embedded."""
    found: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            font = ref.get_object()
            descriptor = font["/FontDescriptor"].get_object() if "/FontDescriptor" in font \
                else {}
            found[str(font["/BaseFont"])] = "/FontFile2" in descriptor
    return found


def figure(text: str, label: str) -> str:
    """The value printed right after ``label`` in the PDF's text."""
    found = re.search(re.escape(label) + r"\s*\n\s*(\S+)", text)
    assert found is not None, label
    return found[1]


async def test_pdf_has_the_quarter_figures_and_chinese_text(client: TestClient) -> None:  # type: ignore[type-arg]
    """HQ's PDF for 2026Q3: counts, on-time rate, 简体 unit name, 繁體 disposition/outcome."""
    status, text = await pdf_text(client, "hq-super", "?quarter=2026Q3")
    assert 200 == status
    assert "quarterly figures 2026-Q3" in text
    assert "10" == figure(text, "cases")
    assert "7" == figure(text, "visit")
    assert "广东设计院" in text
    assert "四川省级公司" in text
    assert "2" == figure(text, "談話函詢")
    assert "1" == figure(text, "錯告")
    assert re.search(r"satisfied rate \(of answered surveys\)\s+100.0 %", text), "satisfied"
    assert re.search(r"acknowledge\s+3\s+0\s+0\s+0\s+100.0 %", text), "on-time table"
    assert "1" == figure(text, "billing_error")  # top root causes, by category


async def test_pdf_counts_only_the_callers_scope(client: TestClient) -> None:  # type: ignore[type-arg]
    """GD's supervisor gets GD's subtree only: no Sichuan unit, no visit channel."""
    status, text = await pdf_text(client, "gd-super", "?year=2026&quarter=3")
    assert 200 == status
    assert "3" == figure(text, "cases")
    assert "四川省级公司" not in text
    assert "\nSC\n" not in text
    assert "visit" not in text
    assert "广东设计院" in text
    status, text = await pdf_text(client, "hq-super", "?quarter=2026Q3&unit=GD-DESIGN")
    assert "1" == figure(text, "cases")
    assert "filters: unit = GD-DESIGN" in text


async def test_bad_quarter_and_wrong_role_are_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    """A malformed or missing quarter is 400; an officer (not a dashboard reader) is 403."""
    for query in ("?quarter=2026Q5", "?quarter=Q3", "?quarter=2026Q3x", "", "?year=2026",
                  "?quarter=1999Q1", "?quarter=2026Q3&channel=pigeon"):
        assert (query, 400) == (query, (await pdf_text(client, "hq-super", query))[0])
    assert 403 == (await pdf_text(client, "gd-officer", "?quarter=2026Q3"))[0]


async def test_csv_export_takes_the_same_quarter_form(client: TestClient) -> None:  # type: ignore[type-arg]
    """``quarter=2026Q3`` works for the CSV export as well as ``year&quarter``."""
    headers = await officer_headers(client, "hq-super", PASSWORD)
    resp = await client.get("/api/v1/dashboard/quarterly.csv?quarter=2026Q3", headers=headers)
    assert 200 == resp.status
    csv_text = await resp.text()
    assert "2026-Q3,volume,total,10" in csv_text
    assert "2026-Q3,complaints.top_root_causes,billing_error,1" in csv_text
    resp = await client.get("/api/v1/dashboard/quarterly.csv?quarter=2026-Q9", headers=headers)
    assert 400 == resp.status


def a_pdf(font_file: Path | None) -> bytes:
    return dashboard_pdf.render_pdf(
        {"volume": {"total": 1, "by_unit": {"GD-DESIGN": 1}}}, period="2026-Q3",
        wanted=DashboardFilter(), org=load_org(), viewer_unit="HQ",
        generated_at=Q3, font_file=font_file)


@pytest.mark.skipif(not dashboard_pdf.DEFAULT_FONT_FILES[0].is_file(),
                    reason="fonts-wqy-microhei is not installed (scripts/bootstrap.sh does)")
def test_the_chinese_font_is_embedded(tmp_path: Path) -> None:
    """With WenQuanYi Micro Hei installed (or named by HOTLINE_PDF_FONT_FILE) the glyphs
    travel in the PDF, so a reader without Chinese fonts still shows the unit names."""
    for font_file in (None, dashboard_pdf.DEFAULT_FONT_FILES[0]):
        used = {name: embedded for name, embedded in fonts(a_pdf(font_file)).items()
                if name != "/Helvetica"}  # reportlab's initial page font, one of the 14
        assert used
        assert all(used.values()), used
        assert all("WenQuanYi" in name for name in used), used


def test_without_a_font_file_the_cid_font_is_the_fallback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured file that is not a font, and no default installed: STSong-Light, still
    with extractable Chinese text."""
    monkeypatch.setattr(dashboard_pdf, "DEFAULT_FONT_FILES", ())
    dashboard_pdf.font_for.cache_clear()
    bogus = tmp_path / "not-a-font.ttf"
    bogus.write_bytes(b"not a font")
    try:
        pdf = a_pdf(bogus)
    finally:
        dashboard_pdf.font_for.cache_clear()
    assert "/STSong-Light" in fonts(pdf)
    assert "广东设计院" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
