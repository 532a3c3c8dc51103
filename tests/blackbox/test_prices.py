"""Prices that change while serving (SPEC §9): `PUT /admin/skus/computings/{skuId}` prices what
starts afterwards while a running instance keeps its `unit-price`, every change is listed, and
SIGHUP re-reads `--catalog` (a broken file is refused and the old one kept)."""
import signal

from conftest import SMALL_CATALOG, json_lines, wait_for, write_catalog

IMAGE = "images.test.local/matrixdc/ubuntu:22.04"


def unit_price(client, name):
    annotations = client.instance(name, cluster="small").json()["annotations"]
    return next(v for k, v in annotations.items() if k.endswith("/unit-price"))


def sku(client, sku_id):
    return next(s for s in client.get("/skus/computings").json() if s["skusID"] == sku_id)


def test_a_new_price_applies_to_what_starts_afterwards(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, SMALL_CATALOG), "--simulated-delay-scale", "0.1"))
    admin = server.client()
    alice = server.new_user(balance="1000")
    before = alice.create(cluster="small", sku="t4", image=IMAGE).json()["name"]
    alice.wait_status(before, "Running", cluster="small")
    stopped = alice.create(cluster="small", sku="t4", image=IMAGE).json()["name"]
    alice.wait_status(stopped, "Running", cluster="small")
    assert alice.post(f"/clusters/small/instances/{stopped}/power_off", {}).status_code == 200
    alice.wait_status(stopped, "Stopped", cluster="small")

    r = admin.put("/admin/skus/computings/t4", {"price": "2.00"})
    assert r.status_code == 200, r.text
    assert r.json()["skusID"] == "t4" and r.json()["price"] == 2.0 and r.json()["effectivePrice"] == "2.00"
    assert sku(alice, "t4")["effectivePrice"] == "2.00"
    # A running instance keeps the price it started with; a new one and a power_on pay the new one.
    assert unit_price(alice, before) == "1.20"
    after = alice.create(cluster="small", sku="t4", image=IMAGE).json()["name"]
    assert unit_price(alice, after) == "2.00"
    assert alice.post(f"/clusters/small/instances/{stopped}/power_on").status_code == 200
    alice.wait_status(stopped, "Running", cluster="small")
    assert unit_price(alice, stopped) == "2.00"

    # A discount with its window; then the discount ended with ratio 1.
    r = admin.put("/admin/skus/computings/t4", {"ratio": 0.5, "discountStartTime": "2020-01-01T00:00:00Z",
                                                "discountEndTime": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["effectivePrice"] == "1.00" and r.json()["ratio"] == 0.5
    r = admin.put("/admin/skus/computings/t4", {"ratio": 1})
    assert r.status_code == 200 and r.json()["effectivePrice"] == "2.00" and r.json()["discountID"] == ""

    history = admin.get("/admin/skus/computings/t4/prices").json()
    assert history["totalCount"] == 4
    assert [(p["price"], p["ratio"], p["actor"]) for p in history["nodes"]] == [
        ("2.00", "1", "admin"), ("2.00", "0.5", "admin"), ("2.00", "1", "admin"), ("1.20", "1", "catalog")]
    assert any(e["action"] == "price.change" and e["target"] == "t4" for e in admin.get("/audit").json()["nodes"])

    # The changes outlive a restart.
    server.restart()
    assert sku(server.client(), "t4")["effectivePrice"] == "2.00"
    assert unit_price(server.client(alice.token, alice.namespace), before) == "1.20"


def test_a_price_change_refuses_bad_input_and_changes_nothing(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, SMALL_CATALOG), "--simulated-delay-scale", "0.1"))
    admin = server.client()
    alice = server.new_user()
    for body, field in [
        ({"price": "-1"}, "price"), ({"price": "0"}, "price"), ({"price": "abc"}, "price"),
        ({"price": "99999999999"}, "price"), ({"price": 1e300}, "price"), ({}, "price"),
        ({"ratio": 0}, "ratio"), ({"ratio": 1.5}, "ratio"), ({"ratio": "half"}, "ratio"), ({"ratio": 0.12345}, "ratio"),
        ({"ratio": 0.5}, "discountStartTime"),  # t4 has no discount: a ratio needs its window
        ({"ratio": 0.5, "discountStartTime": "yesterday", "discountEndTime": "2099-01-01T00:00:00Z"},
         "discountStartTime"),
        ({"ratio": 0.5, "discountStartTime": "2099-01-01T00:00:00Z", "discountEndTime": "2020-01-01T00:00:00Z"},
         "discountEndTime"),
    ]:
        r = admin.put("/admin/skus/computings/t4", body)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"code", "message"} and field in r.json()["message"], (body, r.text)
    r = admin.put("/admin/skus/computings/nope", {"price": "1"})
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    assert admin.get("/admin/skus/computings/nope/prices").status_code == 404
    assert alice.put("/admin/skus/computings/t4", {"price": "0.01"}).status_code == 403
    assert alice.get("/admin/skus/computings/t4/prices").status_code == 403
    assert sku(admin, "t4")["effectivePrice"] == "1.20"
    assert admin.get("/admin/skus/computings/t4/prices").json()["totalCount"] == 1


