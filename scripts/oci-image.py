#!/usr/bin/env python3
"""Writes an OCI image archive (`podman load -i FILE`) from a root filesystem directory,
with nothing pulled: one layer, a config and a manifest, as the OCI image layout says
(https://github.com/opencontainers/image-spec/blob/main/image-layout.md).

    oci-image.py ROOTFS OUT.tar --ref lattice:0.2.0 --cmd serve ... -- /usr/bin/lattice

Files are owned by root and dated at SOURCE_DATE_EPOCH (or 0), so the same root filesystem
always gives the same digests.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile


def deterministic_tar(root, mtime, owners):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(directory, name)
                info = tar.gettarinfo(path, arcname=os.path.relpath(path, root))
                info.uid, info.gid = owners.get(info.name, (0, 0))
                info.uname = info.gname = "root" if info.uid == 0 else ""
                info.mtime = mtime
                if info.isfile():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rootfs")
    parser.add_argument("out")
    parser.add_argument("--ref", required=True, help="name:tag the image is loaded as")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--user", default="65532:65532")
    parser.add_argument("--workdir", default="/var/lib/lattice")
    parser.add_argument("--port", action="append", default=[], help="exposed port, e.g. 8080/tcp")
    parser.add_argument("--chown", action="append", default=[], help="PATH=UID:GID inside the image")
    parser.add_argument("--cmd", action="append", default=[], help="one argument of the default command")
    parser.add_argument("entrypoint", nargs="+")
    args = parser.parse_args()
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))

    owners = {}
    for item in args.chown:
        path, ids = item.split("=", 1)
        uid, gid = ids.split(":", 1)
        owners[path.strip("/")] = (int(uid), int(gid))
    layer_tar = deterministic_tar(args.rootfs, mtime, owners)
    layer = gzip.compress(layer_tar, mtime=0)
    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_descriptor = blob(layer, "application/vnd.oci.image.layer.v1.tar+gzip")
    created = "1970-01-01T00:00:00Z" if mtime == 0 else None
    config = {
        "architecture": args.arch,
        "os": "linux",
        "config": {
            "User": args.user,
            "Entrypoint": args.entrypoint,
            "Cmd": args.cmd,
            "WorkingDir": args.workdir,
            "ExposedPorts": {port: {} for port in args.port},
            "Env": ["PATH=/usr/bin:/bin"],
            "Labels": {"org.opencontainers.image.title": "lattice"},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
    }
    if created:
        config["created"] = created
    config_descriptor = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": [layer_descriptor],
    }
    manifest_descriptor = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest_descriptor["annotations"] = {"org.opencontainers.image.ref.name": args.ref}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [manifest_descriptor]}

    def member(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = mtime
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(args.out, "w", format=tarfile.PAX_FORMAT) as tar:
        member(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        member(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in sorted(blobs.items()):
            member(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)
    print(f"{args.out}: {args.ref}, layer {len(layer) / 1e6:.1f} MB compressed, {manifest_descriptor['digest']}")


if __name__ == "__main__":
    main()
