"""One settings object per process, read once from the environment (or a TOML file).

Nothing else in Hotline reads ``os.environ``: entry points call :func:`load_settings`
and pass the result down.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hotline.errors import SettingsError

__all__ = ["Settings", "load_settings"]

_PREFIX = "HOTLINE_"


@dataclass(frozen=True)
class Settings:
    """Everything a Hotline process is configured with.

    URLs keep their scheme so adapters can be chosen from them:
    ``sqlite:///path`` or ``mongodb://…`` for the store, ``sqlite:///path`` or
    ``amqp://…`` for the bus.
    """

    data_dir: Path
    store_url: str
    bus_url: str
    master_key_file: Path
    receipt_key_file: Path
    smtp_url: str | None = None
    public_base_url: str | None = None
    log_format: str = "console"
    log_level: str = "info"
    pow_difficulty: int = 16
    pow_ttl_seconds: int = 600
    max_body_bytes: int = 1_048_576
    followup_token_ttl_seconds: int = 900
    session_ttl_seconds: int = 8 * 3600
    mail_domain: str = "hotline.localhost"
    port: int | None = None
    smtp_port: int | None = None
    bus_delivery_limit: int = 5
    mailboxes_file: Path | None = None
    survey_days: int = 30
    retention_days: int = 1827
    # A TrueType font (.ttf/.ttc) with CJK glyphs embedded in the dashboard's PDF export;
    # None: casework/dashboard_pdf.py looks for WenQuanYi Micro Hei, else a CID font.
    pdf_font_file: Path | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def store_kind(self) -> str:
        return self.store_url.split(":", 1)[0]

    @property
    def bus_kind(self) -> str:
        return self.bus_url.split(":", 1)[0]

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else Path(url)


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise SettingsError(
            f"{name}: unsupported URL {scheme or value!r}; expected one of "
            + ", ".join(f"{s}://…" for s in schemes)
        )
    if scheme == "sqlite" and not value.startswith("sqlite:///"):
        raise SettingsError(f"{name}: a SQLite URL is sqlite:///absolute/or/relative/path")
    return value


def _int(name: str, raw: str, *, minimum: int, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name}: {value} is outside {minimum}..{maximum}")
    return value


def _read_toml(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise SettingsError(f"HOTLINE_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"HOTLINE_CONFIG: {path} is not valid TOML: {exc}") from None
    section = doc.get("hotline", doc)
    if not isinstance(section, dict):
        raise SettingsError(f"HOTLINE_CONFIG: {path}: [hotline] must be a table")
    out: dict[str, str] = {}
    for key, value in section.items():
        if isinstance(value, dict | list):
            continue
        out[_PREFIX + key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


_KNOWN = {
    "CONFIG", "DATA_DIR", "STORE_URL", "BUS_URL", "MASTER_KEY_FILE", "RECEIPT_KEY_FILE",
    "SMTP_URL", "PUBLIC_BASE_URL", "LOG_FORMAT", "LOG_LEVEL", "POW_DIFFICULTY",
    "POW_TTL_SECONDS", "MAX_BODY_BYTES", "FOLLOWUP_TOKEN_TTL_SECONDS", "SESSION_TTL_SECONDS",
    "MAIL_DOMAIN", "PORT", "SMTP_PORT", "BUS_DELIVERY_LIMIT", "MAILBOXES_FILE",
    "SURVEY_DAYS", "RETENTION_DAYS", "PDF_FONT_FILE",
}

# Records of processing are kept at least three years (DOMAIN.md, minimisation and
# retention): a shorter retention would let the purge destroy them early.
MIN_RETENTION_DAYS = 1096


def load_settings(
    environ: Mapping[str, str] | None = None, *, data_dir: str | Path | None = None
) -> Settings:
    """Read settings from ``environ`` (default: the process environment).

    A TOML file named by ``HOTLINE_CONFIG`` provides defaults; the environment wins.
    ``data_dir`` (from a ``--data`` flag) wins over both. Raises :class:`SettingsError`
    naming the first bad variable.
    """
    env_source = os.environ if environ is None else environ
    env: dict[str, str] = {}
    if config := env_source.get("HOTLINE_CONFIG"):
        env.update(_read_toml(config))
    env.update({k: v for k, v in env_source.items() if k.startswith(_PREFIX)})

    def get(name: str) -> str | None:
        value = env.get(_PREFIX + name)
        return value if value not in (None, "") else None

    base = Path(data_dir) if data_dir is not None else Path(get("DATA_DIR") or "hotline-data")
    base = base.expanduser().absolute()
    default_db = f"sqlite:///{base / 'hotline.sqlite3'}"
    store_url = _check_url("HOTLINE_STORE_URL", get("STORE_URL") or default_db,
                           ("sqlite", "mongodb", "mongodb+srv"))
    # Without a bus URL the embedded queue lives in the SQLite store file (or, with a
    # MongoDB store, in a SQLite file under the data dir).
    default_bus = store_url if store_url.startswith("sqlite") else default_db
    bus_url = _check_url("HOTLINE_BUS_URL", get("BUS_URL") or default_bus,
                         ("sqlite", "amqp", "amqps"))
    log_format = get("LOG_FORMAT") or "console"
    if log_format not in ("json", "console"):
        raise SettingsError(f"HOTLINE_LOG_FORMAT: expected 'json' or 'console', got {log_format!r}")
    log_level = (get("LOG_LEVEL") or "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise SettingsError(
            f"HOTLINE_LOG_LEVEL: expected debug|info|warning|error, got {log_level!r}")
    smtp_url = get("SMTP_URL")
    if smtp_url is not None:
        _check_url("HOTLINE_SMTP_URL", smtp_url, ("smtp", "smtps"))
    public_base_url = get("PUBLIC_BASE_URL")
    if public_base_url is not None and not public_base_url.startswith(("http://", "https://")):
        raise SettingsError("HOTLINE_PUBLIC_BASE_URL: expected an http:// or https:// URL")
    if public_base_url is not None and ("?" in public_base_url or "#" in public_base_url):
        raise SettingsError("HOTLINE_PUBLIC_BASE_URL: expected a base URL without ? or #")
    if public_base_url is not None:
        public_base_url = public_base_url.rstrip("/")

    def opt_int(name: str, default: int, lo: int, hi: int) -> int:
        raw = get(name)
        return default if raw is None else _int(_PREFIX + name, raw, minimum=lo, maximum=hi)

    port_raw, smtp_raw = get("PORT"), get("SMTP_PORT")
    retention_days = opt_int("RETENTION_DAYS", 1827, 0, 36_525)
    if retention_days < MIN_RETENTION_DAYS:
        raise SettingsError(
            f"HOTLINE_RETENTION_DAYS: {retention_days} days is too short; records of "
            f"processing are kept at least 3 years ({MIN_RETENTION_DAYS} days)")
    return Settings(
        data_dir=base,
        store_url=store_url,
        bus_url=bus_url,
        master_key_file=Path(get("MASTER_KEY_FILE") or base / "master.key").absolute(),
        receipt_key_file=Path(get("RECEIPT_KEY_FILE") or base / "receipt.key").absolute(),
        smtp_url=smtp_url,
        public_base_url=public_base_url,
        log_format=log_format,
        log_level=log_level,
        pow_difficulty=opt_int("POW_DIFFICULTY", 16, 0, 32),
        pow_ttl_seconds=opt_int("POW_TTL_SECONDS", 600, 10, 86_400),
        max_body_bytes=opt_int("MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
        followup_token_ttl_seconds=opt_int("FOLLOWUP_TOKEN_TTL_SECONDS", 900, 30, 86_400),
        session_ttl_seconds=opt_int("SESSION_TTL_SECONDS", 8 * 3600, 60, 7 * 86_400),
        mail_domain=get("MAIL_DOMAIN") or "hotline.localhost",
        port=None if port_raw is None else _int("HOTLINE_PORT", port_raw, minimum=0, maximum=65535),
        smtp_port=None if smtp_raw is None else _int(
            "HOTLINE_SMTP_PORT", smtp_raw, minimum=0, maximum=65535),
        bus_delivery_limit=opt_int("BUS_DELIVERY_LIMIT", 5, 1, 100),
        mailboxes_file=Path(mailboxes).absolute() if (mailboxes := get("MAILBOXES_FILE")) else None,
        survey_days=opt_int("SURVEY_DAYS", 30, 1, 365),
        retention_days=retention_days,
        pdf_font_file=Path(font).absolute() if (font := get("PDF_FONT_FILE")) else None,
        extra={k: v for k, v in env.items() if k.removeprefix(_PREFIX) not in _KNOWN},
    )


def sqlite_path(url: str) -> Path:
    """The file path of a ``sqlite:///`` URL."""
    return _sqlite_path(url)
