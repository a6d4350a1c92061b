"""Finding the case a mail belongs to: subject tags and thread references."""

from __future__ import annotations

import re
import unicodedata

from hotline.mail._model import ParsedMail

# NFKC folds ［］ and full-width digits and hyphens to ASCII; 【】 survive it.
_TAG = re.compile(r"[\[【〔]\s*([CR])\s*-\s*(\d{4})\s*-\s*(\d{6})\s*[\]】〕]", re.IGNORECASE)


def reference_tags(subject: str) -> list[str]:
    """Case references tagged in a subject, like ``[C-2025-000123]`` or ``【R-2025-000007】``."""
    folded = unicodedata.normalize("NFKC", subject)
    found: list[str] = []
    for kind, year, number in _TAG.findall(folded):
        reference = f"{kind.upper()}-{year}-{number}"
        if reference not in found:
            found.append(reference)
    return found


def thread_ids(parsed: ParsedMail) -> list[str]:
    """Message-IDs this mail answers: In-Reply-To first, then References, no repeats."""
    found: list[str] = []
    candidates = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(parsed.references)
    for message_id in candidates:
        if message_id not in found:
            found.append(message_id)
    return found
