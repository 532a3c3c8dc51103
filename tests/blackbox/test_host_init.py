"""`lattice host init` on a host with a stand-in `nvidia-smi` on PATH and the test Podman
service: the checks it explains, the catalog and environment it writes (again and again
the same), and a server started the way lattice.service starts it, with a tenant's
instance Running on that engine."""
import os
import shutil
import subprocess

import pytest

from conftest import Client, Server, lattice_binary, wait_for

SOCKET = os.environ.get("LATTICE_TEST_ENGINE_SOCKET")
IMAGE = os.environ.get("LATTICE_TEST_IMAGE")

NVIDIA_SMI = """#!/bin/sh
# A stand-in for the NVIDIA driver's tool: two RTX 4090s.
[ "$1" = "--query-gpu=name,memory.total" ] || exit 9
echo "name, memory.total [MiB]"
echo "NVIDIA GeForce RTX 4090, 24564 MiB"
echo "NVIDIA GeForce RTX 4090, 24564 MiB"
"""


def host_init(tmp_path, *args, gpus=True):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpus:
        (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI)
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run([lattice_binary(), "host", "init", "--catalog", str(tmp_path / "etc/catalog.yaml"),
                           "--env-file", str(tmp_path / "etc/lattice.env"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_without_gpus_or_an_engine_it_says_what_is_missing(tmp_path):
    out = host_init(tmp_path, gpus=False)
    assert out.returncode == 2 and "no nvidia-smi on PATH" in out.stderr, out.stderr
    out = host_init(tmp_path, "--engine", f"unix://{tmp_path}/none.sock")
    assert out.returncode == 2 and "engine: none answers" in out.stderr and "no such socket" in out.stderr
    assert not (tmp_path / "etc/catalog.yaml").exists(), "nothing written when a check fails"


@pytest.mark.skipif(not (SOCKET and IMAGE and shutil.which("podman")), reason="no container engine configured")
def test_host_init_writes_a_catalog_a_server_runs_instances_from(tmp_path):
    out = host_init(tmp_path, "--engine", f"unix://{SOCKET}", "--price", "RTX-4090=2.50")
    assert out.returncode == 0, out.stdout + out.stderr
    said = out.stdout
    assert "[ok] GPUs (nvidia-smi): 2 × NVIDIA GeForce RTX 4090" in said
    assert "[ok] engine: Podman" in said and "GPU access" in said and "CPU and memory" in said
    assert "catalog" in said and "written and valid" in said
    token = next(line.split(": ", 1)[1] for line in said.splitlines() if line.startswith("admin token"))
    env = (tmp_path / "etc/lattice.env").read_text()
    assert f"LATTICE_BOOTSTRAP_TOKEN={token}" in env and "--catalog" in env
    catalog = (tmp_path / "etc/catalog.yaml").read_text()
    assert "driver: engine" in catalog and f'url: "unix://{SOCKET}"' in catalog
    assert 'id: "rtx-4090-1"' in catalog and 'id: "rtx-4090-2"' in catalog and "rtx-4090-4" not in catalog
    assert "PLACEHOLDER" not in catalog

    # Again: the same checks, nothing rewritten, the same token.
    again = host_init(tmp_path, "--engine", f"unix://{SOCKET}", "--price", "RTX-4090=2.50")
    assert again.returncode == 0 and "unchanged" in again.stdout and token in again.stdout
    assert (tmp_path / "etc/catalog.yaml").read_text() == catalog
    # A price that changes the catalog is refused without --force, then written with it.
    changed = host_init(tmp_path, "--engine", f"unix://{SOCKET}")
    assert changed.returncode == 2 and "--force" in changed.stderr
    forced = host_init(tmp_path, "--engine", f"unix://{SOCKET}", "--force")
    assert forced.returncode == 0 and "placeholder prices" in forced.stdout
    assert "PLACEHOLDER PRICE" in (tmp_path / "etc/catalog.yaml").read_text()
    assert host_init(tmp_path, "--engine", f"unix://{SOCKET}", "--price", "H100=9").returncode == 2

    # The server as lattice.service starts it: flags and token from the environment file.
    # This host has no real GPUs, so containers get none (gpuRequests: none); the rest is
    # what host init wrote.
    host_init(tmp_path, "--engine", f"unix://{SOCKET}", "--price", "RTX-4090=2.50", "--force")
    text = (tmp_path / "etc/catalog.yaml").read_text().replace("gpuRequests: cdi", "gpuRequests: none")
    (tmp_path / "etc/catalog.yaml").write_text(text)
    values = dict(line.split("=", 1) for line in (tmp_path / "etc/lattice.env").read_text().splitlines()
                  if "=" in line and not line.startswith("#"))
    flags = values["LATTICE_SERVE_FLAGS"].strip('"').split()
    flags[flags.index("0.0.0.0")] = "127.0.0.1"
    server = Server(tmp_path / "state", flags, env={"LATTICE_BOOTSTRAP_TOKEN": values["LATTICE_BOOTSTRAP_TOKEN"]})
    server.start()
    try:
        admin = server.client(token=token)
        skus = {s["skusID"]: s for s in admin.get("/skus/computings").json()}
        assert skus["rtx-4090-1"]["price"] == 2.5 and skus["rtx-4090-2"]["price"] == 5
        assert skus["rtx-4090-2"]["remainGPUCount"] == 2
        made = admin.post("/admin/users", {"namespace": "tenant", "balance": "100"})
        assert made.status_code == 200, made.text
        user = Client(server.url, made.json()["token"], "tenant")
        cluster = skus["rtx-4090-1"]["clusterName"]
        r = user.create(cluster=cluster, sku="rtx-4090-1", image=IMAGE)
        assert r.status_code == 200, r.text
        user.wait_status(r.json()["name"], "Running", cluster=cluster, timeout=120)
        user.delete(f"/clusters/{cluster}/instances?name={r.json()['name']}")
        wait_for(lambda: user.instance(r.json()["name"], cluster).status_code == 404, timeout=60,
                 what="the instance to be deleted")
    finally:
        server.stop()
