"""Operators (SPEC §9): admin views of every namespace and instance, an admin acting in a
tenant's namespace, money both ways with a reason, and fair storage billing (§6)."""
import time

from conftest import wait_for

API = "/mdc/api/v1"


def test_admin_lists_every_namespace_with_its_money_and_use(server):
    admin = server.client()
    alice = server.new_user(balance="120.50")
    bob = server.new_user(balance="7")
    name = alice.create().json()["name"]
    alice.wait_status(name, "Running")
    r = admin.get("/admin/users?pageSize=100")
    assert r.status_code == 200, r.text
    page = r.json()
    users = {u["namespace"]: u for u in page["nodes"]}
    assert page["totalCount"] == len(users) >= 3 and page["hasNextPage"] is False
    assert users[alice.namespace]["instances"] == 1 and users[alice.namespace]["gpusInUse"] == 1
    assert users[alice.namespace]["admin"] is False and users[alice.namespace]["currency"] == "CNY"
    assert float(users[alice.namespace]["balance"]) <= 120.50
    assert users[bob.namespace] | {"createdAt": ""} == {
        "namespace": bob.namespace, "admin": False, "balance": "7.00", "currency": "CNY", "instances": 0,
        "gpusInUse": 0, "createdAt": "",
    }
    assert users["admin"]["admin"] is True
    assert len(admin.get("/admin/users?pageSize=1").json()["nodes"]) == 1
    r = alice.get("/admin/users")
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"


def test_admin_lists_every_instance_with_filters(server):
    admin = server.client()
    alice, bob = server.new_user(), server.new_user()
    a = alice.create().json()["name"]
    b = bob.create().json()["name"]
    alice.wait_status(a, "Running")
    bob.wait_status(b, "Running")
    assert bob.post(f"/clusters/host-cluster/instances/{b}/power_off", {}).status_code == 200
    bob.wait_status(b, "Stopped")
    every = admin.get("/admin/instances?pageSize=100").json()
    assert {(i["name"], i["namespace"]) for i in every["nodes"]} >= {(a, alice.namespace), (b, bob.namespace)}
    only_alice = admin.get(f"/admin/instances?namespace={alice.namespace}").json()
    assert [i["name"] for i in only_alice["nodes"]] == [a] and only_alice["totalCount"] == 1
    stopped = admin.get("/admin/instances?status=Stopped").json()["nodes"]
    assert [i["name"] for i in stopped] == [b]
    node = alice.instance(a).json()["Pods"][0]["nodeScheduled"]
    on_node = admin.get(f"/admin/instances?node={node}").json()["nodes"]
    assert a in [i["name"] for i in on_node] and all(i["Pods"][0]["nodeScheduled"] == node for i in on_node)
    assert admin.get("/admin/instances?node=no-such-node").json() == {"hasNextPage": False, "nodes": [], "totalCount": 0}
    r = admin.get("/admin/instances?status=Sleeping")
    assert r.status_code == 400 and "status" in r.json()["message"]
    r = alice.get("/admin/instances")
    assert r.status_code == 403


