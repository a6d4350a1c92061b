"""The organisation: a tree of units (HQ → provinces → subsidiaries, plus overseas)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hotline.errors import SettingsError

__all__ = ["LEVELS", "OrgTree", "Unit", "load_org"]

LEVELS = ("hq", "province", "subsidiary", "overseas")


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str
    parent: str | None = None
    name_zh: str | None = None


class OrgTree:
    def __init__(self, units: list[Unit]) -> None:
        self._units = {u.code: u for u in units}
        self._children: dict[str, list[str]] = {}
        for unit in units:
            if unit.parent is not None:
                self._children.setdefault(unit.parent, []).append(unit.code)

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units.values())

    def __len__(self) -> int:
        return len(self._units)

    def get(self, code: str) -> Unit:
        return self._units[code]

    @property
    def root(self) -> Unit:
        return next(u for u in self._units.values() if u.parent is None)

    def subtree(self, code: str) -> frozenset[str]:
        """The unit and every unit below it: what an account of that unit may see."""
        seen: set[str] = set()
        stack = [code]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self._children.get(current, ()))
        return frozenset(seen)

    def parent_of(self, code: str) -> str | None:
        return self._units[code].parent

    def ancestors(self, code: str) -> list[str]:
        chain: list[str] = []
        current = self._units[code].parent
        while current is not None:
            chain.append(current)
            current = self._units[current].parent
        return chain


def validate_units(doc: object, source: str) -> list[str]:
    """Every problem of a units document, each with its location."""
    errors: list[str] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("unit"), list):
        return [f"{source}: expected [[unit]] tables"]
    codes: dict[str, int] = {}
    for index, entry in enumerate(doc["unit"]):
        where = f"{source}: unit[{index}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table")
            continue
        code = entry.get("code")
        if not isinstance(code, str) or not code or not code.replace("-", "").isalnum() \
                or code.upper() != code:
            errors.append(f"{where}: code must be upper-case letters, digits and '-'")
            continue
        if code in codes:
            errors.append(f"{where}: duplicate code {code!r} (first at unit[{codes[code]}])")
        codes[code] = index
        if entry.get("level") not in LEVELS:
            errors.append(f"{where} ({code}): level must be one of {', '.join(LEVELS)}")
        if not isinstance(entry.get("name"), str):
            errors.append(f"{where} ({code}): name is required")
        unknown = set(entry) - {"code", "name", "name_zh", "parent", "level"}
        if unknown:
            errors.append(f"{where} ({code}): unknown key(s) {', '.join(sorted(unknown))}")
    roots = [e.get("code") for e in doc["unit"] if isinstance(e, dict) and "parent" not in e]
    if len(roots) != 1:
        errors.append(f"{source}: exactly one unit must have no parent, found {len(roots)}")
    for index, entry in enumerate(doc["unit"]):
        if isinstance(entry, dict) and "parent" in entry and entry["parent"] not in codes:
            errors.append(f"{source}: unit[{index}] ({entry.get('code')}): parent "
                          f"{entry['parent']!r} is not a unit")
    return errors


def load_org(path: Path | None = None) -> OrgTree:
    """Load units from ``path`` or the packaged default; :class:`SettingsError` if invalid."""
    if path is None:
        text = resources.files("hotline").joinpath("data/units.toml").read_text("utf-8")
        source = "units.toml (default)"
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise SettingsError(f"units file {path}: {exc.strerror}") from None
        source = str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{source}: not valid TOML: {exc}") from None
    errors = validate_units(doc, source)
    if errors:
        raise SettingsError("; ".join(errors))
    return OrgTree([Unit(code=e["code"], name=e["name"], level=e["level"],
                         parent=e.get("parent"), name_zh=e.get("name_zh")) for e in doc["unit"]])
