"""The organisation as triage sees it: the unit tree (``hotline.org``) plus leaders.toml."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hotline.org import OrgTree, load_org
from hotline.triage._text import normalise, word_start

__all__ = ["RANKS", "Leader", "OrgDirectory", "validate_leaders"]

RANKS = ("leader", "middle_manager")
_STRIP_SUFFIXES = ("省级公司", "分公司", "公司")


@dataclass(frozen=True)
class Leader:
    """A person on a unit's register of leaders and managers."""

    unit: str
    name: str
    position: str
    rank: str
    employee_id: str | None = None


def validate_leaders(doc: Mapping[str, object], source: str,
                     units: frozenset[str] | None = None) -> list[str]:
    """Every problem of a leaders document, each with its location."""
    errors: list[str] = []
    for key in set(doc) - {"defaults", "aliases", "units"}:
        errors.append(f"{source}: unknown key {key!r}")
    defaults = doc.get("defaults", {})
    if isinstance(defaults, dict):
        by_level = defaults.get("discipline_unit_by_level", {})
        if not isinstance(by_level, dict) or any(v not in ("self", "parent")
                                                 for v in by_level.values()):
            errors.append(f"{source}: defaults.discipline_unit_by_level: values must be "
                          "'self' or 'parent'")
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, dict):
        errors.append(f"{source}: aliases must be a table")
        aliases = {}
    for code, names in aliases.items():
        if units is not None and code not in units:
            errors.append(f"{source}: aliases.{code}: not a unit")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            errors.append(f"{source}: aliases.{code}: must be a list of names")
    table = doc.get("units", {})
    if not isinstance(table, dict):
        return [*errors, f"{source}: units must be a table of [units.CODE]"]
    for code, entry in table.items():
        where = f"{source}: units.{code}"
        if units is not None and code not in units:
            errors.append(f"{where}: not a unit of units.toml")
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table")
            continue
        for key in set(entry) - {"leaders", "discipline_unit"}:
            errors.append(f"{where}: unknown key {key!r}")
        target = entry.get("discipline_unit")
        if target is not None and (not isinstance(target, str)
                                   or (units is not None and target not in units)):
            errors.append(f"{where}.discipline_unit: {target!r} is not a unit")
        people = entry.get("leaders", [])
        if not isinstance(people, list):
            errors.append(f"{where}.leaders: must be a list")
            continue
        for index, person in enumerate(people):
            at = f"{where}.leaders[{index}]"
            if not isinstance(person, dict):
                errors.append(f"{at}: must be a table")
                continue
            for key in ("name", "position"):
                if not isinstance(person.get(key), str) or not person.get(key):
                    errors.append(f"{at}: {key} is required")
            if person.get("rank") not in RANKS:
                errors.append(f"{at}: rank must be one of {', '.join(RANKS)}")
            for key in set(person) - {"name", "position", "rank", "employee_id"}:
                errors.append(f"{at}: unknown key {key!r}")
    return errors


def _read_leaders(path: Path | None) -> dict[str, object]:
    if path is None:
        text = resources.files("hotline").joinpath("data/leaders.toml").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return tomllib.loads(text)


class OrgDirectory:
    """Units, their leaders, discipline units and the names reports call them by."""

    def __init__(self, tree: OrgTree, leaders: Mapping[str, object]) -> None:
        errors = validate_leaders(leaders, "leaders", frozenset(u.code for u in tree))
        if errors:
            raise ValueError("; ".join(errors))
        self.tree = tree
        defaults = leaders.get("defaults", {})
        assert isinstance(defaults, dict)
        self._by_level: dict[str, str] = dict(defaults.get("discipline_unit_by_level", {}))
        table = leaders.get("units", {})
        assert isinstance(table, dict)
        self._discipline: dict[str, str] = {
            code: entry["discipline_unit"] for code, entry in table.items()
            if "discipline_unit" in entry}
        self._people: list[Leader] = [
            Leader(unit=code, name=p["name"], position=p["position"], rank=p["rank"],
                   employee_id=p.get("employee_id"))
            for code, entry in table.items() for p in entry.get("leaders", [])]
        alias_table = leaders.get("aliases", {})
        assert isinstance(alias_table, dict)
        names: dict[str, str] = {}
        for unit in tree:
            candidates = [unit.code, unit.name, *(alias_table.get(unit.code, []))]
            if unit.name_zh:
                candidates.append(unit.name_zh)
                for suffix in _STRIP_SUFFIXES:
                    if unit.name_zh.endswith(suffix) and len(unit.name_zh) > len(suffix) + 1:
                        candidates.append(unit.name_zh.removesuffix(suffix))
                        break
            for candidate in candidates:
                names.setdefault(normalise(candidate), unit.code)
        self._aliases = names
        ordered = sorted(names, key=len, reverse=True)
        self._alias_re = re.compile("|".join(
            (word_start(re.escape(a)) + r"(?![a-z0-9])") if a.isascii() else re.escape(a)
            for a in ordered))
        self._longest_alias = max((len(a) for a in ordered), default=0)

    @classmethod
    def for_tree(cls, tree: OrgTree, leaders_path: Path | None = None) -> OrgDirectory:
        """Directory over an already loaded unit tree (what the router holds)."""
        return cls(tree, _read_leaders(leaders_path))

    @classmethod
    def load(cls, units_path: Path | None = None,
             leaders_path: Path | None = None) -> OrgDirectory:
        """Load units (``hotline.org``) and leaders from files or the packaged defaults."""
        return cls(load_org(units_path), _read_leaders(leaders_path))

    def __contains__(self, code: object) -> bool:
        return code in self.tree

    def level(self, code: str) -> str:
        return self.tree.get(code).level

    def parent(self, code: str) -> str | None:
        return self.tree.parent_of(code)

    def discipline_unit(self, code: str) -> str:
        """The unit whose discipline staff handle matters of ``code``."""
        if code in self._discipline:
            return self._discipline[code]
        if self._by_level.get(self.level(code), "self") == "parent":
            parent = self.parent(code)
            if parent is not None:
                return self.discipline_unit(parent)
        return code

    def leaders_of(self, code: str) -> list[Leader]:
        return [p for p in self._people if p.unit == code]

    def find_person(self, name: str, unit: str | None = None) -> Leader | None:
        """The register entry for ``name`` (employee id or name), preferring ``unit``."""
        wanted = normalise(name)
        matches = [p for p in self._people
                   if wanted in (normalise(p.name), normalise(p.employee_id or "\0"))]
        if unit is not None:
            in_unit = [p for p in matches if p.unit == unit]
            matches = in_unit or matches
        return matches[0] if matches else None

    def resolve_unit(self, text: str | None) -> str | None:
        """A unit code for a unit field: an exact code, or the longest alias it contains."""
        if not text:
            return None
        if text.strip().upper() in self.tree:
            return text.strip().upper()
        match = self._alias_re.search(normalise(text))
        return self._aliases[match.group(0)] if match else None

    def units_near(self, text: str, position: int, window: int = 24) -> str | None:
        """The unit named closest to ``position`` in normalised ``text``, within ``window``."""
        best: tuple[int, int, str] | None = None
        # Only the stretch that can hold a match within the window is searched (one
        # character more each side keeps the word-boundary checks exact).
        low = max(0, position - window - self._longest_alias - 1)
        high = position + window + self._longest_alias + 1
        for match in self._alias_re.finditer(text, low, high):
            distance = min(abs(match.end() - position), abs(match.start() - position))
            if distance > window:
                continue
            candidate = (distance, -len(match.group(0)), self._aliases[match.group(0)])
            if best is None or candidate < best:
                best = candidate
        return best[2] if best else None