def test_an_admin_acts_in_a_tenants_namespace_and_is_audited_as_itself(server):
    admin = server.client()
    alice, bob = server.new_user(), server.new_user()
    name = alice.create().json()["name"]
    alice.wait_status(name, "Running")
    as_alice = server.client(admin.token, alice.namespace)
    r = as_alice.instance(name)
    assert r.status_code == 200 and r.json()["namespace"] == alice.namespace
    assert [i["name"] for i in as_alice.get("/clusters/host-cluster/instances").json()["nodes"]] == [name]
    assert as_alice.post(f"/clusters/host-cluster/instances/{name}/power_off", {}).status_code == 200
    alice.wait_status(name, "Stopped")
    entry = next(e for e in alice.get("/audit").json()["nodes"] if e["action"] == "instance.power_off")
    assert entry["namespace"] == alice.namespace and entry["actor"] == "admin" and entry["target"] == name
    assert as_alice.delete(f"/clusters/host-cluster/instances?name={name}").status_code == 200
    alice.wait_status(name, None)
    # A tenant still cannot name another namespace, and an unknown one is 404 even for an admin.
    r = server.client(bob.token, alice.namespace).get("/clusters/host-cluster/instances")
    assert r.status_code == 403
    r = server.client(admin.token, "no-such-tenant").get("/clusters/host-cluster/instances")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_money_goes_both_ways_with_a_reason_on_the_tenants_bills(server):
    admin = server.client()
    alice = server.new_user(balance="100")
    ns = alice.namespace
    r = admin.post(f"/admin/users/{ns}/debit", {"amount": "12.34", "reason": "GPU hours billed by hand in May"})
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == "87.66" == alice.get("/balance").json()["balance"]
    r = admin.post(f"/admin/users/{ns}/credit", {"amount": "2.34", "reason": "refund: node-3 outage"})
    assert r.status_code == 200 and r.json()["balance"] == "90.00"
    assert admin.post(f"/admin/users/{ns}/credit", {"amount": "10"}).json()["balance"] == "100.00"
    bills = alice.get("/bills").json()["nodes"]
    lines = sorted((b["kind"], b["amount"], b.get("reason")) for b in bills)
    assert lines == [("adjustment", "-2.34", "refund: node-3 outage"),
                     ("adjustment", "12.34", "GPU hours billed by hand in May")], "a top-up is no bill line"
    actions = [(e["action"], e["actor"]) for e in admin.get(f"/admin/audit?namespace=admin").json()["nodes"]]
    assert ("wallet.debit", "admin") in actions and ("wallet.credit", "admin") in actions

    def refused(verb, body, status=400, field="amount"):
        r = admin.post(f"/admin/users/{ns}/{verb}", body)
        assert r.status_code == status, (verb, body, r.text)
        assert set(r.json()) == {"code", "message"} and field in r.json()["message"], r.text

    for amount in ["-5", "0", "abc", "1e400", 1e300, -3, "99999999999999", "1.23456", None, [], {"x": 1}]:
        refused("debit", {"amount": amount, "reason": "test"})
        refused("credit", {"amount": amount, "reason": "test"})
    refused("debit", {"amount": "1"}, field="reason")
    for reason in ["", "   ", "two\nlines", "x" * 201, 42, None]:
        refused("debit", {"amount": "1", "reason": reason}, field="reason")
    refused("debit", {"amount": "100.01", "reason": "more than there is"}, status=422)
    r = admin.post("/admin/users/nobody/debit", {"amount": "1", "reason": "who?"})
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    r = admin.post(f"/admin/users/{ns}/embezzle", {"amount": "1", "reason": "x"})
    assert r.status_code == 404
    r = alice.post(f"/admin/users/{ns}/debit", {"amount": "1", "reason": "self-service"})
    assert r.status_code == 403
    assert alice.get("/balance").json()["balance"] == "100.00", "nothing refused moved any money"
    assert len(alice.get("/bills").json()["nodes"]) == 2


