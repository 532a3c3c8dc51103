#!/usr/bin/env bash
# Runs every test of Lattice on a fresh machine: installs what the tests need, builds,
# runs the Swift test suites, then the black-box suite against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Headless Chromium and its driver for the web console's browser tests.
if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    echo "==> installing chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if ! python3 -c "import pytest, requests, selenium" >/dev/null 2>&1; then
    echo "==> installing pytest, requests and selenium"
    python3 -m pip install -q pytest requests selenium
fi

# A real container engine for the engine driver's tests: Podman's Docker-compatible API
# on a unix socket, and a test image imported from a busybox-static root filesystem.
setup_engine() {
    if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [ ! -x /bin/busybox ] \
        || ! command -v docker-registry >/dev/null 2>&1; then
        echo "==> installing podman, runc, busybox-static and docker-registry"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc busybox-static docker-registry >/dev/null
    fi
    export CONTAINERS_CONF="$PWD/.ci/containers.conf"
    ENGINE_DIR="$(mktemp -d)"
    # A local registry (plain HTTP on loopback, marked insecure for Podman) for snapshot pushes.
    export LATTICE_TEST_REGISTRY="127.0.0.1:5055"
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' \
        "$ENGINE_DIR" "$LATTICE_TEST_REGISTRY" >"$ENGINE_DIR/registry.yml"
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$LATTICE_TEST_REGISTRY" >"$ENGINE_DIR/registries.conf"
    export CONTAINERS_REGISTRIES_CONF="$ENGINE_DIR/registries.conf"
    docker-registry serve "$ENGINE_DIR/registry.yml" >"$ENGINE_DIR/registry.log" 2>&1 &
    REGISTRY_PID=$!
    export LATTICE_TEST_ENGINE_SOCKET="$ENGINE_DIR/podman.sock"
    podman system service --time=0 "unix://$LATTICE_TEST_ENGINE_SOCKET" >"$ENGINE_DIR/service.log" 2>&1 &
    ENGINE_PID=$!
    trap 'kill $ENGINE_PID $REGISTRY_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        curl -sf --unix-socket "$LATTICE_TEST_ENGINE_SOCKET" http://localhost/_ping >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -sf --unix-socket "$LATTICE_TEST_ENGINE_SOCKET" http://localhost/_ping >/dev/null || {
        echo "podman system service did not start:"; cat "$ENGINE_DIR/service.log"; exit 1; }
    curl -sf "http://$LATTICE_TEST_REGISTRY/v2/" >/dev/null || {
        echo "docker-registry did not start:"; cat "$ENGINE_DIR/registry.log"; exit 1; }
    mkdir -p "$ENGINE_DIR/rootfs/bin" "$ENGINE_DIR/rootfs/root/data" "$ENGINE_DIR/rootfs/tmp"
    cp /bin/busybox "$ENGINE_DIR/rootfs/bin/busybox"
    for applet in sh sleep cat ls echo mkdir touch env rm; do ln -sf busybox "$ENGINE_DIR/rootfs/bin/$applet"; done
    tar -C "$ENGINE_DIR/rootfs" -cf "$ENGINE_DIR/rootfs.tar" .
    export LATTICE_TEST_IMAGE="localhost/lattice-test:busybox"
    podman import --change 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM; while true; do sleep 1; done"]' \
        "$ENGINE_DIR/rootfs.tar" "$LATTICE_TEST_IMAGE" >/dev/null
    echo "==> podman $(podman --version | awk '{print $3}') serving on $LATTICE_TEST_ENGINE_SOCKET"
}
if [ "${LATTICE_SKIP_ENGINE:-}" != "1" ]; then setup_engine; fi

echo "==> swift format lint --strict"
swift format lint --strict --recursive --parallel Package.swift Sources Tests Examples

echo "==> swift build"
swift build --build-tests
echo "==> swift test"
swift test --skip-build
echo "==> black-box tests"
LATTICE_BIN="$(swift build --show-bin-path)/lattice" python3 -m pytest -q tests/blackbox
