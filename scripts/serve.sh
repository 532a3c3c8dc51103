#!/usr/bin/env bash
# Builds (release) and runs `lattice serve` with the built-in catalog and SQLite under
# ./.lattice; extra arguments go to `lattice serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product lattice
exec "$(swift build -c release --show-bin-path)/lattice" serve "$@"
