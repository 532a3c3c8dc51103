#!/usr/bin/env bash
# Scale benchmark (a script that prints figures, never a timed test): a release
# `lattice serve` on a generated catalog of NODES simulated nodes with zero start/stop
# delays; INSTANCES creates through wrk with a Lua POST script; a quiet period; then
# `wrk --latency` on a list page and on one instance. Prints creates/s, list p50/p99,
# get p99, idle server CPU (from /proc/<pid>/stat) and RSS, and the time to `listening`
# after a restart with everything in the store.
#
#   scripts/bench-scale.sh NODES INSTANCES [GPUS_PER_NODE]
#   STOPPED=40000 scripts/bench-scale.sh 10000 60000     (100,000 instances in the store)
#   DATABASE_URL=postgres://... scripts/bench-scale.sh 10000 10000   (on an empty PostgreSQL database)
#   POLICIES=1 scripts/bench-scale.sh 10000 10000   (each instance with a scheduled stop a year
#                                                    ahead and an idle stop of a week, SPEC §12)
#   LATTICE_BENCH_BIN=.build/debug/lattice ...        (that binary instead of a release build)
#
# One public host has 64,512 usable SSH ports, and every running instance holds one:
# INSTANCES above that are refused by the server (409), and the script says how many it
# got. STOPPED=N first creates N instances and powers them off (a Stopped instance holds
# no port and no GPU), so the store can hold more instances than there are ports; the
# figures are then for N Stopped plus INSTANCES Running.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES="${1:?usage: bench-scale.sh NODES INSTANCES [GPUS_PER_NODE]}"
INSTANCES="${2:?usage: bench-scale.sh NODES INSTANCES [GPUS_PER_NODE]}"
GPUS="${3:-8}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
# After the creates: time for the meter's first look at every new segment (it runs every
# 10 s) before the quiet server is measured.
QUIET_SECONDS="${QUIET_SECONDS:-15}"
STOPPED="${STOPPED:-0}"
DATABASE_ARGS=()
[ -n "${DATABASE_URL:-}" ] && DATABASE_ARGS=(--database-url "$DATABASE_URL")

if ! command -v wrk >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -n "${LATTICE_BENCH_BIN:-}" ]; then
    BIN="$(cd "$(dirname "$LATTICE_BENCH_BIN")" && pwd)/$(basename "$LATTICE_BENCH_BIN")"
else
    swift build -c release --product lattice >/dev/null
    BIN="$(swift build -c release --show-bin-path)/lattice"
fi

WORK="$(mktemp -d)"
TOKEN="bench-admin-token-0123456789"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

python3 - "$NODES" "$GPUS" >"$WORK/catalog.yaml" <<'PY'
import sys
nodes, gpus = int(sys.argv[1]), int(sys.argv[2])
print("""regions:
  - id: bench-region
    name: bench
    harborAddr: images.bench.local
    clusters:
      - name: bench
        driver: simulated
        startDelaySeconds: 0
        stopDelaySeconds: 0
        nodes:""")
for i in range(nodes):
    print(f"          - {{name: n{i:05d}, gpuModel: 4090, gpuCount: {gpus}, cpuCores: {gpus * 16}, memoryGiB: {gpus * 128}}}")
print("""gpuSkus:
  - {id: "g1", name: "4090", regionID: bench-region, clusterName: bench, gpuModel: "4090", gpuCount: 1, cpuCores: 16, memoryGiB: 128, sellingType: 1, price: "1"}
diskSkus:
  - {id: "1", type: shared-filesystem, pricePerGBDay: "0.01"}
images:
  - name: images.bench.local/matrixdc/ubuntu:22.04""")
PY

# The server gives per-port SSH listeners 3/8 of its open-file limit (DescriptorBudget):
# under this machine's 20,000 that is 7,404 Running instances. The SSH gateway therefore
# runs in its firewall-redirect mode (one listener for the whole range, docs/access.md),
# as a large fleet's would, unless SSH_LISTENERS=per-port.
SSH_ARGS=()
if [ "${SSH_LISTENERS:-redirect}" = redirect ]; then
    REDIRECT_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    SSH_ARGS=(--ssh-gateway-redirect-port "$REDIRECT_PORT")
