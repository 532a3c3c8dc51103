"""`lattice db copy`: an embedded (SQLite) installation grows into PostgreSQL."""
import os
import subprocess

import pytest

from conftest import Client, lattice_binary, new_database, store_column, wait_for, write_catalog

pytestmark = pytest.mark.skipif(not os.environ.get("LATTICE_TEST_DATABASE_URL"),
                                reason="no test PostgreSQL server (LATTICE_TEST_DATABASE_URL)")

CATALOG = """
regions:
  - id: r1
    name: test-region
    harborAddr: images.test.local
    clusters:
      - name: small
        driver: simulated
        startDelaySeconds: 0.2
        stopDelaySeconds: 0.2
        nodes:
          - {name: t4-a, gpuModel: T4, gpuCount: 8, cpuCores: 128, memoryGiB: 512}
      - name: slow
        driver: simulated
        startDelaySeconds: 3600
        stopDelaySeconds: 3600
        nodes:
          - {name: t4-slow, gpuModel: T4, gpuCount: 8, cpuCores: 128, memoryGiB: 512}
gpuSkus:
  - {id: "t4", name: T4, regionID: r1, clusterName: small, gpuModel: T4, gpuCount: 1, cpuCores: 8, memoryGiB: 32, sellingType: 1, price: "1.20"}
  - {id: "t4slow", name: T4, regionID: r1, clusterName: slow, gpuModel: T4, gpuCount: 1, cpuCores: 8, memoryGiB: 32, sellingType: 1, price: "1.20"}
diskSkus:
  - {id: "1", type: shared-filesystem, pricePerGBDay: "0.01"}
images:
  - name: images.test.local/matrixdc/ubuntu:22.04
"""
IMAGE = "images.test.local/matrixdc/ubuntu:22.04"


def copy(data_dir, url):
    return subprocess.run([lattice_binary(), "db", "copy", "--from", str(data_dir), "--to", url],
                          capture_output=True, text=True, timeout=120)


def rows(server, sql):
    return store_column(server, sql)


def test_copy_round_trip_with_instances_in_every_status(make_server, tmp_path):
    args = ("--catalog", write_catalog(tmp_path, CATALOG), "--charge-period-seconds", "1",
            "--meter-interval-seconds", "0.1")
    server = make_server(args=args)
    admin = server.client()
    admin.post("/admin/coupons", {"id": "HALF", "kind": "percent", "value": 50, "maxUses": 10})
    user = server.new_user(balance="500")

    def create(cluster, sku, coupon=""):
        body = user.create_body(sku=sku, image=IMAGE)
        body["Cost"]["CouponID"] = coupon
        r = user.post(f"/clusters/{cluster}/instances", body)
        assert r.status_code == 200, r.text
        return r.json()["name"]

    running = create("small", "t4", coupon="HALF")
    stopped = create("small", "t4")
    failed = create("small", "t4")
    creating = create("slow", "t4slow")
    for name in (running, stopped, failed):
        user.wait_status(name, "Running", cluster="small")
    assert user.post(f"/clusters/small/instances/{stopped}/power_off", {"gracePeriodSeconds": 0}).status_code == 200
    user.wait_status(stopped, "Stopped", cluster="small")
    stopping = create("slow", "t4slow")
    wait_for(lambda: len(user.get("/bills?page=1&pageSize=100").json()["nodes"]) > 2, timeout=10,
             what="a few charges")
    server.stop()
    # A Failed instance (a lost node, a failed pull) is a status like any other to the copy.
    store_column(server, f"""UPDATE instances SET status = 'Failed',
        doc = json_set(doc, '$.status', 'Failed') WHERE name = '{failed}'""")
    store_column(server, f"""UPDATE instances SET status = 'Stopping',
        doc = json_set(doc, '$.status', 'Stopping') WHERE name = '{stopping}'""")
    statuses = store_column(server, "SELECT status FROM instances ORDER BY status")
    assert sorted(set(statuses)) == ["Creating", "Failed", "Running", "Stopped", "Stopping"]

    url = new_database()
    tables = {
        "instances": "SELECT doc FROM instances ORDER BY name",
        "ledger": "SELECT doc FROM ledger ORDER BY seq",
        "orders": "SELECT doc FROM orders ORDER BY id",
        "tokens": "SELECT secret_hash FROM tokens ORDER BY id",
        "segments": "SELECT doc FROM meter_segments ORDER BY id",
        "coupons": "SELECT doc FROM coupons ORDER BY id",
        "reservations": "SELECT node || ':' || gpu_index || ':' || instance_name FROM gpu_allocations ORDER BY 1",
        "balances": "SELECT namespace || '=' || balance_units FROM users ORDER BY namespace",
    }
    on_sqlite = {name: rows(server, sql) for name, sql in tables.items()}
    assert len(on_sqlite["ledger"]) > 2 and len(on_sqlite["reservations"]) == 4

    done = copy(server.data_dir, url)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "both sides agree" in done.stdout
    assert "ledger" in done.stdout and f"balance {user.namespace}" in done.stdout

    # Row for row the same, read from PostgreSQL.
    server.args = list(args) + ["--database-url", url]
    assert {name: rows(server, sql) for name, sql in tables.items()} == on_sqlite

    # And served from it: the same data directory (the simulated fleet's state lives there).
    server.start()
    on_postgres = Client(server.url, user.token, user.namespace)
    seen = {}
    for cluster in ("small", "slow"):
        for node in on_postgres.get(f"/clusters/{cluster}/instances?page=1&pageSize=100").json()["nodes"]:
            seen[node["name"]] = node["status"]
    assert seen == {running: "Running", stopped: "Stopped", failed: "Failed", creating: "Creating",
                    stopping: "Stopping"}
    kept = int(on_sqlite["balances"][[b.split("=")[0] for b in on_sqlite["balances"]].index(user.namespace)]
               .split("=")[1])
    balance = on_postgres.get("/balance").json()["balance"]
    assert abs(float(balance) * 10000 - kept) < 10000, (balance, kept)  # it keeps charging while running
    made = on_postgres.post("/clusters/small/instances", user.create_body(sku="t4", image=IMAGE))
    assert made.status_code == 200, made.text
    on_postgres.wait_status(made.json()["name"], "Running", cluster="small")

    # a second copy into the same database is refused and changes nothing
    server.stop()
    again = copy(server.data_dir, url)
    assert again.returncode == 1 and "NotEmpty" in again.stderr, again.stderr