def test_a_disk_that_lives_seconds_pays_seconds_not_a_day(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--meter-interval-seconds", "0.1"))
    alice = server.new_user(balance="100")
    name = alice.create(size=50).json()["name"]
    alice.wait_status(name, "Running")
    time.sleep(2)
    assert alice.delete(f"/clusters/host-cluster/instances?name={name}").status_code == 200
    alice.wait_status(name, None)
    wait_for(lambda: any(b["kind"] == "storage" for b in alice.get("/bills").json()["nodes"]), what="the disk's line")
    storage = [b for b in alice.get("/bills").json()["nodes"] if b["kind"] == "storage"]
    # 50 GB at 0.01/GB/day for a few seconds is far under a cent: the minimum charge, not 0.50.
    assert [b["amount"] for b in storage] == ["0.01"], storage
    compute = [b for b in alice.get("/bills").json()["nodes"] if b["kind"] == "compute"]
    assert [b["amount"] for b in compute] == ["0.01"], compute


def test_nothing_that_lasted_no_time_is_billed(make_server):
    """An instance deleted within half a second of its create pays nothing: no 0.00 line."""
    server = make_server(args=("--simulated-delay-scale", "0.01", "--meter-interval-seconds", "0.1"))
    alice = server.new_user(balance="100")
    name = alice.create().json()["name"]
    assert alice.delete(f"/clusters/host-cluster/instances?name={name}").status_code == 200
    alice.wait_status(name, None)
    time.sleep(1)
    assert alice.get("/bills").json()["nodes"] == []
    assert alice.get("/balance").json()["balance"] == "100.00"


def test_a_months_statement_sums_to_the_ledger_as_json_and_csv(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--charge-period-seconds", "1",
                               "--meter-interval-seconds", "0.1"))
    admin = server.client()
    alice = server.new_user(balance="100")
    assert admin.post("/admin/coupons", {"id": "GIFT5", "kind": "amount", "value": "5"}).status_code == 200
    body = alice.create_body() | {"Cost": {"CostType": "1", "CouponID": "GIFT5", "DiskSKUID": "1", "GPUSKUID": "66",
                                           "CostTime": ""}}
    name = alice.post("/clusters/host-cluster/instances", body).json()["name"]
    alice.wait_status(name, "Running")
    wait_for(lambda: len(alice.get("/bills").json()["nodes"]) >= 2, what="two charged seconds")
    assert admin.put("/admin/skus/computings/66", {"price": "5.00"}).status_code == 200
    admin.post(f"/admin/users/{alice.namespace}/debit", {"amount": "3", "reason": "support, 1 h"})
    admin.post(f"/admin/users/{alice.namespace}/credit", {"amount": "1", "reason": "outage refund"})
    assert alice.delete(f"/clusters/host-cluster/instances?name={name}").status_code == 200
    alice.wait_status(name, None)
    wait_for(lambda: any(b["kind"] == "storage" for b in alice.get("/bills").json()["nodes"]), what="the disk's line")

    r = alice.get("/statements")
    assert r.status_code == 200, r.text
    statement = r.json()
    balance = alice.get("/balance").json()["balance"]
    totals = statement["totals"]
    assert totals["openingBalance"] == "0.00" and totals["closingBalance"] == balance
    assert totals["topUps"] == "100.00" and totals["coupons"] == "5.00" and totals["adjustments"] == "2.00"
    cents = lambda text: round(float(text) * 100)
    assert cents(totals["charges"]) == cents(totals["compute"]) + cents(totals["storage"]) + 200
    assert cents(totals["closingBalance"]) == 10500 - cents(totals["charges"])
    [line] = statement["instances"]
    assert line["instanceName"] == name and cents(line["total"]) == cents(line["compute"]) + cents(line["storage"])
    assert [a["reason"] for a in statement["adjustments"]] == ["support, 1 h", "outage refund"]
    assert statement["currency"] == "CNY" and statement["month"] == statement["from"][:7]
    assert alice.get(f"/statements?month={statement['month']}").json() == statement
    assert alice.get("/statements?month=2001-01").json()["lines"] == []

    csv = alice.get("/statements?format=csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    rows = csv.text.strip().split("\r\n")
    assert rows[0].startswith("date,kind,instance") and len(rows) == len(statement["lines"]) + 3
    assert '"support, 1 h"' in csv.text and rows[-1].split(",")[5] == balance
    accepted = requests_get(server, alice, "/statements", {"Accept": "text/csv"})
    assert accepted.headers["Content-Type"].startswith("text/csv") and accepted.text == csv.text
    for bad in ["2026-13", "december", "2026-1", "99999-01"]:
        r = alice.get(f"/statements?month={bad}")
        assert r.status_code == 400 and "month" in r.json()["message"], bad
    r = alice.get("/statements?format=xml")
    assert r.status_code == 400 and "format" in r.json()["message"]


def requests_get(server, client, path, headers):
    import requests
    return requests.get(server.url + API + path, headers=client.headers(extra=headers), timeout=30)
