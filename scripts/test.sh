#!/usr/bin/env bash
# Install everything the tests need, then run lint, type checks and the whole test suite,
# then the unit tests again against the lowest dependency versions pyproject allows
# (scripts/test-floor.sh; SKIP_FLOOR=1 leaves that out).
# Works on a fresh Debian machine with Python 3.11 (as root, or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=$(grep -v '^#' scripts/apt-packages.txt | tr '\n' ' ')
missing=""
for pkg in $apt_packages; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends $missing
fi
# Debian's prometheus packages start services on install where systemd runs; the tests
# start their own instances on loopback and never need those.

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

ruff check .
ruff format --check .
mypy --strict exporter grafana tests bench
pytest "$@"
if [ "${SKIP_FLOOR:-0}" != 1 ]; then
  ./scripts/test-floor.sh
fi
