#!/usr/bin/env bash
# Server CPU per instance lifecycle (a script that prints a figure, never a timed test):
# a release `lattice serve` on the built-in catalog with zero fleet delays; COUNT times,
# from 4 client threads: create, get, list, power_off, power_on, delete, the client
# polling GET every 20 ms until each state is reached. Prints the server's CPU time (from
# /proc/<pid>/stat) divided by COUNT.
#
#   scripts/bench-lifecycle.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-400}"
swift build -c release --product lattice >/dev/null
BIN="$(swift build -c release --show-bin-path)/lattice"
WORK="$(mktemp -d)"
TOKEN="bench-admin-token-0123456789"
LATTICE_BOOTSTRAP_TOKEN="$TOKEN" "$BIN" serve --port 0 --rate-limit-per-token 0 --rate-limit-per-address 0 --data-dir "$WORK/state" --simulated-delay-scale 0 \
    --log-level warning >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do grep -q "^listening on " "$WORK/stdout" && break; sleep 0.05; done
URL="$(sed -n 's/^listening on //p' "$WORK/stdout")"
python3 - "$URL" "$TOKEN" "$PID" "$COUNT" <<'PY'
import concurrent.futures, os, sys, time
import requests
url, token, pid, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
api = url + "/mdc/api/v1"
headers = {"Authorization": f"bearer {token}", "namespace": "admin"}
requests.post(f"{api}/admin/users/admin/credit", json={"amount": "1000000"}, headers=headers).raise_for_status()
body = {"Cost": {"CostType": "1", "DiskSKUID": "1", "GPUSKUID": "66"}, "VolumeMount": [{"Size": 50}],
        "namespace": "admin", "displayName": "bench",
        "image": "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"}
base = f"{api}/clusters/host-cluster/instances"

def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def until(session, name, status, poll=0.02):
    while True:
        r = session.get(f"{base}/{name}", headers=headers)
        if (status is None and r.status_code == 404) or (r.status_code == 200 and r.json()["status"] == status):
            return
        time.sleep(poll)

to_running = []

def lifecycle(_):
    s = requests.Session()
    r = s.post(base, json=body, headers=headers)
    r.raise_for_status()
    name = r.json()["name"]
    created = time.time()
    until(s, name, "Running", poll=0.002)
    to_running.append(time.time() - created)
    s.get(f"{base}?page=1&pageSize=20", headers=headers).raise_for_status()
    s.post(f"{base}/{name}/power_off", json={}, headers=headers).raise_for_status()
    until(s, name, "Stopped")
    s.post(f"{base}/{name}/power_on", headers=headers).raise_for_status()
    until(s, name, "Running")
    s.delete(f"{base}?name={name}", headers=headers).raise_for_status()
    until(s, name, None)

before, started = cpu(), time.time()
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(lifecycle, range(count)))
spent, elapsed = cpu() - before, time.time() - started
print(f"lifecycles: {count} in {elapsed:.1f} s; server CPU {spent:.2f} s = {spent * 1000 / count:.1f} ms per lifecycle")
to_running.sort()
print(f"create answered -> Running seen (polling every 2 ms): median {to_running[len(to_running) // 2] * 1000:.1f} ms, "
      f"p99 {to_running[int(len(to_running) * 0.99)] * 1000:.1f} ms")
PY
