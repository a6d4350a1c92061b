"""Complaint mailboxes: which addresses we take mail for, their unit, language and IMAP.

The defaults follow CONTRACT §7: ``complaints-<code>@<mail_domain>`` for every
provincial unit (HK included) and ``overseas@<mail_domain>`` for ``OVERSEAS``. A TOML
file (``HOTLINE_MAILBOXES_FILE``) adds mailboxes or overrides defaults by address::

    [[mailbox]]
    address = "complaints-gd@example.com"
    unit = "GD"
    language = "zh-Hans"            # zh-Hant | zh-Hans | en: acknowledgement default
    [mailbox.imap]                  # optional: poll this mailbox on an IMAP server
    host = "imap.example.com"
    port = 993
    tls = "tls"                     # tls (implicit, port 993) | none (loopback/tests only)
    user = "complaints-gd"
    password_file = "/run/secrets/imap-gd"   # or password_env = "HOTLINE_IMAP_GD_PASSWORD"
    folder = "INBOX"
    processed_folder = "Processed"  # move there; without it the mail is flagged \\Seen
    idle = true                     # IDLE where the server offers it
    poll_seconds = 60               # polling interval otherwise

Passwords never sit in the file itself; ``password_env`` must name a ``HOTLINE_``
variable, because only the settings loader reads the environment.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from hotline.errors import SettingsError
from hotline.mail._model import Language
from hotline.org import OrgTree

__all__ = [
    "LANGUAGES",
    "ImapSettings",
    "Mailbox",
    "MailboxBook",
    "default_mailboxes",
    "load_mailboxes",
    "validate_mailboxes",
]

LANGUAGES: tuple[Language, ...] = ("zh-Hant", "zh-Hans", "en")
TlsMode = Literal["tls", "none"]
# STARTTLS is left out on purpose: the IMAP client (aioimaplib) does not implement it.
_TLS_MODES = ("tls", "none")
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_DEFAULT_LANGUAGE: Mapping[str, Language] = {"HK": "zh-Hant", "OVERSEAS": "en"}
_MAILBOX_KEYS = {"address", "unit", "language", "imap"}
_IMAP_KEYS = {"host", "port", "tls", "user", "password_file", "password_env", "folder",
              "processed_folder", "processed_flag", "idle", "poll_seconds"}


@dataclass(frozen=True)
class ImapSettings:
    """Where and how one mailbox is read over IMAP."""

    host: str
    user: str
    port: int = 993
    tls: TlsMode = "tls"
    password_file: Path | None = None
    password_env: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    """Move processed mail here; when None, mark it with ``processed_flag`` instead."""
    processed_flag: str = "\\Seen"
    idle: bool = True
    poll_seconds: float = 60.0

    def password(self, extra_env: Mapping[str, str]) -> str:
        """The password from its file or its ``HOTLINE_`` variable; SettingsError if absent."""
        if self.password_file is not None:
            try:
                return self.password_file.read_text("utf-8").strip()
            except OSError as exc:
                raise SettingsError(f"mailbox imap.password_file: cannot read "
                                    f"{self.password_file}: {exc.strerror}") from None
        if self.password_env is not None and self.password_env in extra_env:
            return extra_env[self.password_env]
        raise SettingsError(f"mailbox imap: {self.password_env or 'password'} is not set")


@dataclass(frozen=True)
class Mailbox:
    """One complaint address, the unit its mail is routed to and its default language."""

    address: str
    unit: str
    language: Language
    imap: ImapSettings | None = None

    @property
    def key(self) -> str:
        return self.address.lower()


@dataclass(frozen=True)
class MailboxBook:
    """The configured mailboxes, looked up case-insensitively by address."""

    mailboxes: tuple[Mailbox, ...]
    _by_address: dict[str, Mailbox] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_address", {m.key: m for m in self.mailboxes})

    def get(self, address: str | None) -> Mailbox | None:
        return None if not address else self._by_address.get(address.strip().lower())

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and self.get(address) is not None

    def __iter__(self) -> Iterator[Mailbox]:
        return iter(self.mailboxes)

    def __len__(self) -> int:
        return len(self.mailboxes)

    def for_unit(self, unit: str) -> Mailbox | None:
        """The first mailbox routed to ``unit`` (the sender of replies on its cases)."""
        return next((m for m in self.mailboxes if m.unit == unit), None)

    def imap_mailboxes(self) -> list[Mailbox]:
        return [m for m in self.mailboxes if m.imap is not None]


def default_mailboxes(org: OrgTree, mail_domain: str) -> list[Mailbox]:
    """CONTRACT §7: one mailbox per provincial unit and ``overseas@`` for OVERSEAS."""
    boxes = [Mailbox(f"complaints-{unit.code.lower()}@{mail_domain}", unit.code,
                     _DEFAULT_LANGUAGE.get(unit.code, "zh-Hans"))
             for unit in org if unit.level == "province"]
    if "OVERSEAS" in org:
        boxes.append(Mailbox(f"overseas@{mail_domain}", "OVERSEAS", "en"))
    return boxes


def validate_mailboxes(doc: Mapping[str, Any], source: str,
                       org: OrgTree | None = None) -> list[str]:
    """Every problem of the ``[[mailbox]]`` entries of ``doc``, each with its location."""
    errors: list[str] = []
    entries = doc.get("mailbox", [])
    if not isinstance(entries, list):
        return [f"{source}: [[mailbox]] must be an array of tables"]
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{source}: mailbox[{index}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table")
            continue
        errors += [f"{where}: unknown key {key!r}" for key in sorted(set(entry) - _MAILBOX_KEYS)]
        address = entry.get("address")
        if not isinstance(address, str) or not _ADDRESS.match(address):
            errors.append(f"{where}.address: expected an e-mail address like "
                          "complaints-gd@example.com")
        elif address.lower() in seen:
            errors.append(f"{where}.address: {address} is configured twice")
        else:
            seen.add(address.lower())
        unit = entry.get("unit")
        if not isinstance(unit, str) or not unit:
            errors.append(f"{where}.unit: required, a unit code such as GD")
        elif org is not None and unit not in org:
            errors.append(f"{where}.unit: {unit!r} is not an organisation unit")
        language = entry.get("language")
        if language is not None and language not in LANGUAGES:
            errors.append(f"{where}.language: expected one of {', '.join(LANGUAGES)}")
        imap = entry.get("imap")
        if imap is not None:
            errors += _validate_imap(imap, f"{where}.imap")
    return errors


def _validate_imap(imap: object, where: str) -> list[str]:
    if not isinstance(imap, dict):
        return [f"{where}: must be a table"]
    errors = [f"{where}: unknown key {key!r}" for key in sorted(set(imap) - _IMAP_KEYS)]
    for name in ("host", "user"):
        if not isinstance(imap.get(name), str) or not imap[name]:
            errors.append(f"{where}.{name}: required, a non-empty string")
    port = imap.get("port", 993)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append(f"{where}.port: expected an integer 1..65535")
    if imap.get("tls", "tls") not in _TLS_MODES:
        errors.append(f"{where}.tls: expected one of {', '.join(_TLS_MODES)}")
    has_file, has_env = "password_file" in imap, "password_env" in imap
    if has_file == has_env:
        errors.append(f"{where}: set exactly one of password_file and password_env")
    env = imap.get("password_env")
    if has_env and (not isinstance(env, str) or not env.startswith("HOTLINE_")):
        errors.append(f"{where}.password_env: must name a HOTLINE_… environment variable")
    if has_file and not isinstance(imap.get("password_file"), str):
        errors.append(f"{where}.password_file: expected a path")
    for name in ("folder", "processed_folder", "processed_flag"):
        if name in imap and (not isinstance(imap[name], str) or not imap[name]):
            errors.append(f"{where}.{name}: expected a non-empty string")
    if "idle" in imap and not isinstance(imap["idle"], bool):
        errors.append(f"{where}.idle: expected true or false")
    poll = imap.get("poll_seconds", 60)
    if not isinstance(poll, int | float) or isinstance(poll, bool) or not 0.1 <= poll <= 3600:
        errors.append(f"{where}.poll_seconds: expected a number of seconds 0.1..3600")
    return errors


def _imap_from(doc: Mapping[str, Any]) -> ImapSettings:
    return ImapSettings(
        host=doc["host"], user=doc["user"], port=int(doc.get("port", 993)),
        tls=cast(TlsMode, doc.get("tls", "tls")),
        password_file=Path(doc["password_file"]) if "password_file" in doc else None,
        password_env=doc.get("password_env"), folder=doc.get("folder", "INBOX"),
        processed_folder=doc.get("processed_folder"),
        processed_flag=doc.get("processed_flag", "\\Seen"), idle=bool(doc.get("idle", True)),
        poll_seconds=float(doc.get("poll_seconds", 60)))


def load_mailboxes(org: OrgTree, mail_domain: str, path: Path | None = None) -> MailboxBook:
    """The default mailboxes, extended and overridden by the file at ``path`` (if any).

    Raises :class:`SettingsError` listing every problem of the file.
    """
    boxes = {m.key: m for m in default_mailboxes(org, mail_domain)}
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise SettingsError(f"HOTLINE_MAILBOXES_FILE: cannot read {path}: "
                                f"{exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"HOTLINE_MAILBOXES_FILE: {path} is not TOML: {exc}") from None
        errors = validate_mailboxes(doc, str(path), org)
        if errors:
            raise SettingsError("HOTLINE_MAILBOXES_FILE: " + "; ".join(errors))
        for entry in doc.get("mailbox", []):
            unit = entry["unit"]
            mailbox = Mailbox(
                address=entry["address"], unit=unit,
                language=cast(Language, entry.get("language",
                                                  _DEFAULT_LANGUAGE.get(unit, "zh-Hans"))),
                imap=_imap_from(entry["imap"]) if "imap" in entry else None)
            boxes[mailbox.key] = mailbox
    return MailboxBook(tuple(boxes.values()))