fi
echo "open-file limit:     $(ulimit -Sn); SSH listeners: ${SSH_LISTENERS:-redirect}"

start_server() {
    : >"$WORK/stdout"
    local started
    started=$(date +%s.%N)
    LATTICE_BOOTSTRAP_TOKEN="$TOKEN" "$BIN" serve --port 0 --rate-limit-per-token 0 --rate-limit-per-address 0 --data-dir "$WORK/state" --catalog "$WORK/catalog.yaml" \
        --ssh-ports 1024-65535 --log-level warning "${DATABASE_ARGS[@]}" "${SSH_ARGS[@]}" \
        >"$WORK/stdout" 2>>"$WORK/stderr" &
    PID=$!
    for _ in $(seq 1 6000); do grep -q "^listening on " "$WORK/stdout" && break; sleep 0.01; done
    URL="$(sed -n 's/^listening on //p' "$WORK/stdout")"
    STARTUP=$(python3 -c "print(f'{$(date +%s.%N) - $started:.2f}')")
}

# CPU seconds (user + system) the server has used so far.
cpu_seconds() {
    python3 -c "
import os
fields = open('/proc/$PID/stat').read().rsplit(')', 1)[1].split()
print((int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK'))"
}
# CPU seconds of every local PostgreSQL process (the server and its backends), when the
# database runs on this machine: the part of a create's cost the server's own figure misses.
db_cpu_seconds() {
    python3 -c "
import os
total = 0
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if open(f'/proc/{pid}/comm').read().strip() != 'postgres':
            continue
        fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    except OSError:
        continue
    total += int(fields[11]) + int(fields[12])
print(total / os.sysconf('SC_CLK_TCK'))"
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$PID/status"; }

start_server
AUTH=(-H "Authorization: bearer $TOKEN" -H "namespace: admin" -H "Content-Type: application/json")
curl -sf -X POST "$URL/mdc/api/v1/admin/users/admin/credit" "${AUTH[@]}" -d '{"amount":"100000000"}' >/dev/null

BODY='{"Cost":{"CostType":"1","DiskSKUID":"1","GPUSKUID":"g1"},"VolumeMount":[{"Size":50}],"namespace":"admin","displayName":"bench","image":"images.bench.local/matrixdc/ubuntu:22.04"}'
if [ -n "${POLICIES:-}" ]; then
    AHEAD="$(date -u -d '+1 year' +%Y-%m-%dT%H:%M:%SZ)"
    BODY="${BODY%\}},\"ScheduleStopTimestamp\":\"$AHEAD\",\"idleStop\":{\"afterMinutes\":10080}}"
fi
cat >"$WORK/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Authorization"] = "bearer $TOKEN"
wrk.headers["namespace"] = "admin"
wrk.headers["Content-Type"] = "application/json"
LUA

count() {
    curl -sf "${AUTH[@]}" "$URL/mdc/api/v1/clusters/bench/instances?page=1&pageSize=1" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalCount"])'
}

if [ -n "${DATABASE_URL:-}" ]; then echo "store: PostgreSQL"; else echo "store: SQLite"; fi
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); nodes: $NODES x $GPUS GPUs; instances asked: $INSTANCES running + $STOPPED stopped; policies: ${POLICIES:-none}; binary: $BIN"

# Creates through wrk until the store holds $1 instances (or stops growing).
create_until() {
    wrk -t2 -c16 -d3600s -s "$WORK/create.lua" "$URL/mdc/api/v1/clusters/bench/instances" >/dev/null 2>&1 &
    WRK=$!
    CREATED=0
    LAST=""
    while kill -0 "$WRK" 2>/dev/null; do
        CREATED=$(count)
        [ "$CREATED" -ge "$1" ] && break
        # stop when the store stops growing (capacity or SSH ports exhausted)
        if [ "$LAST" = "$CREATED" ]; then break; fi
        LAST=$CREATED
        sleep 1
    done
    kill "$WRK" 2>/dev/null || true
    wait "$WRK" 2>/dev/null || true
}

if [ "$STOPPED" -gt 0 ]; then
    create_until "$STOPPED"
    python3 - "$URL" "$TOKEN" <<'PY'
import concurrent.futures, sys, threading, time
import requests
url, token = sys.argv[1], sys.argv[2]
api = url + "/mdc/api/v1/clusters/bench/instances"
headers = {"Authorization": f"bearer {token}", "namespace": "admin"}
session = requests.Session()
names, page = [], 1
while True:
    body = session.get(api, params={"page": page, "pageSize": 100}, headers=headers).json()
    names += [n["name"] for n in body["nodes"]]
    if not body["hasNextPage"]:
        break
    page += 1
started = time.time()
local = threading.local()
def stop(name):
    if not hasattr(local, "session"):
        local.session = requests.Session()
    for _ in range(50):
        r = local.session.post(f"{api}/{name}/power_off", json={"gracePeriodSeconds": 0}, headers=headers)
        if r.status_code == 200:
            return
        time.sleep(0.2)  # still Creating: wait for Running
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(stop, names))
print(f"stopped:             {len(names)} power_offs in {time.time() - started:.0f} s")
PY
    for _ in $(seq 1 1200); do
        DOWN=$(curl -sf "$URL/metrics" | awk '/^lattice_instances\{status="Stopped"\}/ {print $2}')
        [ "${DOWN:-0}" -ge "$STOPPED" ] && break
        sleep 0.5
    done
