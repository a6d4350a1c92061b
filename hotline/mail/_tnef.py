"""Expanding Outlook's TNEF ``winmail.dat`` into ordinary attachments."""

from __future__ import annotations

from dataclasses import dataclass

try:  # tnefparse is optional (LGPL): without it winmail.dat stays one attachment
    from tnefparse import TNEF  # type: ignore[import-untyped]  # ships no type hints
except ImportError:  # pragma: no cover - exercised only where the library is absent
    TNEF = None


@dataclass(frozen=True, slots=True)
class TnefContent:
    """What a TNEF blob carried: its files and its plain-text body, if any."""

    files: tuple[tuple[str | None, bytes], ...]
    body: str | None


def is_tnef(content_type: str, filename: str | None) -> bool:
    """True for an ``application/ms-tnef`` part or a ``winmail.dat`` file."""
    return content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or (
        filename is not None and filename.lower() == "winmail.dat"
    )


def expand_tnef(payload: bytes) -> TnefContent | None:
    """The files inside a TNEF blob, or None when it cannot be read (keep it as is)."""
    if TNEF is None:
        return None
    try:
        tnef = TNEF(payload, do_checksum=False)
        files = tuple(
            (_text(item.long_filename()) or None, bytes(item.data)) for item in tnef.attachments
        )
        body = _text(tnef.body) if tnef.body else None
    except Exception:  # a third-party decoder on untrusted bytes
        return None
    if not files and not body:
        return None
    return TnefContent(files=files, body=body)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip("\x00").strip()
    return str(value).strip("\x00").strip()
