"""Settings of issue 5's closed loop: retention (never under 3 years), the survey window
and the public base URL the survey links point to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.crypto import Sealed
from hotline.domain.case import Case, followup_status
from hotline.errors import SettingsError
from hotline.retention import PURGED_CONTENT, archive_if_closed, tombstone_of
from hotline.settings import load_settings
from hotline.surveys import new_token, result_for, token_hash, valid_token

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_defaults(tmp_path: Path) -> None:
    """Five years of retention, a 30-day survey window, no public base URL."""
    settings = load_settings({"HOTLINE_DATA_DIR": str(tmp_path)})
    assert (1827, 30, None) == (settings.retention_days, settings.survey_days,
                                settings.public_base_url)


@pytest.mark.parametrize("days", ["1095", "30", "0"])
def test_retention_under_three_years_is_refused_naming_the_variable(
        tmp_path: Path, days: str) -> None:
    """Records of processing are kept at least 3 years: a shorter retention stops the start."""
    with pytest.raises(SettingsError, match=r"HOTLINE_RETENTION_DAYS: .*at least 3 years"):
        load_settings({"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_RETENTION_DAYS": days})


@pytest.mark.parametrize(("name", "value"), [
    ("HOTLINE_RETENTION_DAYS", "five years"), ("HOTLINE_SURVEY_DAYS", "0"),
    ("HOTLINE_SURVEY_DAYS", "400"), ("HOTLINE_PUBLIC_BASE_URL", "https://x.cn/?a=1"),
    ("HOTLINE_PUBLIC_BASE_URL", "hotline.example.cn")])
def test_bad_values_are_refused_naming_the_variable(tmp_path: Path, name: str,
                                                    value: str) -> None:
    """Every bad value fails fast with the variable's name."""
    with pytest.raises(SettingsError, match=name):
        load_settings({"HOTLINE_DATA_DIR": str(tmp_path), name: value})


def test_accepted_values(tmp_path: Path) -> None:
    """Exactly three years is allowed; the base URL loses a trailing slash."""
    settings = load_settings({"HOTLINE_DATA_DIR": str(tmp_path),
                              "HOTLINE_RETENTION_DAYS": "1096", "HOTLINE_SURVEY_DAYS": "14",
                              "HOTLINE_PUBLIC_BASE_URL": "https://hotline.example.cn/"})
    assert (1096, 14, "https://hotline.example.cn") == (
        settings.retention_days, settings.survey_days, settings.public_base_url)


def test_survey_tokens_ratings_and_results() -> None:
    """Tokens are 43 URL-safe characters stored as SHA-256; 4–5 satisfied, 3 neutral."""
    token = new_token()
    assert valid_token(token)
    assert not valid_token(token[:-1])
    assert 64 == len(token_hash(token))
    assert token not in token_hash(token)
    assert ["dissatisfied", "dissatisfied", "neutral", "satisfied", "satisfied"] == [
        result_for(n) for n in range(1, 6)]
    with pytest.raises(ValueError, match="1 to 5"):
        result_for(0)


def case(status: str) -> Case:
    return Case(id="c_sub-00000001", submission_id="sub-00000001", reference="R-2026-000001",
                kind="report", category="fraud", severity="general", status=status, unit="GD",
                channel="web", opened_at=T0, received_at=T0,
                content=Sealed("kid", bytes(32), b"secret"), sealed_by="client",
                locale="zh-CN", reply_key=bytes(32), fingerprint="f" * 64,
                triage={"rules": ["r"]}, workflow={"name": "report-anonymous-general",
                                                   "state": {"record": {"conclude": {
                                                       "outcome": "unsubstantiated"}}}})


def test_archive_only_once_and_only_when_closed() -> None:
    """Closing archives with closure + retention; an open or archived case is unchanged."""
    assert case("investigating") == archive_if_closed(case("investigating"), T0, 1827)
    archived = archive_if_closed(case("closed"), T0, 1827)
    assert (T0, T0 + timedelta(days=1827)) == (archived.archived_at, archived.retention_until)
    assert archived == archive_if_closed(archived, T0 + timedelta(days=3), 2000)


def test_tombstone_keeps_identifiers_and_outcome_only() -> None:
    """No content, reply key, triage or fingerprint; status purged; receipt reads closed."""
    closed = archive_if_closed(case("closed"), T0, 1827)
    stone = tombstone_of(closed, T0 + timedelta(days=1828))
    assert ("purged", PURGED_CONTENT, None, {}, None, None) == (
        stone.status, stone.content, stone.reply_key, stone.triage, stone.fingerprint,
        stone.locale)
    assert "unsubstantiated" == stone.workflow["tombstone"]["outcome"]
    assert (closed.reference, closed.category, closed.unit) == (
        stone.reference, stone.category, stone.unit)
    assert "closed" == followup_status(stone)