def test_sighup_reads_the_catalog_again_and_refuses_a_broken_one(make_server, tmp_path):
    path = write_catalog(tmp_path, SMALL_CATALOG)
    server = make_server(args=("--catalog", path, "--simulated-delay-scale", "0.1"))
    admin = server.client()
    alice = server.new_user()
    running = alice.create(cluster="small", sku="t4", image=IMAGE).json()["name"]
    alice.wait_status(running, "Running", cluster="small")
    changed = SMALL_CATALOG.replace('price: "1.20"', 'price: "1.50"').replace(
        "  - name: images.test.local/matrixdc/ubuntu:22.04",
        "  - name: images.test.local/matrixdc/ubuntu:22.04\n  - name: images.test.local/matrixdc/ubuntu:24.04")
    changed = changed.replace("diskSkus:", '  - {id: "t4x4", name: T4, regionID: r1, clusterName: small, gpuModel: T4, '
                              'gpuCount: 4, cpuCores: 32, memoryGiB: 128, sellingType: 1, price: "4.80"}\ndiskSkus:')
    open(path, "w").write(changed)
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: sku(admin, "t4")["effectivePrice"] == "1.50", what="the new price")
    assert "t4x4" in [s["skusID"] for s in admin.get("/skus/computings").json()]
    assert "images.test.local/matrixdc/ubuntu:24.04" in [i["name"] for i in alice.get("/images").json()["nodes"]]
    assert unit_price(alice, running) == "1.20", "a running instance keeps its price"
    new = alice.create(cluster="small", sku="t4", image="images.test.local/matrixdc/ubuntu:24.04")
    assert new.status_code == 200 and unit_price(alice, new.json()["name"]) == "1.50"

    # A broken file: refused, the server serves on with the catalog it had.
    open(path, "w").write("regions: [this is: not a catalog\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in (tmp_path / "data.stderr.log").read_text(), what="the refusal in the log")
    assert server.proc.poll() is None
    assert sku(admin, "t4")["effectivePrice"] == "1.50"
    refusal = [line for line in json_lines((tmp_path / "data.stderr.log").read_text())
               if "reload refused" in line.get("message", "")]
    assert refusal and "catalog" in refusal[-1]["what"]
    # An admin's price change still applies over a file read later.
    assert admin.put("/admin/skus/computings/t4", {"price": "3.00"}).status_code == 200
    open(path, "w").write(changed)
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: (tmp_path / "data.stderr.log").read_text().count('"SIGHUP: reloaded"') >= 2, what="a reload")
    assert sku(admin, "t4")["effectivePrice"] == "3.00"
