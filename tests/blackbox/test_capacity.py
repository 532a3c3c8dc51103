"""Concurrent creates never oversell; remainGPUCount stays exact."""
import concurrent.futures

from conftest import SMALL_CATALOG, write_catalog


def test_more_concurrent_creates_than_capacity(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, SMALL_CATALOG)))
    users = [server.new_user() for _ in range(4)]
    assert users[0].remain("t4") == 4

    def create(i):
        user = users[i % len(users)]
        return user.create(cluster="small", sku="t4", image="images.test.local/matrixdc/ubuntu:22.04")

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(create, range(40)))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code != 200]
    assert len(ok) == 4, [r.text for r in results]
    assert all(r.status_code == 409 and r.json()["code"] == "InsufficientCapacity" for r in refused)
    assert users[0].remain("t4") == 0
    assert users[0].remain("t4x2") == 0

    # the four holders got four distinct GPUs on the one node
    names = [(r.json()["namespace"], r.json()["name"]) for r in ok]
    owner = {u.namespace: u for u in users}
    for ns, name in names:
        owner[ns].wait_status(name, "Running", cluster="small")

    # a stop frees exactly one GPU; power_on takes it back; a second power_on finds none
    ns, name = names[0]
    user = owner[ns]
    assert user.post(f"/clusters/small/instances/{name}/power_off", {}).status_code == 200
    user.wait_status(name, "Stopped", cluster="small")
    assert user.remain("t4") == 1
    taker = users[0].create(cluster="small", sku="t4", image="images.test.local/matrixdc/ubuntu:22.04")
    assert taker.status_code == 200
    r = user.post(f"/clusters/small/instances/{name}/power_on")
    assert r.status_code == 409 and r.json()["code"] == "InsufficientCapacity"
    assert user.instance(name, cluster="small").json()["status"] == "Stopped"
    assert user.remain("t4") == 0

    # deleting frees capacity once the workload is gone
    users[0].delete(f"/clusters/small/instances?name={taker.json()['name']}")
    users[0].wait_status(taker.json()["name"], None, cluster="small")
    assert user.remain("t4") == 1
    assert user.post(f"/clusters/small/instances/{name}/power_on").status_code == 200
    assert user.remain("t4") == 0


def test_concurrent_power_on_never_oversells(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, SMALL_CATALOG)))
    user = server.new_user()
    names = []
    for _ in range(4):
        r = user.create(cluster="small", sku="t4", image="images.test.local/matrixdc/ubuntu:22.04")
        names.append(r.json()["name"])
    for name in names:
        user.wait_status(name, "Running", cluster="small")
        user.post(f"/clusters/small/instances/{name}/power_off", {})
    for name in names:
        user.wait_status(name, "Stopped", cluster="small")
    # two new instances take two GPUs; four concurrent power_ons compete for the other two
    for _ in range(2):
        assert user.create(cluster="small", sku="t4", image="images.test.local/matrixdc/ubuntu:22.04").status_code == 200
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: user.post(f"/clusters/small/instances/{n}/power_on"), names))
    assert sorted(r.status_code for r in results) == [200, 200, 409, 409]
    assert user.remain("t4") == 0


def test_catalog_file_is_validated(make_server, tmp_path):
    import subprocess
    from conftest import lattice_binary
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: []\ngpuSkus: []\n")
    out = subprocess.run([lattice_binary(), "serve", "--catalog", str(bad), "--port", "0", "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "catalog" in out.stderr


def test_documented_example_catalog_serves(make_server):
    from conftest import ROOT
    server = make_server(args=("--catalog", str(ROOT / "docs" / "catalog.example.yaml"), "--simulated-delay-scale", "0.1"))
    user = server.new_user()
    regions = user.get("/regions").json()
    assert [r["clusterName"] for r in regions] == ["rack-a"]
    skus = {s["skusID"]: s for s in user.get("/skus/computings?region_id=0b7c6d2e-5f43-4c1a-9d8e-2a1f3c4b5d6e").json()}
    assert skus["a100-1"]["remainGPUCount"] == 16 and skus["l4-1"]["remainGPUCount"] == 4
    assert skus["a100-8-monthly"]["sellingType"] == "2"
    body = user.create_body(sku="l4-1", image="docker.io/library/ubuntu:24.04")
    r = user.post("/clusters/rack-a/instances", body)
    assert r.status_code == 200, r.text
    user.wait_status(r.json()["name"], "Running", cluster="rack-a")
    assert user.remain("l4-1") == 3
