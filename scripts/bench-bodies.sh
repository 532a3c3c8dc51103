#!/usr/bin/env bash
# Request-body benchmark (prints figures, never a timed test): server CPU per answer for
# hostile and ordinary bodies against a release `lattice serve`, measured from
# /proc/<pid>/stat over many requests of each kind.
#
#   scripts/bench-bodies.sh [REQUESTS_PER_KIND]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-200}"
swift build -c release --product lattice >/dev/null
BIN="$(swift build -c release --show-bin-path)/lattice"
WORK="$(mktemp -d)"
TOKEN="bench-admin-token-0123456789"
LATTICE_BOOTSTRAP_TOKEN="$TOKEN" "$BIN" serve --port 0 --rate-limit-per-token 0 --rate-limit-per-address 0 \
    --data-dir "$WORK/state" --simulated-delay-scale 0 --log-level warning >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do grep -q "^listening on " "$WORK/stdout" && break; sleep 0.05; done
URL="$(sed -n 's/^listening on //p' "$WORK/stdout")"
python3 - "$URL" "$TOKEN" "$PID" "$COUNT" <<'PY'
import json, os, sys
import requests
url, token, pid, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
headers = {"Authorization": f"bearer {token}", "namespace": "admin", "Content-Type": "application/json"}
path = url + "/mdc/api/v1/clusters/host-cluster/instances"

def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

seed = json.dumps({"Cost": {"CostType": "1", "DiskSKUID": "1", "GPUSKUID": "66"},
                   "VolumeMount": [{"Size": 50}], "namespace": "admin", "displayName": "x", "image": "bad image"})
kinds = {
    "12 kB nested 500 deep": ("[" * 500 + "]" * 500) * 12,
    "1 kB nested 500 deep": "[" * 500 + "]" * 500,
    "deep objects, 12 kB": '{"a":' * 2000 + "1" + "}" * 2000,
    "seed body (refused: image)": seed,
    "1 MiB flat array": "[" + ",".join(["1"] * 500_000) + "]",
    "1 MiB of one string": json.dumps({"displayName": "x" * 1_040_000}),
}
session = requests.Session()
n = count
print(f"server CPU per answer over {n} requests of each kind (ms):")
for name, body in kinds.items():
    data = body.encode()
    before = cpu()
    statuses = set()
    for _ in range(n if len(data) < 100_000 else max(10, n // 10)):
        statuses.add(session.post(path, data=data, headers=headers).status_code)
    done = n if len(data) < 100_000 else max(10, n // 10)
    print(f"  {name:28} {(cpu() - before) * 1000 / done:7.2f}   (status {sorted(statuses)}, {len(data)} bytes)")
PY
