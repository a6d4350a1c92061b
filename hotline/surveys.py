"""Satisfaction surveys of complaints: what casework, intake and router agree on.

Casework sends a complainant a link ``<public base URL>/survey/<token>``; only the
token's SHA-256 is stored, as a record of kind :data:`SURVEY_KIND` keyed by that hash
(``{"case_id", "sent_at", "expires_at", "answered", "outcome", "answer_id", "done"}``).
Intake, which cannot tell a valid token from an invalid one, seals the answer
``{"token", "rating", "comment"}`` with purpose :data:`SURVEY_PURPOSE` and publishes a
``survey`` submission; the router hashes the token, finds the record and records the
answer on the case's workflow (``record_survey``) exactly once.
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["COMMENT_MAX_CHARS", "SURVEY_KIND", "SURVEY_PURPOSE", "new_token", "result_for",
           "token_hash", "valid_token"]

SURVEY_KIND = "survey"
SURVEY_PURPOSE = "survey"  # HPKE info "hotline/1 survey"
COMMENT_MAX_CHARS = 2000
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 random bytes, base64url


def new_token() -> str:
    """A fresh survey token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def valid_token(text: str) -> bool:
    """Whether ``text`` has the shape of a token (not whether one was issued)."""
    return bool(_TOKEN.match(text))


def token_hash(token: str) -> str:
    """The key the token's record is stored under: hex SHA-256 (the token itself is not)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def result_for(rating: int) -> str:
    """The workflow's ``survey_result`` for a 1–5 rating: 4–5, 3, 1–2."""
    if not 1 <= rating <= 5:
        raise ValueError("a rating is 1 to 5")
    return "satisfied" if rating >= 4 else "neutral" if rating == 3 else "dissatisfied"
