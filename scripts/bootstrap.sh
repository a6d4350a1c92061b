#!/usr/bin/env bash
# Shared set-up for scripts/dev.sh and scripts/test.sh: a virtualenv in .venv with Hotline
# installed (editable), plus the Debian packages the chosen task needs.
# Usage: source scripts/bootstrap.sh [dev|test]
set -euo pipefail
HOTLINE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${HOTLINE_VENV:-$HOTLINE_ROOT/.venv}"

need_apt=()
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "Hotline needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)." >&2
  exit 2
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  need_apt+=(python3-venv)
fi
if [ "${1:-dev}" = "test" ]; then
  # Real parts the integration and browser tests start themselves.
  command -v rabbitmq-server >/dev/null 2>&1 || need_apt+=(rabbitmq-server)
  command -v dovecot >/dev/null 2>&1 || need_apt+=(dovecot-imapd)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  # A CJK font, so screenshots of the Chinese pages show text, not boxes, and the quarterly
  # PDF embeds it (casework/dashboard_pdf.py; production: deploy/README.md).
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "Please install these Debian packages first: ${need_apt[*]}" >&2
    exit 2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ "${1:-dev}" = "test" ]; then
  "$VENV/bin/python" -m pip install --quiet -e "$HOTLINE_ROOT[test]"
else
  "$VENV/bin/python" -m pip install --quiet -e "$HOTLINE_ROOT"
fi
