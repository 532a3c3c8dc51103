"""Billing through the API (SPEC §6), and exactly-once charging across kill -9."""
import json
import random
import time

from conftest import store_column, wait_for, write_catalog

BIG_CATALOG = """
regions:
  - id: r1
    name: test-region
    harborAddr: images.test.local
    clusters:
      - name: big
        startDelaySeconds: 0.05
        stopDelaySeconds: 0.05
        nodes:
""" + "".join(f"          - {{name: n{i:02d}, gpuModel: T4, gpuCount: 8, cpuCores: 512, memoryGiB: 4096}}\n" for i in range(16)) + """
gpuSkus:
  - {id: "t4", name: T4, regionID: r1, clusterName: big, gpuModel: T4, gpuCount: 1, cpuCores: 4, memoryGiB: 16, sellingType: 1, price: "3.60"}
  - {id: "t4-daily", name: T4, regionID: r1, clusterName: big, gpuModel: T4, gpuCount: 1, cpuCores: 4, memoryGiB: 16, sellingType: 4, price: "40"}
diskSkus:
  - {id: "1", type: shared-filesystem, pricePerGBDay: "0.01"}
images:
  - name: images.test.local/matrixdc/ubuntu:22.04
"""
IMAGE = "images.test.local/matrixdc/ubuntu:22.04"


def ledger_rows(server):
    return [json.loads(doc) for doc in store_column(server, "SELECT doc FROM ledger ORDER BY seq")]


def test_kill9_during_charging_charges_each_period_once(make_server, tmp_path):
    args = ("--catalog", write_catalog(tmp_path, BIG_CATALOG), "--charge-period-seconds", "1", "--meter-interval-seconds", "0.05",
            "--quota-instances", "1000", "--quota-gpus", "1000")
    server = make_server(args=args)
    user = server.new_user(balance="100000")
    names = []
    for _ in range(100):
        r = user.create(cluster="big", sku="t4", image=IMAGE)
        assert r.status_code == 200, r.text
        names.append(r.json()["name"])
    rng = random.Random(3)
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 2.5))
        server.kill9()
        server.start()
        user.url = server.url
    # 100 instances charged every second: 300 charges come within a few seconds of running
    wait_for(lambda: sum(r["kind"] == "compute" for r in ledger_rows(server)) > 300, what="300 compute charges")
    server.stop()

    rows = ledger_rows(server)
    compute = [r for r in rows if r["kind"] == "compute"]
    keys = [r["idempotencyKey"] for r in compute]
    assert len(keys) == len(set(keys))
    by_instance = {}
    for r in compute:
        by_instance.setdefault(r["instanceName"], []).append((r["periodStart"], r["periodEnd"]))
    assert set(by_instance) == set(names)
    for name, periods in by_instance.items():
        periods.sort()
        starts = [p[0] for p in periods]
        assert len(starts) == len(set(starts)), f"{name}: a period was charged twice"
        for (a_start, a_end), (b_start, b_end) in zip(periods, periods[1:]):
            assert abs(a_end - b_start) < 1e-6, f"{name}: gap or overlap between {a_end} and {b_start}"
            assert abs((a_end - a_start) - 1) < 1e-6
    # one second at 3.60/h is 0.001: the minimum charge applies
    assert {r["amount"] for r in compute} == {"0.01"}
    # restart with a meter that runs once at start and then waits, so the books are still
    server.args = [a if a != "0.05" else "1000" for a in server.args]
    server.start()
    user.url = server.url

    def books_agree():
        # the balance through the API against the ledger read right before and after it
        before = ledger_rows(server)
        balance = float(user.get("/balance").json()["balance"])
        if ledger_rows(server) != before:
            return False
        credits = sum(float(r["amount"]) for r in before if r["kind"] == "credit" and r["namespace"] == user.namespace)
        charges = sum(float(r["amount"]) for r in before if r["kind"] != "credit" and r["namespace"] == user.namespace)
        assert abs(balance - (credits - charges)) < 0.0001, (balance, credits, charges)
        return True

    wait_for(books_agree, what="a quiet moment in the ledger")


