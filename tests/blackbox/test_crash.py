"""kill -9 in the middle of creates and power operations loses and duplicates nothing."""
import concurrent.futures
import json
import sqlite3
import threading
import time

import requests

from conftest import SMALL_CATALOG


def all_instances(user, cluster="host-cluster"):
    names = []
    page = 1
    while True:
        body = user.get(f"/clusters/{cluster}/instances?page={page}&pageSize=100").json()
        names += body["nodes"]
        if not body["hasNextPage"]:
            return names
        page += 1


def held_gpus(instances):
    return sum(int(i["resources"]["GPUNum"]) for i in instances
               if i["status"] in ("Creating", "Running", "Stopping", "Saving", "Starting"))


def check_capacity_consistent(server, user):
    """Free + held = total for each GPU model, and the allocation rows match."""
    instances = all_instances(user)
    skus = {s["skusID"]: s for s in user.get("/skus/computings").json()}
    used_4090 = held_gpus([i for i in instances if i["resources"]["GPUType"] == "4090"])
    assert skus["66"]["remainGPUCount"] == 32 - used_4090
    db = sqlite3.connect(server.data_dir / "lattice.sqlite")
    rows = db.execute("SELECT COUNT(*) FROM gpu_allocations").fetchone()[0]
    dup = db.execute("SELECT COUNT(*) FROM (SELECT name FROM instances GROUP BY name HAVING COUNT(*) > 1)").fetchone()[0]
    db.close()
    assert dup == 0
    return instances, rows


