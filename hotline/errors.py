"""Exceptions a caller can act on, one type per failure."""

from __future__ import annotations

__all__ = [
    "BusUnavailable",
    "ConcurrencyConflict",
    "ContentNotLoaded",
    "ContractError",
    "HotlineError",
    "MalformedMessage",
    "NotFound",
    "SealError",
    "SettingsError",
    "StoreUnavailable",
    "UnknownKey",
]


class HotlineError(Exception):
    """Base of every error Hotline raises on purpose."""


class SettingsError(HotlineError):
    """A setting is missing or invalid; the message names the variable."""


class ContractError(HotlineError):
    """A wire or API document does not match its schema.

    ``field`` names the offending field (dotted path) so the edge can say which.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MalformedMessage(ContractError):
    """A bus message can never be processed; it belongs in the parking queue."""


class SealError(HotlineError):
    """A sealed payload could not be opened (wrong key, corrupted, tampered)."""


class UnknownKey(SealError):
    """The key id names no key this installation has."""


class ContentNotLoaded(HotlineError):
    """A sealed value's ciphertext was not read (a case from a list of cases); read the
    case by id to open its content."""


class NotFound(HotlineError):
    """The named thing does not exist (or the caller may not know it does)."""


class ConcurrencyConflict(HotlineError):
    """Another writer got there first; re-read and try again."""


class StoreUnavailable(HotlineError):
    """The store cannot be reached; transient."""


class BusUnavailable(HotlineError):
    """The bus cannot durably take a message right now; transient."""
