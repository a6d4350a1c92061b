"""The layering of DESIGN.md holds: services never import each other; the kernel imports none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]


def test_import_contracts_hold() -> None:
    """import-linter's contracts from pyproject.toml are kept."""
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, check=False, timeout=120)
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_no_test_doubles_in_product_packages() -> None:
    """mongomock and unittest.mock stay in tests/."""
    offenders = [str(path.relative_to(ROOT)) for package in ("hotline", "intake", "router",
                                                              "casework")
                 for path in (ROOT / package).rglob("*.py")
                 if any(word in path.read_text("utf-8") for word in ("mongomock",
                                                                     "unittest.mock"))]
    assert [] == offenders