def test_kill9_during_creates(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1"))
    user = server.new_user()
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def creator():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(user.url + "/mdc/api/v1/clusters/host-cluster/instances", json=user.create_body(),
                                 headers=user.headers(), timeout=5)
            except requests.RequestException:
                return
            if r.status_code == 200:
                with lock:
                    acknowledged.append(r.json()["name"])

    threads = [threading.Thread(target=creator) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    server.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert acknowledged, "no create was acknowledged before the kill"

    server.start()
    user.url = server.url
    instances = all_instances(user)
    names = [i["name"] for i in instances]
    assert len(names) == len(set(names)), "an instance was duplicated"
    missing = set(acknowledged) - set(names)
    assert not missing, f"acknowledged instances lost: {missing}"
    check_capacity_consistent(server, user)
    # every surviving instance converges to Running after restart
    for name in names:
        user.wait_status(name, "Running", timeout=60)
    instances, rows = check_capacity_consistent(server, user)
    assert rows == held_gpus(instances)


def test_kill9_during_power_operations(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1"))
    user = server.new_user()
    names = [user.create().json()["name"] for _ in range(8)]
    for name in names:
        user.wait_status(name, "Running")
    stop = threading.Event()

    def flipper(name):
        session = requests.Session()
        while not stop.is_set():
            try:
                for verb in ("power_off", "power_on"):
                    session.post(f"{user.url}/mdc/api/v1/clusters/host-cluster/instances/{name}/{verb}", json={},
                                 headers=user.headers(), timeout=5)
                    time.sleep(0.05)
            except requests.RequestException:
                return

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(flipper, n) for n in names]
        time.sleep(1.5)
        server.kill9()
        stop.set()
        for f in futures:
            f.result()

    server.start()
    user.url = server.url
    deadline = time.time() + 60
    while time.time() < deadline:
        instances = all_instances(user)
        if all(i["status"] in ("Running", "Stopped") for i in instances):
            break
        time.sleep(0.2)
    assert sorted(i["name"] for i in instances) == sorted(names)
    assert all(i["status"] in ("Running", "Stopped") for i in instances), [i["status"] for i in instances]
    instances, rows = check_capacity_consistent(server, user)
    assert rows == held_gpus(instances)
    # and the lifecycle still works for each of them
    for i in instances:
        if i["status"] == "Stopped":
            assert user.post(f"/clusters/host-cluster/instances/{i['name']}/power_on").status_code == 200
    for name in names:
        user.wait_status(name, "Running", timeout=60)


def test_sigterm_is_graceful_and_restart_resumes(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1"))
    assert any(l.startswith("created admin namespace 'admin'") for l in server.run_lines)
    bootstrap = json.loads((server.data_dir / "bootstrap.json").read_text())
    user = server.new_user()
    running = user.create().json()["name"]
    user.wait_status(running, "Running")
    stopped = user.create().json()["name"]
    user.wait_status(stopped, "Running")
    assert user.post(f"/clusters/host-cluster/instances/{stopped}/power_off", {}).text == '"ok"'
    user.wait_status(stopped, "Stopped")
    # acknowledged just before the signal: a create and a power_off still in progress
    late = user.create()
    assert late.status_code == 200
    late = late.json()["name"]
    assert user.post(f"/clusters/host-cluster/instances/{running}/power_off", {}).text == '"ok"'
    credit = server.client().post(f"/admin/users/{user.namespace}/credit", {"amount": "12.34"})
    assert credit.status_code == 200
    balance = user.get("/balance").json()["balance"]

    started = time.time()
    code = server.terminate(timeout=10)
    assert code == 0, f"SIGTERM did not end the server by itself with status 0 (got {code})"
    assert time.time() - started < 10

    server.start()
    user.url = server.url
    assert not any("created admin" in l for l in server.run_lines), "a restart bootstrapped a second admin"
    again = json.loads((server.data_dir / "bootstrap.json").read_text())
    assert (again["namespace"], again["token"]) == (bootstrap["namespace"], bootstrap["token"])
    assert again["url"] == server.url
    assert len(server.client().get("/tokens").json()["nodes"]) == 1
    # the credit survived; only the power_off's closing charge (cents) may have followed it
    assert float(balance) - 0.1 < float(user.get("/balance").json()["balance"]) <= float(balance)
    assert float(balance) > 1010
    names = {i["name"] for i in all_instances(user)}
    assert names == {running, stopped, late}
    user.wait_status(late, "Running")
    user.wait_status(running, "Stopped")
    assert user.instance(stopped).json()["status"] == "Stopped"
    assert user.post(f"/clusters/host-cluster/instances/{stopped}/power_on").status_code == 200
    user.wait_status(stopped, "Running")


def test_data_directory_and_bootstrap_file_are_private(server):
    assert (server.data_dir.stat().st_mode & 0o777) == 0o700
    assert ((server.data_dir / "bootstrap.json").stat().st_mode & 0o777) == 0o600
    server.new_user().create()
    files = list(server.data_dir.iterdir())
    assert any(f.name == "lattice.sqlite" for f in files)
    for f in files:
        assert (f.stat().st_mode & 0o077) == 0, f"{f.name} is open to others"


def test_a_keyed_create_killed_mid_flight_runs_once_when_retried(make_server):
    """kill -9 within 50 ms of a keyed create, restart, retry with the same key: one instance,
    one order, whichever side of the commit the kill fell on."""
    import random
    server = make_server(args=("--simulated-delay-scale", "0.1"))
    user = server.new_user(balance="100000")
    for loop in range(15):
        name = f"keyed-{loop}"
        body = user.create_body(display_name=name)
        headers = {**user.headers(), "Idempotency-Key": f"crash-create-{loop}"}
        url = user.url + "/mdc/api/v1/clusters/host-cluster/instances"

        def send():
            try:
                requests.post(url, json=body, headers=headers, timeout=5)
            except requests.RequestException:
                pass

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(random.uniform(0, 0.05))
        server.kill9()
        sender.join()
        server.start()
        user.url = server.url
        url = user.url + "/mdc/api/v1/clusters/host-cluster/instances"
        for _ in range(50):
            r = requests.post(url, json=body, headers=headers, timeout=10)
            if r.status_code != 409:  # IdempotencyKeyInUse while an abandoned claim ages (PostgreSQL)
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        answered = r.json()["name"]
        mine = [i for i in all_instances(user) if i["displayName"] == name]
        assert [i["name"] for i in mine] == [answered], (loop, mine)
        orders = [o for o in user.get("/orders?pageSize=100").json()["nodes"] if o["instanceName"] == answered]
        assert len(orders) == 1
        again = requests.post(url, json=body, headers=headers, timeout=10)
        assert again.status_code == 200 and again.json()["name"] == answered