def test_wallet_orders_bills_and_402(make_server, tmp_path):
    args = ("--catalog", write_catalog(tmp_path, BIG_CATALOG), "--charge-period-seconds", "1", "--meter-interval-seconds", "0.1")
    server = make_server(args=args)
    poor = server.new_user(balance="3.59")
    r = poor.create(cluster="big", sku="t4", image=IMAGE)
    assert r.status_code == 402 and r.json()["code"] == "InsufficientBalance"
    assert poor.get("/balance").json() == {"namespace": poor.namespace, "balance": "3.59", "currency": "CNY"}

    user = server.new_user(balance="500")
    name = user.create(cluster="big", sku="t4", image=IMAGE).json()["name"]
    user.wait_status(name, "Running", cluster="big")
    wait_for(lambda: user.get("/bills").json()["totalCount"] >= 2, what="two charged seconds")
    bills = user.get("/bills?pageSize=1").json()
    assert bills["totalCount"] >= 2 and bills["hasNextPage"] is True and len(bills["nodes"]) == 1
    bill = bills["nodes"][0]
    assert set(bill) >= {"id", "instanceName", "kind", "periodStart", "periodEnd", "amount", "createdAt"}
    assert bill["kind"] == "compute" and bill["amount"] == "0.01"
    orders = user.get("/orders").json()
    assert orders["totalCount"] == 1
    order = orders["nodes"][0]
    assert set(order) >= {"id", "instanceName", "costType", "gpuSkuId", "amount", "status", "createdAt"}
    assert order["id"] == user.instance(name, cluster="big").json()["annotations"]["lattice.local/cost-order-id"]
    balance = user.get("/balance").json()["balance"]
    assert float(balance) < 500

    # prepaid: charged up front, renewed with +1D, and CostTime rules
    r = user.create(cluster="big", sku="t4-daily", cost_type="4", cost_time="2D", image=IMAGE)
    assert r.status_code == 200, r.text
    prepaid = r.json()
    first_end = prepaid["ScheduleStopTimestamp"]
    bills = user.get("/bills?pageSize=100").json()["nodes"]
    assert any(b["kind"] == "prepaid" and b["amount"] == "80.00" for b in bills)
    r = user.post(f"/clusters/big/instances/{prepaid['name']}/renew", {"CostTime": "+1D"})
    assert r.status_code == 200, r.text
    assert r.json()["ScheduleStopTimestamp"] > first_end
    # a retried renew (same Idempotency-Key) is charged once and extends once
    before = user.get("/balance").json()["balance"]
    path = f"/clusters/big/instances/{prepaid['name']}/renew"
    first = user.post(path, {"CostTime": "+1D"}, headers={"Idempotency-Key": "renew-42"})
    retry = user.post(path, {"CostTime": "+1D"}, headers={"Idempotency-Key": "renew-42"})
    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.json()["ScheduleStopTimestamp"] == first.json()["ScheduleStopTimestamp"] > r.json()["ScheduleStopTimestamp"]
    assert round(float(before) - float(user.get("/balance").json()["balance"]), 2) == 40.00
    renewals = [b for b in user.get("/bills?pageSize=100").json()["nodes"]
                if b["kind"] == "prepaid" and b["instanceName"] == prepaid["name"]]
    assert sorted(b["amount"] for b in renewals) == ["40.00", "40.00", "80.00"]
    r = user.post(path, {"CostTime": "+1D"}, headers={"Idempotency-Key": ""})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["message"]
    r = user.post(path, {"CostTime": "+1D"}, headers={"Idempotency-Key": "k" * 256})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["message"]
    # a wallet that cannot pay for the term: 402, and the term stays
    end = user.instance(prepaid["name"], cluster="big").json()["ScheduleStopTimestamp"]
    r = user.post(path, {"CostTime": "+1000D"})
    assert r.status_code == 402 and r.json()["code"] == "InsufficientBalance"
    assert user.instance(prepaid["name"], cluster="big").json()["ScheduleStopTimestamp"] == end
    r = user.post(f"/clusters/big/instances/{prepaid['name']}/renew", {"CostTime": "+1W"})
    assert r.status_code == 400 and "CostTime" in r.json()["message"]
    r = user.post(f"/clusters/big/instances/{name}/renew", {"CostTime": "+1D"})
    assert r.status_code == 400 and "CostTime" in r.json()["message"]
    r = user.post(f"/clusters/big/instances/{prepaid['name']}/renew", {"CostTime": "+1000000D"})
    assert r.status_code == 400
    r = poor.post(f"/clusters/big/instances/{prepaid['name']}/renew", {"CostTime": "+1D"})
    assert r.status_code == 404


def test_coupons(make_server, tmp_path):
    args = ("--catalog", write_catalog(tmp_path, BIG_CATALOG))
    server = make_server(args=args)
    admin = server.client()
    r = admin.post("/admin/coupons", {"id": "WELCOME10", "kind": "amount", "value": "10", "maxUses": 1})
    assert r.status_code == 200, r.text
    assert r.json()["uses"] == 0
    assert admin.post("/admin/coupons", {"id": "WELCOME10", "kind": "amount", "value": "10"}).status_code == 409
    assert admin.post("/admin/coupons", {"kind": "percent", "value": "150"}).status_code == 400
    assert admin.post("/admin/coupons", {"kind": "gift", "value": "1"}).status_code == 400
    r = admin.post("/admin/coupons", {"id": "OLD", "kind": "percent", "value": 20, "expiresAt": "2020-01-01T00:00:00Z"})
    assert r.status_code == 200
    user = server.new_user(balance="0")
    assert user.post("/admin/coupons", {"kind": "amount", "value": "5"}).status_code == 403

    body = user.create_body(sku="t4", image=IMAGE)
    body["Cost"]["CouponID"] = "WELCOME10"
    r = user.post("/clusters/big/instances", body)
    assert r.status_code == 200, r.text
    assert r.json()["cost"]["CouponID"] == "WELCOME10"
    assert user.get("/balance").json()["balance"] == "10.00"
    r = user.post("/clusters/big/instances", body)
    assert r.status_code == 422 and r.json()["code"] == "CouponUsedUp"
    body["Cost"]["CouponID"] = "OLD"
    r = user.post("/clusters/big/instances", body)
    assert r.status_code == 422 and r.json()["code"] == "CouponExpired"
    body["Cost"]["CouponID"] = "NOPE"
    r = user.post("/clusters/big/instances", body)
    assert r.status_code == 422 and "Cost.CouponID" in r.json()["message"]
    listed = admin.get("/admin/coupons").json()["nodes"]
    assert next(c for c in listed if c["id"] == "WELCOME10")["uses"] == 1


