"""Working days on the PRC calendar, with its adjusted working weekends (调休).

The official schedule comes from the maintained ``chinesecalendar`` library. For years it
does not know yet, ``holidays.toml`` lists holidays and make-up working days; for a year
neither knows, the calendar falls back to Monday–Friday minus the fixed-date statutory
holidays of the file and *says so*: :meth:`WorkCalendar.is_estimated` and
:attr:`WorkCalendar.estimated_years` let a caller flag a deadline as provisional. It never
raises for an unknown year.

Deadlines end at the close of the last day in Asia/Shanghai (23:59:59.999), whatever
time zone the start was given in.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped]  # ships without type hints

__all__ = [
    "SHANGHAI",
    "HolidayFile",
    "WorkCalendar",
    "YearSource",
    "add_months",
    "validate_holidays",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
_END_OF_DAY = time(23, 59, 59, 999000)

YearSource = Literal["file", "library", "weekdays"]


@dataclass(frozen=True)
class HolidayFile:
    """What ``holidays.toml`` says: per year, holidays and make-up working days."""

    holidays: Mapping[int, frozenset[date]] = field(default_factory=dict)
    workdays: Mapping[int, frozenset[date]] = field(default_factory=dict)
    every_year: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def parse(cls, doc: Mapping[str, object], source: str = "holidays.toml") -> HolidayFile:
        """Build from a parsed TOML document; ``ValueError`` listing every problem."""
        errors = validate_holidays(doc, source)
        if errors:
            raise ValueError("; ".join(errors))
        holidays: dict[int, frozenset[date]] = {}
        workdays: dict[int, frozenset[date]] = {}
        years = doc.get("years", {})
        assert isinstance(years, dict)
        for key, entry in years.items():
            holidays[int(key)] = frozenset(_dates(entry.get("holidays", [])))
            workdays[int(key)] = frozenset(_dates(entry.get("workdays", [])))
        every = doc.get("every_year", {})
        assert isinstance(every, dict)
        fixed = frozenset((int(md[:2]), int(md[3:])) for md in every.get("holidays", []))
        return cls(holidays=holidays, workdays=workdays, every_year=fixed)

    @classmethod
    def load(cls, path: Path | None = None) -> HolidayFile:
        """Load ``path`` or the packaged default file."""
        if path is None:
            text = resources.files("hotline").joinpath("data/holidays.toml").read_text("utf-8")
            return cls.parse(tomllib.loads(text), "holidays.toml (default)")
        return cls.parse(tomllib.loads(path.read_text("utf-8")), str(path))


def _dates(values: Iterable[object]) -> list[date]:
    return [v if isinstance(v, date) else date.fromisoformat(str(v)) for v in values]


def validate_holidays(doc: Mapping[str, object], source: str) -> list[str]:
    """Every problem of a holidays document, each with its location."""
    errors: list[str] = []
    unknown = set(doc) - {"years", "every_year"}
    if unknown:
        errors.append(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    years = doc.get("years", {})
    if not isinstance(years, dict):
        return [*errors, f"{source}: years must be a table of [years.YYYY]"]
    for key, entry in years.items():
        where = f"{source}: years.{key}"
        if not (isinstance(key, str) and key.isdigit() and len(key) == 4):
            errors.append(f"{where}: year must be four digits")
            continue
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table")
            continue
        for name in set(entry) - {"holidays", "workdays"}:
            errors.append(f"{where}: unknown key {name!r}")
        for name in ("holidays", "workdays"):
            values = entry.get(name, [])
            if not isinstance(values, list):
                errors.append(f"{where}.{name}: must be a list of dates")
                continue
            for index, value in enumerate(values):
                try:
                    day = value if isinstance(value, date) else date.fromisoformat(str(value))
                except ValueError:
                    errors.append(f"{where}.{name}[{index}]: {value!r} is not a date")
                    continue
                if day.year != int(key):
                    errors.append(f"{where}.{name}[{index}]: {day} is not in {key}")
    every = doc.get("every_year", {})
    if not isinstance(every, dict):
        errors.append(f"{source}: every_year must be a table")
    else:
        for index, value in enumerate(every.get("holidays", [])):
            try:
                date(2000, int(str(value)[:2]), int(str(value)[3:]))
                if len(str(value)) != 5 or str(value)[2] != "-":
                    raise ValueError(value)
            except ValueError:
                errors.append(f"{source}: every_year.holidays[{index}]: {value!r} is not MM-DD")
    return errors


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's last day (31 Jan + 1 = 28 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    for day in range(start.day, 27, -1):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return date(year, month, min(start.day, 28))


class WorkCalendar:
    """Answers "is this a working day" and "what is the deadline" on the PRC calendar."""

    def __init__(self, holiday_file: HolidayFile | None = None) -> None:
        self._file = holiday_file if holiday_file is not None else HolidayFile()
        self._estimated: set[int] = set()
        self._sources: dict[int, YearSource] = {}

    @classmethod
    def default(cls) -> WorkCalendar:
        """The library plus the packaged ``holidays.toml``."""
        return cls(HolidayFile.load())

    @property
    def estimated_years(self) -> frozenset[int]:
        """Years consulted so far that neither the library nor the file knows."""
        return frozenset(self._estimated)

    def year_source(self, year: int) -> YearSource:
        """Where the answer for ``year`` comes from; the file wins over the library."""
        if year not in self._sources:
            source: YearSource = "library"
            if year in self._file.holidays or year in self._file.workdays:
                source = "file"
            else:
                try:
                    chinese_calendar.is_workday(date(year, 6, 1))
                except NotImplementedError:
                    source = "weekdays"
            self._sources[year] = source
        return self._sources[year]

    def is_estimated(self, start: date, end: date | None = None) -> bool:
        """Whether any year from ``start`` to ``end`` falls back to Mon–Fri."""
        last = start if end is None else end
        return any(self.year_source(y) == "weekdays" for y in range(start.year, last.year + 1))

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (adjusted working weekends count as working)."""
        source = self.year_source(day.year)
        if source == "file":
            if day in self._file.workdays.get(day.year, frozenset()):
                return True
            if day in self._file.holidays.get(day.year, frozenset()):
                return False
            return day.weekday() < 5 and (day.month, day.day) not in self._file.every_year
        if source == "library":
            return _library_workday(day)
        self._estimated.add(day.year)
        return day.weekday() < 5 and (day.month, day.day) not in self._file.every_year

    @staticmethod
    def local_date(moment: datetime) -> date:
        """The Asia/Shanghai date of an aware moment."""
        if moment.tzinfo is None:
            raise ValueError("naive datetime: times must be timezone-aware")
        return moment.astimezone(SHANGHAI).date()

    @staticmethod
    def end_of(day: date) -> datetime:
        """The last millisecond of ``day`` in Asia/Shanghai."""
        return datetime.combine(day, _END_OF_DAY, SHANGHAI)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """End of the ``days``-th working day after ``start``'s local date.

        Counting starts the day after ``start`` (a report in on Friday evening with 5
        working days is due at the end of the following Friday). ``days == 0`` means the
        end of the start day, or of the next working day if it is not one.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        day = self.local_date(start)
        if days == 0:
            while not self.is_working_day(day):
                day += timedelta(days=1)
            return self.end_of(day)
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return self.end_of(day)

    def add_calendar_days(self, start: datetime, days: int) -> datetime:
        """End of the local date ``days`` calendar days after ``start``."""
        return self.end_of(self.local_date(start) + timedelta(days=days))

    def add_calendar_months(self, start: datetime, months: int) -> datetime:
        """End of the same local date ``months`` later (clamped to the month's end)."""
        return self.end_of(add_months(self.local_date(start), months))

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``[start, end)``."""
        return sum(1 for offset in range((end - start).days)
                   if self.is_working_day(start + timedelta(days=offset)))


@functools.lru_cache(maxsize=4096)
def _library_workday(day: date) -> bool:
    # chinese_calendar validates and looks up each date anew; every clock of every case
    # walks the same few weeks of days.
    return bool(chinese_calendar.is_workday(day))
