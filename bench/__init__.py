"""Capacity benchmarks of Hotline (issue 7): ``hotline bench <scenario>``."""

from __future__ import annotations

from bench._cli import main

__all__ = ["main"]
