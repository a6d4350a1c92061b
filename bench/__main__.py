"""``python -m bench <scenario>`` — the same as ``hotline bench <scenario>``."""

from __future__ import annotations

import sys

from bench._cli import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
