#!/usr/bin/env bash
# Defines setup_engine: installs and starts what the engine driver's tests need and exports
# where they are (LATTICE_TEST_*). Sourced by scripts/test.sh; for a local session,
# `scripts/engine-services.sh FILE` starts them, writes the exports to FILE and stays up.
# A real container engine for the engine driver's tests: Podman's Docker-compatible API
# on a unix socket, and a test image imported from a busybox-static root filesystem.
setup_engine() {
    if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [ ! -x /bin/busybox ] \
        || ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1 \
        || ! command -v socat >/dev/null 2>&1; then
        echo "==> installing podman, runc, busybox-static, docker-registry, apache2-utils (htpasswd) and socat"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc busybox-static docker-registry \
            apache2-utils socat >/dev/null
    fi
    export CONTAINERS_CONF="$PWD/.ci/containers.conf"
    ENGINE_DIR="$(mktemp -d)"
    # A local registry (plain HTTP on loopback, marked insecure for Podman) for snapshot pushes.
    export LATTICE_TEST_REGISTRY="127.0.0.1:5055"
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' \
        "$ENGINE_DIR" "$LATTICE_TEST_REGISTRY" >"$ENGINE_DIR/registry.yml"
    # A second one that wants a user name and password (htpasswd), for registry auth.
    export LATTICE_TEST_AUTH_REGISTRY="127.0.0.1:5056" LATTICE_TEST_AUTH_REGISTRY_USER="lattice"
    export LATTICE_TEST_AUTH_REGISTRY_PASSWORD="test-$RANDOM$RANDOM"
    htpasswd -Bbc "$ENGINE_DIR/htpasswd" "$LATTICE_TEST_AUTH_REGISTRY_USER" "$LATTICE_TEST_AUTH_REGISTRY_PASSWORD" 2>/dev/null
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/auth-registry\nhttp:\n  addr: %s\nauth:\n  htpasswd:\n    realm: lattice-test\n    path: %s/htpasswd\n' \
        "$ENGINE_DIR" "$LATTICE_TEST_AUTH_REGISTRY" "$ENGINE_DIR" >"$ENGINE_DIR/auth-registry.yml"
    printf '[[registry]]\nlocation = "%s"\ninsecure = true\n[[registry]]\nlocation = "%s"\ninsecure = true\n' \
        "$LATTICE_TEST_REGISTRY" "$LATTICE_TEST_AUTH_REGISTRY" >"$ENGINE_DIR/registries.conf"
    export CONTAINERS_REGISTRIES_CONF="$ENGINE_DIR/registries.conf"
    docker-registry serve "$ENGINE_DIR/registry.yml" >"$ENGINE_DIR/registry.log" 2>&1 &
    REGISTRY_PID=$!
    docker-registry serve "$ENGINE_DIR/auth-registry.yml" >"$ENGINE_DIR/auth-registry.log" 2>&1 &
    AUTH_REGISTRY_PID=$!
    export LATTICE_TEST_ENGINE_SOCKET="$ENGINE_DIR/podman.sock"
    podman system service --time=0 "unix://$LATTICE_TEST_ENGINE_SOCKET" >"$ENGINE_DIR/service.log" 2>&1 &
    ENGINE_PID=$!
    trap 'kill $ENGINE_PID $REGISTRY_PID $AUTH_REGISTRY_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        curl -sf --unix-socket "$LATTICE_TEST_ENGINE_SOCKET" http://localhost/_ping >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -sf --unix-socket "$LATTICE_TEST_ENGINE_SOCKET" http://localhost/_ping >/dev/null || {
        echo "podman system service did not start:"; cat "$ENGINE_DIR/service.log"; exit 1; }
    curl -sf "http://$LATTICE_TEST_REGISTRY/v2/" >/dev/null || {
        echo "docker-registry did not start:"; cat "$ENGINE_DIR/registry.log"; exit 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$LATTICE_TEST_AUTH_REGISTRY/v2/")" = 401 ] || {
        echo "the authenticating docker-registry did not start:"; cat "$ENGINE_DIR/auth-registry.log"; exit 1; }
    mkdir -p "$ENGINE_DIR/rootfs/bin" "$ENGINE_DIR/rootfs/root/data" "$ENGINE_DIR/rootfs/tmp"
    cp /bin/busybox "$ENGINE_DIR/rootfs/bin/busybox"
    for applet in sh sleep cat ls echo mkdir touch env rm httpd stty hostname head dd seq nc od tr cut sed sha1sum base64 printf chmod grep kill wget; do ln -sf busybox "$ENGINE_DIR/rootfs/bin/$applet"; done
    tar -C "$ENGINE_DIR/rootfs" -cf "$ENGINE_DIR/rootfs.tar" .
    # The root file system, for tests that run Podman services of their own (several hosts).
    export LATTICE_TEST_ROOTFS="$ENGINE_DIR/rootfs.tar"
    export LATTICE_TEST_IMAGE="localhost/lattice-test:busybox"
    podman import --change 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM; while true; do sleep 1; done"]' \
        "$ENGINE_DIR/rootfs.tar" "$LATTICE_TEST_IMAGE" >/dev/null
    # An image whose command is a shell, as TensorFlow's and PyTorch's are: it ends at once
    # unless Lattice keeps the workload alive.
    export LATTICE_TEST_SHELL_IMAGE="localhost/lattice-test:shell"
    podman import --change 'CMD ["/bin/sh"]' "$ENGINE_DIR/rootfs.tar" "$LATTICE_TEST_SHELL_IMAGE" >/dev/null
    # The same with a stand-in for JupyterLab (SPEC §11): busybox httpd serving under
    # /jupyter on 8888, its page saying how it was started, so tests prove Lattice starts it.
    cp -a "$ENGINE_DIR/rootfs" "$ENGINE_DIR/rootfs-jupyter"
    printf '%s\n' '#!/bin/sh' 'mkdir -p /srv/jupyter/jupyter' \
        'echo "stand-in jupyter $*" > /srv/jupyter/jupyter/index.html' \
        'exec httpd -f -p 8888 -h /srv/jupyter' >"$ENGINE_DIR/rootfs-jupyter/bin/jupyter"
    chmod 755 "$ENGINE_DIR/rootfs-jupyter/bin/jupyter"
    tar -C "$ENGINE_DIR/rootfs-jupyter" -cf "$ENGINE_DIR/rootfs-jupyter.tar" .
    export LATTICE_TEST_JUPYTER_IMAGE="localhost/lattice-test:jupyter"
    podman import --change 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM; while true; do sleep 1; done"]' \
        "$ENGINE_DIR/rootfs-jupyter.tar" "$LATTICE_TEST_JUPYTER_IMAGE" >/dev/null
    # A second host for the multi-host driver's contract suite: a Podman service with a
    # storage root, run root and socket of its own.
    SECOND="$ENGINE_DIR/second"
    mkdir -p "$SECOND"
    SECOND_FLAGS=(--root "$SECOND/root" --runroot "$SECOND/run" --tmpdir "$SECOND/tmp")
    podman "${SECOND_FLAGS[@]}" import --change 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM; while true; do sleep 1; done"]' \
        "$ENGINE_DIR/rootfs.tar" "$LATTICE_TEST_IMAGE" >/dev/null
    export LATTICE_TEST_ENGINE_SOCKET_2="$SECOND/podman.sock"
    podman "${SECOND_FLAGS[@]}" system service --time=0 "unix://$LATTICE_TEST_ENGINE_SOCKET_2" >"$SECOND/service.log" 2>&1 &
    SECOND_PID=$!
    trap 'kill $ENGINE_PID $REGISTRY_PID $AUTH_REGISTRY_PID $SECOND_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        curl -sf --unix-socket "$LATTICE_TEST_ENGINE_SOCKET_2" http://localhost/_ping >/dev/null 2>&1 && break
        sleep 0.2
    done
    echo "==> podman $(podman --version | awk '{print $3}') serving on $LATTICE_TEST_ENGINE_SOCKET"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    setup_engine
    env | grep -E '^(LATTICE_TEST_|CONTAINERS_)' | sed 's/^/export /' >"${1:-/dev/stdout}"
    wait
fi