fi
BASE=$(count)
# wrk runs until it is stopped: the script stops it once the store holds INSTANCES, and
# times that itself (wrk's own rate would count the time after the last create).
CPU0=$(cpu_seconds)
DB0=$(db_cpu_seconds)
T0=$(date +%s.%N)
create_until $((BASE + INSTANCES))
T1=$(date +%s.%N)
CPU1=$(cpu_seconds)
DB1=$(db_cpu_seconds)
CREATED=$(count)
NEW=$((CREATED - BASE))
echo "creates/s:           $(python3 -c "print(f'{$NEW / ($T1 - $T0):.0f}')") (instances in store: $CREATED)"
echo "server CPU/create:   $(python3 -c "print(f'{($CPU1 - $CPU0) * 1000 / max($NEW, 1):.2f} ms')")"
if [ -n "${DATABASE_URL:-}" ] && [ "$DB1" != "0.0" ]; then
    echo "database CPU/create: $(python3 -c "print(f'{($DB1 - $DB0) * 1000 / max($NEW, 1):.2f} ms')") (local postgres processes)"
fi

# Let the reconciler settle every create, then measure a quiet server.
for _ in $(seq 1 600); do
    RUNNING=$(curl -sf "$URL/metrics" | awk '/^lattice_instances\{status="Running"\}/ {print $2}')
    RUNNING="${RUNNING%.*}"
    # creates that were in flight when wrk stopped land after the count: at least NEW
    [ "${RUNNING:-0}" -ge "$NEW" ] && break
    sleep 0.5
done
echo "running:             ${RUNNING:-0}"
sleep "$QUIET_SECONDS"
IDLE0=$(cpu_seconds)
sleep "$IDLE_SECONDS"
IDLE1=$(cpu_seconds)
echo "idle server CPU:     $(python3 -c "print(f'{($IDLE1 - $IDLE0) * 100 / $IDLE_SECONDS:.2f} % of a core')") over ${IDLE_SECONDS}s"
echo "RSS:                 $(rss_mb) MB"

NAME=$(curl -sf "${AUTH[@]}" "$URL/mdc/api/v1/clusters/bench/instances?page=1&pageSize=1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["name"])')
latency() { awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /^Requests\/sec/ {rps=$2} END {print "p50 " p50 ", p99 " p99 ", " rps " req/s"}'; }
echo "list page 1 (20):    $(wrk -t2 -c16 -d10s --latency "${AUTH[@]}" "$URL/mdc/api/v1/clusters/bench/instances?page=1&pageSize=20" | latency)"
echo "get one instance:    $(wrk -t2 -c16 -d10s --latency "${AUTH[@]}" "$URL/mdc/api/v1/clusters/bench/instances/$NAME" | latency)"

kill "$PID"
wait "$PID" 2>/dev/null || true
start_server
echo "restart to listening: ${STARTUP} s with $CREATED instances; RSS $(rss_mb) MB"
