"""structlog configuration with a redaction processor.

Report text, receipts, identities, passwords, IP addresses and user agents must never
reach a log line. Call sites are written not to pass them; the redaction processor is
the second line: it drops values under sensitive keys and masks anything in a string
that looks like a receipt, an e-mail address or an IP address.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["SENSITIVE_KEYS", "configure_logging", "get_logger", "redact"]

SENSITIVE_KEYS = frozenset({
    "body", "content", "description", "evidence", "identity", "name", "email", "phone",
    "receipt", "password", "totp", "token", "secret", "ip", "remote", "peername",
    "user_agent", "x_forwarded_for", "forwarded", "plaintext", "payload", "subject_line",
    "subjects", "title", "authorization", "cookie",
})

_REDACTED = "[redacted]"
_RECEIPT = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){3}\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b", re.IGNORECASE)


# Each pattern matches only text holding its character: most values (ids, units, kinds)
# hold none, and testing for a character is ~20 times cheaper than a regex pass (issue 7:
# four passes over every string of every line were a tenth of a log line's cost).
_SCRUBBERS = (("-", _RECEIPT), ("@", _EMAIL), (".", _IPV4), (":", _IPV6))


def _scrub(value: str) -> str:
    for needed, pattern in _SCRUBBERS:
        if needed in value:
            value = pattern.sub(_REDACTED, value)
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive keys, mask sensitive-looking strings."""
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = _REDACTED
        elif isinstance(event_dict[key], str) and key not in ("level", "timestamp"):
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def configure_logging(log_format: str = "console", level: str = "info") -> None:
    """Configure structlog (and stdlib logging routed through it) once per process."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through stdlib; keep them quiet and never let aiohttp's access log
    # (which carries client addresses) through.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("aiohttp.access").disabled = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
