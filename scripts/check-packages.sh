#!/usr/bin/env bash
# Checks what scripts/package.sh wrote, the way an operator would use it:
#
#   scripts/check-packages.sh DIST VERSION ARCH
#
# - the tarball's binary links no Swift runtime and answers --version;
# - the systemd unit passes `systemd-analyze verify`;
# - the .deb says what it is, installs into a throwaway root, and `lattice serve` runs from
#   there with nothing else on the library path, answering /healthz with its version;
# - the OCI image loads into Podman, runs as its own non-root user, and answers /healthz;
# - deploy/kubernetes names that image's version.
set -euo pipefail
dist="$1" version="$2" arch="$3"
work="$(mktemp -d)"
server=""
container=""
cleanup() {
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    [ -z "$container" ] || podman rm -f "$container" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "error: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits for /healthz at $1 and checks that it names this version.
healthz() {
    local body=""
    for _ in $(seq 1 150); do
        body="$(curl -sf "$1/healthz" 2>/dev/null)" && break
        sleep 0.2
    done
    python3 -c 'import json,sys; b=json.loads(sys.argv[1]); assert b=={"status":"ok","version":sys.argv[2]}, b' \
        "$body" "$version" || fail "$1/healthz answered '$body'"
    echo "    $1/healthz: $body"
}

echo "==> tarball"
tar -C "$work" -xzf "$dist/lattice-$version-linux-$arch.tar.gz"
tree="$work/lattice-$version-linux-$arch"
for file in bin/lattice bin/lattice-commit share/lattice/catalog.example.yaml systemd/lattice.service \
    share/doc/lattice/operations.md; do
    [ -e "$tree/$file" ] || fail "the tarball has no $file"
done
if ldd "$tree/bin/lattice" | grep -E 'libswift|libFoundation|libdispatch'; then
    fail "the binary links Swift's runtime dynamically"
fi
[ "$(env -i "$tree/bin/lattice" --version)" = "$version" ] || fail "lattice --version is not $version"
echo "    bin/lattice $version, links: $(ldd "$tree/bin/lattice" | awk '{print $1}' | xargs)"

echo "==> systemd-analyze verify lattice.service"
# verify wants the unit's binary at its path: check a copy that names the unpacked one.
mkdir -p "$work/unit"
sed "s|/usr/bin/lattice|$tree/bin/lattice|" "$tree/systemd/lattice.service" >"$work/unit/lattice.service"
if ! verify="$(systemd-analyze verify "$work/unit/lattice.service" 2>&1)" || [ -n "$verify" ]; then
    printf '%s\n' "$verify"
    fail "systemd-analyze verify found the above"
fi
echo "    clean"

echo "==> .deb"
deb="$dist/lattice_${version}_$arch.deb"
dpkg-deb --info "$deb" >"$work/info"
grep -q "^ Package: lattice$" "$work/info" || fail "the .deb is not the lattice package"
grep -q "^ Version: $version$" "$work/info" || fail "the .deb is not version $version"
grep "^ Depends:" "$work/info"
contents="$(dpkg-deb --contents "$deb")"
for file in ./usr/bin/lattice ./usr/lib/systemd/system/lattice.service ./etc/lattice/lattice.env \
    ./usr/libexec/lattice/lattice-commit ./usr/share/lattice/catalog.example.yaml; do
    printf '%s\n' "$contents" | grep -q " $file$" || fail "the .deb has no $file"
done
[ "$(dpkg-deb --field "$deb" Package)" = lattice ]
dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q conffiles || fail "the .deb marks no conffiles"
root="$work/root"
dpkg-deb -x "$deb" "$root"
port="$(free_port)"
mkdir -p "$work/state"
env -i HOME="$work" PATH=/usr/bin:/bin "$root/usr/bin/lattice" serve --port "$port" --data-dir "$work/state" \
    >"$work/serve.log" 2>&1 &
server=$!
healthz "http://127.0.0.1:$port"
kill "$server"
wait "$server" 2>/dev/null || true
server=""
[ -s "$work/state/bootstrap.json" ] || fail "lattice serve from the .deb wrote no bootstrap token"

echo "==> OCI image"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/.ci/containers.conf}"
podman load -q -i "$dist/lattice-$version-oci.tar"
podman image exists "lattice:$version" || podman image exists "localhost/lattice:$version" \
    || fail "podman load did not name the image lattice:$version"
port="$(free_port)"
container="lattice-package-check-$$"
podman run -d --name "$container" --network host "localhost/lattice:$version" \
    serve --host 127.0.0.1 --port "$port" --data-dir /var/lib/lattice >/dev/null
healthz "http://127.0.0.1:$port" || { podman logs "$container"; exit 1; }
user="$(podman exec "$container" /usr/bin/lattice --version >/dev/null && podman inspect -f '{{.Config.User}}' "$container")"
[ "$user" = "65532:65532" ] || fail "the image runs as '$user', not its own user"
echo "    runs as $user"
podman rm -f "$container" >/dev/null
container=""
grep -q "newTag: \"$version\"" deploy/kubernetes/base/kustomization.yaml \
    || fail "deploy/kubernetes/base/kustomization.yaml does not name the image of version $version"
echo "==> packages check out"
