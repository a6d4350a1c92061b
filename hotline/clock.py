"""Time as the domain sees it: aware UTC, millisecond precision (what every store keeps)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["truncate", "utcnow"]


def truncate(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    return truncate(datetime.now(UTC))
