#!/usr/bin/env bash
# Renders the Kubernetes manifests (deploy/kubernetes and its postgres overlay) with
# `kubectl kustomize` and validates every object with `kubernetes-validate --strict`
# against a current Kubernetes version. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.34.0}"
if ! command -v kubectl >/dev/null 2>&1; then
    echo "==> installing kubernetes-client (kubectl)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "==> installing kubernetes-validate"
    python3 -m pip install -q kubernetes-validate
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
kubectl kustomize deploy/kubernetes >"$OUT/base.yaml" 2>"$OUT/base.err" || { cat "$OUT/base.err"; exit 1; }
# The overlay reads two files an operator writes (a database URL and a host key): render a
# copy with stand-ins.
cp -r deploy/kubernetes "$OUT/tree"
cp "$OUT/tree/overlays/postgres/database.env.example" "$OUT/tree/overlays/postgres/database.env"
printf 'lattice ssh gateway host key (ed25519, base64 seed)\n%s\n' "$(head -c 32 /dev/urandom | base64)" \
    >"$OUT/tree/overlays/postgres/ssh_host_ed25519_key"
kubectl kustomize "$OUT/tree/overlays/postgres" >"$OUT/postgres.yaml" 2>"$OUT/postgres.err" \
    || { cat "$OUT/postgres.err"; exit 1; }
kubernetes-validate --strict --quiet -k "$KUBERNETES_VERSION" "$OUT/base.yaml" "$OUT/postgres.yaml" "$@"
echo "manifests valid for Kubernetes $KUBERNETES_VERSION: $(grep -c '^kind:' "$OUT/base.yaml") objects (base), $(grep -c '^kind:' "$OUT/postgres.yaml") (postgres overlay), $# more files"
