#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: `./scripts/test.sh [pytest options]`
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" test
cd "$HOTLINE_ROOT"
"$VENV/bin/ruff" check hotline intake router casework tests
"$VENV/bin/lint-imports"
exec "$VENV/bin/pytest" "$@"
