"""Operators see every node's health and free GPUs and drain nodes (SPEC §3, admin):
`GET /admin/nodes`, `POST /admin/nodes/{node}/drain` and `.../undrain`, and the CLI's
`lattice admin nodes`."""
import json
import os
import subprocess

from conftest import lattice_binary

NODES_4090 = ["gpu-4090-01", "gpu-4090-02", "gpu-4090-03", "gpu-4090-04"]


def nodes(admin):
    r = admin.get("/admin/nodes")
    assert r.status_code == 200, r.text
    return {n["name"]: n for n in r.json()["nodes"]}


def test_nodes_are_listed_with_health_and_free_gpus(server):
    admin = server.client()
    listed = nodes(admin)
    assert set(listed) == {"gpu-h20-01", "gpu-h20-02", *NODES_4090}
    node = listed["gpu-4090-01"]
    assert node == {"name": "gpu-4090-01", "cluster": "host-cluster", "gpuModel": "4090", "gpuTotal": 8,
                    "gpuFree": 8, "health": "healthy", "reason": ""}
    user = server.new_user()
    r = user.create(sku="67")  # 4 GPUs
    assert r.status_code == 200, r.text
    running = user.wait_status(r.json()["name"], "Running")
    placed = running["Pods"][0]["nodeScheduled"]
    assert nodes(admin)[placed]["gpuFree"] == 4
    # Tenants see none of it.
    assert user.get("/admin/nodes").status_code == 403
    assert user.post("/admin/nodes/gpu-4090-01/drain").status_code == 403


def test_a_drained_node_takes_no_new_instances_and_keeps_its_own(server):
    admin = server.client()
    user = server.new_user(balance="10000")
    first = user.create().json()["name"]
    placed = user.wait_status(first, "Running")["Pods"][0]["nodeScheduled"]

    r = admin.post(f"/admin/nodes/{placed}/drain")
    assert r.status_code == 200, r.text
    assert r.json()["health"] == "draining" and r.json()["reason"].startswith("drained since ")
    assert admin.post(f"/admin/nodes/{placed}/drain").status_code == 200, "draining twice is fine"
    # New instances go elsewhere; the one there runs on.
    for _ in range(3):
        name = user.create().json()["name"]
        assert user.wait_status(name, "Running")["Pods"][0]["nodeScheduled"] != placed
    assert user.instance(first).json()["status"] == "Running"

    # Drain every 4090 node: nothing is free, creates are refused with the usual 409.
    for node in NODES_4090:
        assert admin.post(f"/admin/nodes/{node}/drain").status_code == 200
    assert user.remain("66") == 0
    r = user.create()
    assert r.status_code == 409 and r.json()["code"] == "InsufficientCapacity", r.text
    # A drain survives a restart.
    server.restart()
    admin, user.url = server.client(), server.url
    assert all(nodes(admin)[n]["health"] == "draining" for n in NODES_4090)
    for node in NODES_4090:
        r = admin.post(f"/admin/nodes/{node}/undrain")
        assert r.status_code == 200 and r.json()["health"] == "healthy", r.text
    assert user.remain("66") > 0
    assert user.create().status_code == 200


def test_unknown_nodes_and_verbs_are_clear_errors(server):
    admin = server.client()
    r = admin.post("/admin/nodes/no-such-node/drain")
    assert r.status_code == 404 and r.json()["code"] == "NotFound", r.text
    r = admin.post("/admin/nodes/gpu-4090-01/reboot")
    assert r.status_code == 404 and r.json()["code"] == "NotFound", r.text


def test_the_cli_lists_and_drains(server, tmp_path):
    env = {**os.environ, "LATTICE_URL": server.url, "LATTICE_TOKEN": server.client().token,
           "LATTICE_CONFIG": str(tmp_path / "config.json")}

    def cli(*args):
        out = subprocess.run([lattice_binary(), "admin", "nodes", *args, "--output", "json"], capture_output=True,
                             text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert {n["name"] for n in cli("list")} >= set(NODES_4090)
    assert cli("drain", "gpu-h20-01")[0]["health"] == "draining"
    assert nodes(server.client())["gpu-h20-01"]["health"] == "draining"
    assert cli("undrain", "gpu-h20-01")[0]["health"] == "healthy"
