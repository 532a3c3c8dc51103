#!/usr/bin/env bash
# Runs every test of Lattice on a fresh machine: installs what the tests need, builds,
# runs the Swift test suites, then the black-box suite against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# Real SSH clients for the SSH gateway's tests.
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v sshpass >/dev/null 2>&1 || need_apt+=(sshpass)
# Network namespaces and nftables for the SSH gateway's redirect mode (test_ssh_redirect.py).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
# Prometheus scrapes the server in the black-box tests; promtool checks the alert rules.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# The release packages: dpkg-deb builds the .deb, systemd-analyze checks its unit.
command -v dpkg-deb >/dev/null 2>&1 || need_apt+=(dpkg)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v strip >/dev/null 2>&1 || need_apt+=(binutils)
# Certificates for the TLS tests, and Caddy as the TLS front proxy of test_front_proxy.py.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
# xterm.js for the console's web terminal (Debian's CommonJS modules and stylesheet).
[ -f /usr/share/nodejs/xterm/lib/public/Terminal.js ] || need_apt+=(node-xterm libjs-xterm)
# CJK glyphs for the console's screenshots (tenants name things in Chinese).
[ -d /usr/share/fonts/opentype/noto ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need_apt+=(fonts-noto-cjk)
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Headless Chromium and its driver for the web console's browser tests.
if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    echo "==> installing chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if ! python3 -c "import pytest, pytest_timeout, requests, selenium, schemathesis, pexpect, websocket" >/dev/null 2>&1; then
    echo "==> installing pytest, pytest-timeout, requests, selenium, schemathesis, pexpect and websocket-client"
    python3 -m pip install -q pytest pytest-timeout requests selenium schemathesis pexpect websocket-client
fi

# A real container engine and two registries for the engine driver's tests (set-up in
# scripts/engine-services.sh). LATTICE_SKIP_ENGINE=1 leaves them out on a machine without
# Podman; with CI set, the suites then fail rather than pass without testing the engine.
source scripts/engine-services.sh
if [ "${LATTICE_SKIP_ENGINE:-}" != "1" ]; then setup_engine; fi
# A throwaway PostgreSQL server (scripts/postgres-service.sh): the store contract suite
# and a black-box pass run on it too.
source scripts/postgres-service.sh
setup_postgres

echo "==> Kubernetes manifests (kubectl kustomize, kubernetes-validate --strict)"
scripts/validate-manifests.sh

echo "==> alert rules (promtool check rules, promtool test rules)"
promtool check rules deploy/prometheus/lattice-alerts.yml
(cd deploy/prometheus && promtool test rules lattice-alerts.test.yml)

echo "==> swift format lint --strict"
swift format lint --strict --recursive --parallel Package.swift Sources Tests Examples

echo "==> swift build"
swift build --build-tests
echo "==> swift test"
# Every object the Kubernetes driver sends to the fake API server (unit and black-box
# tests) is written here, and validated after the black-box tests.
export LATTICE_K8S_OBJECTS_DIR="$(mktemp -d)"
swift test --skip-build
echo "==> black-box tests"
LATTICE_BIN="$(swift build --show-bin-path)/lattice" python3 -m pytest -q -rs tests/blackbox
echo "==> every object the Kubernetes driver sent (kubernetes-validate --strict)"
scripts/validate-manifests.sh "$LATTICE_K8S_OBJECTS_DIR"/*.json
echo "==> black-box tests on PostgreSQL"
LATTICE_BLACKBOX_STORE=postgres LATTICE_BIN="$(swift build --show-bin-path)/lattice" python3 -m pytest -q -rs \
    tests/blackbox/test_seed_examples.py tests/blackbox/test_lifecycle.py tests/blackbox/test_billing.py \
    tests/blackbox/test_auth_tenancy.py tests/blackbox/test_capacity.py tests/blackbox/test_hardening.py \
    tests/blackbox/test_bad_input.py tests/blackbox/test_cli.py tests/blackbox/test_gateways.py \
    tests/blackbox/test_kubernetes.py
echo "==> schemathesis: every operation of /openapi.json, all checks"
LATTICE_BIN="$(swift build --show-bin-path)/lattice" python3 tests/fuzz/run.py --max-examples 25
echo "==> release packages: build them and install each as an operator would (scripts/package.sh --check)"
scripts/package.sh --check
