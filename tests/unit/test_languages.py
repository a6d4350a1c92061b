"""One mapping from language tags to the public pages' languages, for intake's pages
(Accept-Language) and for what is written to reporters (the case's locale)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hotline.crypto import Sealed
from hotline.domain.case import Case, page_language, reporter_language
from intake.pages import negotiate_language

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("tag", "expected"), [
    ("en", "en"), ("en-GB", "en"), ("EN-us", "en"),
    ("zh", "zh-Hans"), ("zh-CN", "zh-Hans"), ("zh-Hans", "zh-Hans"), ("zh_CN", "zh-Hans"),
    ("zh-TW", "zh-Hant"), ("zh-HK", "zh-Hant"), ("zh-MO", "zh-Hant"), ("zh-Hant", "zh-Hant"),
    ("zh-Hant-CN", "zh-Hant"), ("zh_Hant_HK", "zh-Hant"), (" zh-tw ", "zh-Hant"),
    ("fr-FR", None), ("", None), ("*", None), ("ja", None)])
def test_page_language_maps_tags_and_locales(tag: str, expected: str | None) -> None:
    """English and Chinese tags name a page language; Traditional by script or region."""
    assert expected == page_language(tag)


def test_pages_and_reporter_mail_agree_on_a_language() -> None:
    """Accept-Language and a case's locale give the same language for the same tag; a case
    without a usable locale falls back to its unit's language."""
    case = Case(id="c_1", submission_id="1", reference="R-1", kind="report",
                category="fraud", severity="general", status="registered", unit="GD",
                channel="web", opened_at=datetime.now(UTC), received_at=datetime.now(UTC),
                content=Sealed("k", b"", b""), sealed_by="client")
    for tag in ("zh-TW", "zh-CN", "en-GB", "zh-Hant-HK"):
        assert negotiate_language(None, tag) == reporter_language(replace(case, locale=tag))
    assert "zh-Hant" == negotiate_language(None, "fr;q=1, zh-HK;q=0.8, en;q=0.5")
    assert ("zh-Hans", "zh-Hant", "en") == tuple(
        reporter_language(replace(case, locale=locale, unit=unit))
        for locale, unit in ((None, "GD"), ("fr", "HK"), (None, "OVERSEAS")))
