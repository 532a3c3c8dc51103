#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests: installed from Debian where missing,
# `initdb` into a temporary directory, started on a free port as the `postgres` user,
# stopped and removed when the calling shell exits. Exports LATTICE_TEST_DATABASE_URL,
# which the store contract suite and the replica tests read.
#
#   source scripts/postgres-service.sh && setup_postgres
#   scripts/postgres-service.sh ENV_FILE     (stays in the foreground; writes the URL to ENV_FILE)

setup_postgres() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "==> installing postgresql"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    fi
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    PG_DIR="$(mktemp -d /tmp/lattice-pg.XXXXXX)"
    chown postgres "$PG_DIR"
    PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    PG_BIN="$bin"
    as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
    as_postgres "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1
    local options="-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400"
    as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -o "$options" start >/dev/null
    as_postgres "$bin/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -q -c \
        "CREATE ROLE lattice LOGIN PASSWORD 'lattice' CREATEDB" -c "CREATE DATABASE lattice OWNER lattice" >/dev/null
    export LATTICE_TEST_DATABASE_URL="postgres://lattice:lattice@127.0.0.1:$PG_PORT/lattice?sslmode=disable"
    # What the outage test needs to stop and start this server again.
    export LATTICE_TEST_PG_DATA="$PG_DIR/data" LATTICE_TEST_PG_BIN="$bin" LATTICE_TEST_PG_OPTIONS="$options"
    local previous
    previous="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
    # shellcheck disable=SC2064
    trap "stop_postgres; ${previous}" EXIT
    echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $PG_PORT ($PG_DIR)"
}

stop_postgres() {
    [ -n "${PG_DIR:-}" ] || return 0
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=""
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    setup_postgres
    {
        echo "export LATTICE_TEST_DATABASE_URL='$LATTICE_TEST_DATABASE_URL'"
        echo "export LATTICE_TEST_PG_DATA='$LATTICE_TEST_PG_DATA' LATTICE_TEST_PG_BIN='$LATTICE_TEST_PG_BIN'"
        echo "export LATTICE_TEST_PG_OPTIONS='$LATTICE_TEST_PG_OPTIONS'"
    } >"${1:-/dev/stdout}"
    while true; do sleep 3600; done
fi
