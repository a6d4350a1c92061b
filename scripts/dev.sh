#!/usr/bin/env bash
# Set up (first time) and run Hotline in embedded mode: `./scripts/dev.sh [hotline dev options]`
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" dev
exec "$VENV/bin/hotline" dev "$@"
