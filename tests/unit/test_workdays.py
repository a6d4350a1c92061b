"""Working days on the PRC calendar, the holiday file and the unknown-year fallback."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hotline.workdays import SHANGHAI, HolidayFile, WorkCalendar, add_months, validate_holidays

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    return WorkCalendar.default()


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 10, 1), False),   # National Day
        (date(2026, 10, 7), False),   # National Day holiday, a Wednesday
        (date(2026, 10, 10), True),   # adjusted working Saturday (调休)
        (date(2026, 10, 11), False),  # ordinary Sunday
        (date(2026, 2, 17), False),   # Spring Festival, a Tuesday
        (date(2026, 2, 14), True),    # adjusted working Saturday before Spring Festival
        (date(2026, 11, 25), True),   # ordinary Wednesday
    ],
)
def test_is_working_day_follows_the_official_schedule(calendar: WorkCalendar, day: date,
                                                      expected: bool) -> None:
    """Holidays are off and adjusted working weekends are on."""
    assert expected == calendar.is_working_day(day)


def test_five_working_days_across_national_day_count_the_working_saturday(
        calendar: WorkCalendar) -> None:
    """30 Sep 2026 + 5 wd skips 1–7 Oct and counts Saturday 10 Oct: due 13 Oct."""
    start = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)
    assert datetime(2026, 10, 13, 23, 59, 59, 999000, tzinfo=SHANGHAI) == \
        calendar.add_working_days(start, 5)


def test_fifteen_working_days_across_spring_festival(calendar: WorkCalendar) -> None:
    """A report on 12 Feb 2026 gets its acceptance notice due after the festival week."""
    start = datetime(2026, 2, 12, 10, 0, tzinfo=SHANGHAI)
    # 13, 14(Sat, working), 24, 25, 26, 27, 28(Sat, working), 2 Mar … 6 Mar, 9 … 11 Mar
    assert date(2026, 3, 11) == calendar.add_working_days(start, 15).date()


def test_working_day_boundary_is_shanghai(calendar: WorkCalendar) -> None:
    """17:00 UTC on 29 Sep is already 30 Sep in Shanghai, so counting starts from there."""
    start = datetime(2026, 9, 29, 17, 0, tzinfo=UTC)
    assert date(2026, 10, 13) == calendar.add_working_days(start, 5).date()


def test_zero_working_days_is_the_next_working_day_end(calendar: WorkCalendar) -> None:
    """"At once" on a holiday means by the end of the first working day."""
    start = datetime(2026, 10, 3, 12, 0, tzinfo=SHANGHAI)
    assert date(2026, 10, 8) == calendar.add_working_days(start, 0).date()


def test_calendar_days_and_months_ignore_holidays(calendar: WorkCalendar) -> None:
    """Calendar-day clocks run through holidays; months clamp to the month end."""
    start = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)
    assert date(2026, 10, 15) == calendar.add_calendar_days(start, 15).date()
    assert date(2027, 2, 28) == add_months(date(2026, 11, 30), 3)


def test_unknown_year_falls_back_without_error() -> None:
    """2031 is unknown: Mon–Fri minus fixed statutory days, flagged as estimated."""
    calendar = WorkCalendar.default()
    due = calendar.add_working_days(datetime(2031, 9, 30, 9, 0, tzinfo=SHANGHAI), 5)
    # 1–3 Oct 2031 are fixed statutory holidays; then Mon 6 … Fri 10
    assert date(2031, 10, 10) == due.date()
    assert "weekdays" == calendar.year_source(2031)
    assert calendar.is_estimated(date(2031, 9, 30))
    assert frozenset({2031}) == calendar.estimated_years


def test_holiday_file_supplies_a_year_the_library_lacks(tmp_path: Path) -> None:
    """A [years.2031] table replaces the fallback, make-up working days included."""
    source = tmp_path / "holidays.toml"
    source.write_text('[years.2031]\nholidays = ["2031-10-06"]\nworkdays = ["2031-10-11"]\n')
    calendar = WorkCalendar(HolidayFile.load(source))
    assert "file" == calendar.year_source(2031)
    assert [False, True] == [calendar.is_working_day(date(2031, 10, 6)),
                             calendar.is_working_day(date(2031, 10, 11))]
    assert not calendar.is_estimated(date(2031, 1, 1))


def test_naive_datetimes_are_refused(calendar: WorkCalendar) -> None:
    """Deadlines need aware times; a naive one is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_days(datetime(2026, 10, 1, 9, 0), 1)


def test_validate_holidays_names_the_broken_entry() -> None:
    """A wrong date is reported with its location."""
    errors = validate_holidays({"years": {"2031": {"holidays": ["2031-02-30", "2030-01-01"]}}},
                               "h.toml")
    assert ["h.toml: years.2031.holidays[0]: '2031-02-30' is not a date",
            "h.toml: years.2031.holidays[1]: 2030-01-01 is not in 2031"] == errors
