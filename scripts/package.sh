#!/usr/bin/env bash
# Builds the release packages of Lattice into dist/, none of which needs Swift to run:
#
#   lattice-<version>-linux-<arch>.tar.gz   the binary (Swift's runtime linked in), the
#                                           lattice-commit helper, docs, an example catalog,
#                                           the systemd unit
#   lattice_<version>_<arch>.deb            /usr/bin/lattice and the lattice.service unit
#   lattice-<version>-oci.tar               an OCI image (`podman load -i`), built from the
#                                           binary and the few libraries it needs; nothing pulled
#
#   scripts/package.sh            build, then package
#   scripts/package.sh --check    also check the packages (scripts/check-packages.sh)
#
# The build has a scratch directory of its own (.build/package), so it leaves the debug
# and benchmark builds alone. SOURCE_DATE_EPOCH (default: the last commit's time) dates
# every file, so the same commit gives the same image.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v strip >/dev/null 2>&1 || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
scratch=.build/package
echo "==> swift build -c release --static-swift-stdlib (scratch: $scratch)"
swift build -c release --static-swift-stdlib --product lattice --scratch-path "$scratch"
built="$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/lattice"

version="$("$built" --version)"
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
dist=dist
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$dist"

# The binary, stripped of its symbols (they are most of its size).
strip -o "$stage/lattice" "$built"
if ldd "$stage/lattice" | grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime'; then
    echo "error: the binary still links Swift's runtime dynamically (above)" >&2
    exit 1
fi
# The shared libraries it does link (the C library and the C++ runtime), as paths.
libraries=$(ldd "$stage/lattice" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)

echo "==> $dist/lattice-$version-linux-$arch.tar.gz"
tree="$stage/lattice-$version-linux-$arch"
mkdir -p "$tree/bin" "$tree/share/doc/lattice" "$tree/share/lattice" "$tree/systemd"
cp "$stage/lattice" "$tree/bin/lattice"
cp deploy/committer/lattice-commit "$tree/bin/lattice-commit"
cp README.md docs/*.md "$tree/share/doc/lattice/"
cp docs/catalog.example.yaml "$tree/share/lattice/catalog.example.yaml"
cp deploy/systemd/lattice.service deploy/systemd/lattice.env "$tree/systemd/"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$stage" -czf "$dist/lattice-$version-linux-$arch.tar.gz" "lattice-$version-linux-$arch"

echo "==> $dist/lattice_${version}_$arch.deb"
deb="$stage/deb"
mkdir -p "$deb/DEBIAN" "$deb/usr/bin" "$deb/usr/lib/systemd/system" "$deb/etc/lattice" \
    "$deb/usr/share/doc/lattice" "$deb/usr/share/lattice" "$deb/usr/libexec/lattice"
install -m 0755 "$stage/lattice" "$deb/usr/bin/lattice"
install -m 0755 deploy/committer/lattice-commit "$deb/usr/libexec/lattice/lattice-commit"
install -m 0644 deploy/systemd/lattice.service "$deb/usr/lib/systemd/system/lattice.service"
install -m 0640 deploy/systemd/lattice.env "$deb/etc/lattice/lattice.env"
install -m 0644 README.md docs/*.md "$deb/usr/share/doc/lattice/"
install -m 0644 docs/catalog.example.yaml "$deb/usr/share/lattice/catalog.example.yaml"
# The packages that hold the libraries the binary links, each at least at the version
# it was built against.
depends=()
for library in $libraries; do
    owner="$(dpkg -S "$(readlink -f "$library")" 2>/dev/null || dpkg -S "$library" 2>/dev/null || true)"
    package="${owner%%:*}"
    [ -n "$package" ] || continue
    upstream="$(dpkg-query -W -f='${Version}' "$package" | sed 's/-[^-]*$//')"
    depends+=("$package (>= $upstream)")
done
depends_line="$(printf '%s\n' "${depends[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')"
size="$(du -sk "$deb" | cut -f1)"
cat >"$deb/DEBIAN/control" <<EOF
Package: lattice
Version: $version
Architecture: $arch
Maintainer: Lattice <lattice@localhost>
Depends: ${depends_line:-libc6}, adduser
Recommends: podman | docker.io, node-xterm, libjs-xterm
Installed-Size: $size
Section: net
Priority: optional
Homepage: https://github.com/lattice-cloud/lattice
Description: self-hostable GPU cloud control plane
 Lattice serves a GPU cloud's Computing API (tokens, regions, GPU SKUs with
 prices and inventory, instances with a data disk, JupyterLab, Tensorboard and
 SSH access), schedules instances onto GPU servers through Docker, Podman or
 Kubernetes, and bills them by the second. "lattice host init" prepares this
 server; "systemctl start lattice" runs it.
EOF
echo /etc/lattice/lattice.env >"$deb/DEBIAN/conffiles"
cat >"$deb/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# The service's own user; it may use Docker's socket when Docker is installed.
set -e
if [ "$1" = configure ]; then
    if ! getent passwd lattice >/dev/null; then
        adduser --system --group --home /var/lib/lattice --no-create-home --quiet lattice
    fi
    if getent group docker >/dev/null; then adduser --quiet lattice docker; fi
    chgrp lattice /etc/lattice/lattice.env
    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
fi
EOF
cat >"$deb/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop lattice.service >/dev/null 2>&1 || true
fi
EOF
cat >"$deb/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# The state (/var/lib/lattice) is kept on purge too: it holds tenants' money.
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
EOF
chmod 0755 "$deb/DEBIAN/postinst" "$deb/DEBIAN/prerm" "$deb/DEBIAN/postrm"
find "$deb" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$deb" "$dist/lattice_${version}_$arch.deb" >/dev/null

echo "==> $dist/lattice-$version-oci.tar"
rootfs="$stage/rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/var/lib/lattice" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
cp "$stage/lattice" "$rootfs/usr/bin/lattice"
for library in $libraries; do
    mkdir -p "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nlattice:x:65532:65532:lattice:/var/lib/lattice:/sbin/nologin\n' \
    >"$rootfs/etc/passwd"
printf 'root:x:0:\nlattice:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
# Certificates for TLS to engines, registries and PostgreSQL; zone data for --timezone.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
fi
if [ -d /usr/share/zoneinfo ]; then
    mkdir -p "$rootfs/usr/share"
    cp -rL /usr/share/zoneinfo "$rootfs/usr/share/zoneinfo"
fi
# xterm.js for the console's web terminal (Debian's node-xterm and libjs-xterm's stylesheet).
if [ -d /usr/share/nodejs/xterm/lib ]; then
    mkdir -p "$rootfs/usr/share/nodejs/xterm/css"
    cp -rL /usr/share/nodejs/xterm/lib "$rootfs/usr/share/nodejs/xterm/lib"
    cp -L /usr/share/javascript/xterm/xterm.css "$rootfs/usr/share/nodejs/xterm/css/" 2>/dev/null || true
fi
python3 scripts/oci-image.py "$rootfs" "$dist/lattice-$version-oci.tar" --ref "lattice:$version" --arch "$arch" \
    --chown var/lib/lattice=65532:65532 --port 8080/tcp --port 2222/tcp \
    --cmd=serve --cmd=--host=0.0.0.0 --cmd=--data-dir=/var/lib/lattice -- /usr/bin/lattice

ls -l "$dist"
if [ "${1:-}" = --check ]; then scripts/check-packages.sh "$dist" "$version" "$arch"; fi
