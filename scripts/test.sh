#!/usr/bin/env bash
# Runs every test of Lattice on a fresh machine: installs what the tests need, builds,
# runs the Swift test suites, then the black-box suite against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c "import pytest, requests" >/dev/null 2>&1; then
    echo "==> installing pytest and requests"
    python3 -m pip install -q pytest requests
fi

echo "==> swift build"
swift build --build-tests
echo "==> swift test"
swift test --skip-build
echo "==> black-box tests"
LATTICE_BIN="$(swift build --show-bin-path)/lattice" python3 -m pytest -q tests/blackbox