def test_retention_days_releases_a_stopped_instances_data(make_server, tmp_path):
    from datetime import datetime, timezone
    args = ("--catalog", write_catalog(tmp_path, BIG_CATALOG), "--retention-days", "0.00005",  # 4.32 s
            "--meter-interval-seconds", "0.2")
    server = make_server(args=args)
    user = server.new_user(balance="100")
    kept = user.create(cluster="big", sku="t4", image=IMAGE).json()["name"]
    name = user.create(cluster="big", sku="t4", image=IMAGE).json()["name"]
    for n in (kept, name):
        user.wait_status(n, "Running", cluster="big")
    assert user.post(f"/clusters/big/instances/{name}/power_off", {}).text == '"ok"'
    stopped = user.wait_status(name, "Stopped", cluster="big")
    until = datetime.fromisoformat(stopped["retentionUntil"].replace("Z", "+00:00"))
    left = (until - datetime.now(timezone.utc)).total_seconds()
    assert 0 < left <= 4.5, left
    assert user.wait_status(name, None, cluster="big", timeout=30) is None
    # the running one is untouched; the released one was billed for its disk to the end
    assert user.instance(kept, cluster="big").json()["status"] == "Running"
    wait_for(lambda: any(b["kind"] == "storage" and b["instanceName"] == name
                         for b in user.get("/bills?pageSize=100").json()["nodes"]), what="the last disk-day")
    r = user.post(f"/clusters/big/instances/{name}/power_on")
    assert r.status_code == 404


def test_the_wallet_covers_an_hour_of_everything_the_namespace_runs(make_server, tmp_path):
    """Issue "hardening" 5: one hour of one T4 starts one T4, not 32."""
    server = make_server(args=("--catalog", write_catalog(tmp_path, BIG_CATALOG)))
    user = server.new_user(balance="7.20")  # two hours of one T4
    results = [user.create(cluster="big", sku="t4", image=IMAGE) for _ in range(32)]
    codes = [r.status_code for r in results]
    assert codes.count(200) == 2 and codes.count(402) == 30, codes
    refused = next(r for r in results if r.status_code == 402).json()
    assert refused["code"] == "InsufficientBalance" and "what already runs" in refused["message"]
    names = [r.json()["name"] for r in results if r.status_code == 200]
    for name in names:
        user.wait_status(name, "Running", cluster="big")
    # a prepaid term needs the hour of what runs plus the term
    assert user.create(cluster="big", sku="t4-daily", cost_type="4", cost_time="1D", image=IMAGE).status_code == 402
    # stopping one frees its hour: power_on of it works again, a third create does not
    assert user.post(f"/clusters/big/instances/{names[0]}/power_off").status_code == 200
    user.wait_status(names[0], "Stopped", cluster="big")
    assert user.post(f"/clusters/big/instances/{names[0]}/power_on").status_code == 200
    assert user.create(cluster="big", sku="t4", image=IMAGE).status_code == 402


def test_a_full_coupon_does_not_bypass_a_negative_balance_and_coupons_can_be_limited(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, BIG_CATALOG)))
    admin = server.client()
    owner = server.new_user(balance="0")
    stranger = server.new_user(balance="0")
    r = admin.post("/admin/coupons", {"id": "FREE", "kind": "percent", "value": 100, "maxUses": 10,
                                      "namespaces": [owner.namespace]})
    assert r.status_code == 200 and r.json()["namespaces"] == [owner.namespace]
    body = owner.create_body(sku="t4", image=IMAGE)
    body["Cost"]["CouponID"] = "FREE"
    other = dict(body, namespace=stranger.namespace)
    r = stranger.post("/clusters/big/instances", other)
    assert r.status_code == 422 and r.json()["code"] == "UnknownCoupon", r.text
    r = owner.post("/clusters/big/instances", body)
    assert r.status_code == 200, r.text
    owner.wait_status(r.json()["name"], "Running", cluster="big")
    # a negative balance (storage charged from a drained wallet) starts nothing, coupon or not
    debtor = server.new_user(balance="0")
    store_column(server, f"UPDATE users SET balance_units = -100 WHERE namespace = '{debtor.namespace}'")
    admin.post("/admin/coupons", {"id": "FREE2", "kind": "percent", "value": 100, "maxUses": 10})
    body = debtor.create_body(sku="t4", image=IMAGE)
    body["Cost"]["CouponID"] = "FREE2"
    r = debtor.post("/clusters/big/instances", body)
    assert r.status_code == 402 and "negative" in r.json()["message"], r.text
