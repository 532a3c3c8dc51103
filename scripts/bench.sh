#!/usr/bin/env bash
# Throughput benchmark (a script, not a test): wrk against an authenticated
# GET /mdc/api/v1/clusters/host-cluster/instances/{name} and against /healthz (a static
# hello-world route on the same server), and the ratio of the two.
#
#   scripts/bench.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNECTIONS="${2:-32}"

if ! command -v wrk >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
# LATTICE_BENCH_BIN runs a given binary instead (to compare two builds on one machine).
if [ -n "${LATTICE_BENCH_BIN:-}" ]; then
    BIN="$LATTICE_BENCH_BIN"
else
    swift build -c release --product lattice >/dev/null
    BIN="$(swift build -c release --show-bin-path)/lattice"
fi

DATA="$(mktemp -d)"
TOKEN="bench-admin-token-0123456789"
OUT="$DATA/stdout"
LATTICE_BOOTSTRAP_TOKEN="$TOKEN" "$BIN" serve --port 0 --rate-limit-per-token 0 --rate-limit-per-address 0 --data-dir "$DATA/state" --simulated-delay-scale 0.05 >"$OUT" 2>"$DATA/stderr" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do grep -q "^listening on " "$OUT" && break; sleep 0.1; done
URL="$(sed -n 's/^listening on //p' "$OUT")"

curl -sf -X POST "$URL/mdc/api/v1/admin/users/admin/credit" -H "Authorization: bearer $TOKEN" -d '{"amount":"1000"}' >/dev/null
NAME="$(curl -sf -X POST "$URL/mdc/api/v1/clusters/host-cluster/instances" \
    -H "Authorization: bearer $TOKEN" -H "namespace: admin" -H "Content-Type: application/json" \
    -d '{"Cost":{"CostType":"1","DiskSKUID":"1","GPUSKUID":"66"},"VolumeMount":[{"Size":50}],"namespace":"admin","displayName":"bench","image":"images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')"
sleep 1

rps() { sed -n 's/^Requests\/sec: *//p'; }
echo "cores: $(nproc), connections: $CONNECTIONS, duration: ${DURATION}s, threads: 2"
HELLO="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$URL/healthz" | rps)"
echo "GET /healthz (hello world):             $HELLO req/s"
INSTANCE="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "Authorization: bearer $TOKEN" -H "namespace: admin" \
    "$URL/mdc/api/v1/clusters/host-cluster/instances/$NAME" | rps)"
echo "GET .../instances/$NAME (authenticated): $INSTANCE req/s"
python3 -c "print(f'ratio instance/hello: {float(\"$INSTANCE\") / float(\"$HELLO\"):.2f}')"
