"""`hotline config check` for the files of triage, workflows and the calendar."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConfigProblem", "validate_config"]


@dataclass(frozen=True)
class ConfigProblem:
    """One problem of a configuration file; ``location`` is a dotted path inside it."""

    file: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.location}: {self.message}" if self.location \
            else f"{self.file}: {self.message}"


def validate_config(path: Path) -> list[ConfigProblem]:
    """Every problem of a units, leaders, triage-rules, workflows or holidays file.

    The kind of file is told by its content ([[unit]], [units.X], [[rule]], [[workflow]],
    [years.X]/[every_year]). An empty list means the file is fine.
    """
    from hotline.org import validate_units
    from hotline.triage._org import validate_leaders
    from hotline.triage._rules import validate_rules
    from hotline.workdays import validate_holidays
    from hotline.workflow._definitions import validate_workflows

    source = str(path)
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        return [ConfigProblem(source, "", f"cannot read: {exc.strerror}")]
    except tomllib.TOMLDecodeError as exc:
        return [ConfigProblem(source, "", f"not valid TOML: {exc}")]
    except UnicodeDecodeError:
        return [ConfigProblem(source, "", "not UTF-8 text")]
    if "unit" in doc:
        messages = validate_units(doc, source)
    elif "rule" in doc:
        messages = validate_rules(doc, source)
    elif "workflow" in doc:
        messages = validate_workflows(doc, source)
    elif "units" in doc or "aliases" in doc:
        messages = validate_leaders(doc, source, _unit_codes(path))
    elif "years" in doc or "every_year" in doc:
        messages = validate_holidays(doc, source)
    elif "mailbox" in doc:
        from hotline.mail.config import validate_mailboxes
        from hotline.org import load_org

        messages = validate_mailboxes(doc, source, load_org())
    else:
        return [ConfigProblem(source, "", "unknown kind of file: expected [[unit]], [units.X], "
                              "[[rule]], [[workflow]], [years.X] or [[mailbox]] tables")]
    return [_split(source, m) for m in messages]


def _unit_codes(path: Path) -> frozenset[str] | None:
    """Unit codes from the units.toml next to ``path``, else the packaged one."""
    from hotline.errors import SettingsError
    from hotline.org import load_org

    sibling = path.with_name("units.toml")
    try:
        tree = load_org(sibling if sibling.exists() else None)
    except SettingsError:
        return None  # the units file has its own problems; check it on its own
    return frozenset(unit.code for unit in tree)


def _split(source: str, message: str) -> ConfigProblem:
    rest = message.removeprefix(f"{source}: ")
    if rest != message and ": " in rest:
        location, text = rest.split(": ", 1)
        return ConfigProblem(source, location, text)
    return ConfigProblem(source, "", rest)
