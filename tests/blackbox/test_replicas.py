"""Three `lattice serve` replicas on one PostgreSQL database (issue: PostgreSQL and several
replicas). They share one data directory, as replicas on one host share the simulated
fleet's state file; each has its own port."""
import concurrent.futures
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest
import requests

from conftest import Client, Server, json_lines, new_database, store_column, wait_for, write_catalog
from shapes import assert_same_shape
from test_seed_examples import run_example, sample

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
        # Long enough that a test sees Creating on a loaded machine.
        startDelaySeconds: 4
        stopDelaySeconds: 4
        nodes:
          - {name: t4-a, gpuModel: T4, gpuCount: 8, cpuCores: 128, memoryGiB: 512}
gpuSkus:
  - {id: "t4", name: T4, regionID: r1, clusterName: small, gpuModel: T4, gpuCount: 1, cpuCores: 8, memoryGiB: 32, sellingType: 1, price: "1.20"}
diskSkus:
  - {id: "1", type: shared-filesystem, pricePerGBDay: "0.01"}
images:
  - name: images.test.local/matrixdc/ubuntu:22.04
"""
IMAGE = "images.test.local/matrixdc/ubuntu:22.04"


def start_replicas(tmp_path, extra=()):
    url = new_database()
    args = ["--catalog", write_catalog(tmp_path, CATALOG), "--database-url", url, "--meter-interval-seconds", "0.5",
            *extra]
    servers = [Server(tmp_path / "shared", args) for _ in range(3)]
    for server in servers:
        server.start()
    admin = servers[0].client()
    assert admin.post("/admin/users/admin/credit", {"amount": "100000"}).status_code == 200
    return servers


@pytest.fixture
def replicas(tmp_path):
    servers = start_replicas(tmp_path)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def charging_replicas(tmp_path):
    """Three replicas that charge pay-as-you-go by the second."""
    servers = start_replicas(tmp_path, ["--charge-period-seconds", "1"])
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def seed_replicas(tmp_path):
    """Three replicas on the built-in catalog, as the seed's examples expect it."""
    args = ["--database-url", new_database(), "--annotation-domain", "demo.cdc.datenfab.com",
            "--simulated-delay-scale", "0.2"]
    servers = [Server(tmp_path / "shared", args) for _ in range(3)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def readiness(server):
    try:
        r = requests.get(server.url + "/readyz", timeout=5)
    except requests.RequestException:
        return None
    return r.json() if r.status_code == 200 else None


def leader(servers):
    """The replica that says it leads (None if none does yet)."""
    for server in servers:
        if server.proc and (readiness(server) or {}).get("role") == "leader":
            return server
    return None


def as_user(server, user):
    return Client(server.url, user.token, user.namespace)


def create(client):
    return client.post("/clusters/small/instances", client.create_body(sku="t4", image=IMAGE))


def test_one_leader_and_every_replica_serves_the_seed_flow(replicas):
    wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    roles = sorted(readiness(r)["role"] for r in replicas)
    assert roles == ["leader", "replica", "replica"], roles
    assert len({readiness(r)["leader"] for r in replicas}) == 1, "every replica names the same leader"

    user = replicas[0].new_user(balance="1000")
    a, b, c = (as_user(r, user) for r in replicas)
    made = create(a)
    assert made.status_code == 200, made.text
    name = made.json()["name"]
    b.wait_status(name, "Running", cluster="small")
    listed = c.get("/clusters/small/instances?page=1&pageSize=10").json()
    assert [n["name"] for n in listed["nodes"]] == [name] and listed["totalCount"] == 1
    assert c.post(f"/clusters/small/instances/{name}/power_off", {"gracePeriodSeconds": 0}).status_code == 200
    a.wait_status(name, "Stopped", cluster="small")
    assert b.post(f"/clusters/small/instances/{name}/power_on").status_code == 200
    c.wait_status(name, "Running", cluster="small")
    assert a.delete(f"/clusters/small/instances?name={name}").status_code == 200
    b.wait_status(name, None, cluster="small")


def test_the_seed_examples_work_through_each_replica(seed_replicas):
    a, b, c = seed_replicas
    user = a.new_user()
    on = {r: as_user(r, user) for r in seed_replicas}

    assert_same_shape(sample("regions"), json.loads(run_example("regions", a, user)))
    assert_same_shape(sample("skus"), json.loads(run_example("skus", b, user)))
    created = json.loads(run_example("create", c, user))
    assert_same_shape(sample("create"), created)
    name = created["name"]
    on[a].wait_status(name, "Running")
    listed = json.loads(run_example("list", a, user))
    assert_same_shape(sample("list"), listed)
    assert [n["name"] for n in listed["nodes"]] == [name]
    got = json.loads(run_example("get", b, user, {"instance-4ca9xxxx": name}))
    assert_same_shape(sample("get"), got)
    assert run_example("power_off", c, user, {"instance-3ba5xxxx": name}) == '"ok"'
    on[a].wait_status(name, "Stopped")
    images = on[b].get("/images").json()["nodes"]
    assert any(i["name"] == f"images.neolink-ai.com/{user.namespace}/image1:v1.1.0" and i["status"] == "Ready"
               for i in images), images
    assert run_example("power_on", a, user, {"instance-4ca9xxxx": name}) == '"ok"'
    on[c].wait_status(name, "Running")
    assert run_example("delete", b, user, {"instance-ccffxxxx": name}) == '"ok"'
    on[c].wait_status(name, None)


def test_concurrent_creates_over_three_replicas_never_oversell(replicas):
    wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    admins = [r.client() for r in replicas]

    def attempt(i):
        r = create(admins[i % 3])
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(attempt, range(40)))
    made = sorted(body["name"] for status, body in answers if status == 200)
    refused = [body for status, body in answers if status != 200]
    assert len(made) == 8, answers
    assert all(body["code"] == "InsufficientCapacity" for body in refused), refused
    for admin in admins:
        listed = admin.get("/clusters/small/instances?page=1&pageSize=100").json()
        assert sorted(n["name"] for n in listed["nodes"]) == made
        assert admin.remain("t4") == 0
    rows = store_column(replicas[0], "SELECT node || ':' || gpu_index FROM gpu_allocations")
    assert len(rows) == 8 and len(set(rows)) == 8
    ports = store_column(replicas[0], "SELECT ssh_port FROM instances")
    assert len(set(ports)) == 8


def test_kill9_of_the_leader_hands_over_and_everything_converges(replicas):
    first = wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    epoch = int(readiness(first)["epoch"])
    admin = replicas[0].client()
    running = [create(admin).json()["name"] for _ in range(3)]
    for name in running:
        admin.wait_status(name, "Running", cluster="small")
    stopping = running[:2]
    for name in stopping:
        # A grace period keeps them Stopping past the kill (with 0 the simulated fleet stops
        # at once, and the leader, told by the change feed, records Stopped within ms).
        r = admin.post(f"/clusters/small/instances/{name}/power_off", {"gracePeriodSeconds": 3})
        assert r.status_code == 200, r.text
        assert admin.instance(name, "small").json()["status"] == "Stopping"
    creating = [create(admin).json()["name"] for _ in range(3)]
    assert all(admin.instance(n, "small").json()["status"] == "Creating" for n in creating)
    killed_at = time.time()
    first.kill9()
    rest = [r for r in replicas if r is not first]
    second = wait_for(lambda: leader(rest), timeout=15, what="a new leader")
    assert time.time() - killed_at < 15
    assert int(readiness(second)["epoch"]) == epoch + 1, "the new leader fences with the next epoch"
    client = second.client()
    for name in creating:
        client.wait_status(name, "Running", cluster="small", timeout=20)
    for name in stopping:
        client.wait_status(name, "Stopped", cluster="small", timeout=20)
    assert client.instance(running[2], "small").json()["status"] == "Running", "the running one was adopted"
    statuses = [n["status"] for n in client.get("/clusters/small/instances?page=1&pageSize=100").json()["nodes"]]
    assert sorted(statuses) == ["Running"] * 4 + ["Stopped"] * 2


def compute_periods(server, name):
    """(start, end) of every compute charge of `name`, as the ledger holds them."""
    docs = store_column(server, f"SELECT doc FROM ledger WHERE kind = 'compute' AND doc LIKE '%\"{name}\"%'")
    periods = [(json.loads(d).get("periodStart"), json.loads(d).get("periodEnd")) for d in docs]
    return sorted(p for p in periods if p[0] is not None)


def test_a_leader_paused_past_its_lease_is_fenced_when_it_resumes(charging_replicas):
    """SIGSTOP the leader past its lease: another replica leads with the next epoch and
    goes on metering and reconciling; after SIGCONT the old leader's late writes are
    refused, so no period is charged twice and no stopped instance is started again."""
    replicas = charging_replicas
    first = wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    epoch = int(readiness(first)["epoch"])
    rest = [r for r in replicas if r is not first]
    user = rest[0].new_user(balance="1000")
    client = as_user(rest[0], user)
    name = create(client).json()["name"]
    client.wait_status(name, "Running", cluster="small")
    wait_for(lambda: len(compute_periods(first, name)) >= 2, what="the old leader charging")
    first.proc.send_signal(signal.SIGSTOP)
    try:
        second = wait_for(lambda: leader(rest), timeout=30, what="a new leader while the old one is paused")
        assert int(readiness(second)["epoch"]) == epoch + 1, "the new leader fences with the next epoch"
        charged = len(compute_periods(first, name))
        wait_for(lambda: len(compute_periods(first, name)) > charged + 2, what="the new leader charging")
        r = client.post(f"/clusters/small/instances/{name}/power_off", {"gracePeriodSeconds": 0})
        assert r.status_code == 200, r.text
        client.wait_status(name, "Stopped", cluster="small", timeout=20)
    finally:
        first.proc.send_signal(signal.SIGCONT)
    # The old leader wakes with writes in flight (its meter and reconciler were mid-pass):
    # the lease row no longer names it at its epoch, so it follows and writes nothing.
    wait_for(lambda: (readiness(first) or {}).get("role") == "replica", timeout=15, what="the old leader to step down")

    def stepped_down():
        entries = json_lines(pathlib.Path(first.log.name).read_text(errors="replace"))
        said = [e for e in entries if e.get("message") == "this replica no longer leads"]
        return said or None

    said = wait_for(stepped_down, timeout=10, what="the old leader to say it stepped down")
    assert any(e.get("epoch") == str(epoch + 1) for e in said), ("it names the new leader's epoch", epoch, said)
    time.sleep(3)  # several meter intervals (0.5 s) for any late write to land
    assert leader(replicas) is second
    assert client.instance(name, "small").json()["status"] == "Stopped", "no replica started it again"
    periods = compute_periods(first, name)
    assert len(periods) > 4
    for (a_start, a_end), (b_start, b_end) in zip(periods, periods[1:]):
        assert a_end <= b_start, f"charged twice: {a_start}-{a_end} and {b_start}-{b_end}"
    balance = float(client.get("/balance").json()["balance"])
    charges = sum(float(str(json.loads(d)["amount"])) for d in store_column(
        first, f"SELECT doc FROM ledger WHERE namespace = '{user.namespace}' AND kind <> 'credit'"))
    assert abs(balance - (1000 - charges)) < 0.0001, "balance = credits - charges"


def test_sigterm_hands_the_lease_over_at_once(replicas):
    first = wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    epoch = int(readiness(first)["epoch"])
    assert first.terminate(timeout=20) == 0
    stopped_at = time.time()
    rest = [r for r in replicas if r.proc]
    second = wait_for(lambda: leader(rest), timeout=10, interval=0.05, what="a new leader")
    took = time.time() - stopped_at
    # the lease would lapse after 10 s and a replica would notice within 3.3 s more
    assert took < 2, f"handover took {took:.1f} s"
    assert int(readiness(second)["epoch"]) == epoch + 1


def test_token_revoked_on_one_replica_is_refused_by_another_within_a_second(replicas):
    user = replicas[0].new_user(balance="10")
    made = as_user(replicas[0], user).post("/tokens", {"name": "ci"}).json()
    token_on_c = Client(replicas[2].url, made["token"], user.namespace)
    for _ in range(3):
        assert token_on_c.get("/balance").status_code == 200  # cached on C now
    assert as_user(replicas[0], user).delete(f"/tokens/{made['id']}").status_code == 200
    revoked_at = time.time()
    wait_for(lambda: token_on_c.get("/balance").status_code == 401, timeout=1, interval=0.02,
             what="the revoked token to be refused on another replica")
    assert time.time() - revoked_at < 1
    # regenerate: the old secret stops working everywhere too
    other = as_user(replicas[0], user).post("/tokens", {"name": "ci2"}).json()
    old_on_b = Client(replicas[1].url, other["token"], user.namespace)
    assert old_on_b.get("/balance").status_code == 200
    assert as_user(replicas[2], user).post(f"/tokens/{other['id']}/regenerate").status_code == 200
    wait_for(lambda: old_on_b.get("/balance").status_code == 401, timeout=1, interval=0.02,
             what="the regenerated token's old secret to be refused")


PG_DATA = os.environ.get("LATTICE_TEST_PG_DATA")
PG_BIN = os.environ.get("LATTICE_TEST_PG_BIN")
PG_OPTIONS = os.environ.get("LATTICE_TEST_PG_OPTIONS")


def pg_ctl(*args):
    # The server's output goes to its log (a started server would hold a captured pipe open).
    log = os.path.join(os.path.dirname(PG_DATA), "server.log")
    cmd = [f"{PG_BIN}/pg_ctl", "-D", PG_DATA, "-l", log, "-w", *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


@pytest.mark.skipif(not (PG_DATA and PG_BIN and PG_OPTIONS), reason="the test PostgreSQL server is not ours to stop")
def test_database_outage_gives_503s_then_full_recovery(replicas):
    wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    admin = replicas[1].client()
    names = [create(admin).json()["name"] for _ in range(4)]
    for name in names:
        admin.wait_status(name, "Running", cluster="small")
    pg_ctl("-m", "fast", "stop")
    try:
        outage_started = time.time()
        for replica in replicas:
            started = time.time()
            r = replica.client().get("/clusters/small/instances?page=1&pageSize=10")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "DatabaseUnavailable" and "database" in r.json()["message"]
            assert time.time() - started < 12, "a call without a database answers, it does not hang"
            r = create(replica.client())
            assert r.status_code == 503, r.text
        time.sleep(max(0, 10 - (time.time() - outage_started)))
    finally:
        pg_ctl("-o", PG_OPTIONS, "start")
    # every replica recovers by itself, and nothing was lost or charged twice
    for replica in replicas:
        wait_for(lambda: replica.client().get("/balance").status_code == 200, timeout=30,
                 what="the replica to reach the database again")
    wait_for(lambda: leader(replicas), timeout=30, what="a leader after the outage")
    listed = admin.get("/clusters/small/instances?page=1&pageSize=100").json()
    assert sorted(n["name"] for n in listed["nodes"]) == sorted(names)
    assert all(n["status"] == "Running" for n in listed["nodes"])
    made = create(admin)
    assert made.status_code == 200, made.text
    admin.wait_status(made.json()["name"], "Running", cluster="small")
    keys = store_column(replicas[0], "SELECT idempotency_key FROM ledger")
    assert len(keys) == len(set(keys))
    ledger_sum = store_column(replicas[0], """
        SELECT SUM(CASE WHEN kind = 'credit' THEN amount_units ELSE -amount_units END) FROM ledger
        WHERE namespace = 'admin'""")
    kept = store_column(replicas[0], "SELECT balance_units FROM users WHERE namespace = 'admin'")
    assert ledger_sum == kept, "the kept balance equals the ledger"


def test_a_console_session_works_on_every_replica_and_a_secret_shows_once(replicas):
    user = replicas[0].new_user(balance="10")
    browser = requests.Session()
    browser.get(replicas[0].url + "/console/login")
    r = browser.post(replicas[0].url + "/console/login",
                     data={"csrf": browser.cookies["lattice_csrf"], "namespace": user.namespace, "token": user.token},
                     allow_redirects=False)
    assert r.status_code == 303 and "lattice_session" in browser.cookies
    csrf = browser.cookies["lattice_csrf"]
    # signed in on B too (the cookie is the host's, whatever the port)
    page = browser.get(replicas[1].url + "/console/tokens", allow_redirects=False)
    assert page.status_code == 200 and user.namespace in page.text
    r = browser.post(replicas[1].url + "/console/tokens", data={"csrf": csrf, "name": "from-b"},
                     allow_redirects=False)
    assert r.status_code == 303
    # the new secret is shown once, by whichever replica serves the next page
    shown = browser.get(replicas[2].url + "/console/tokens").text
    assert "lat_" in shown and "from-b" in shown
    again = browser.get(replicas[0].url + "/console/tokens").text
    assert "from-b" in again and again.count("lat_") < shown.count("lat_")
    # signing out on C ends the session everywhere
    assert browser.post(replicas[2].url + "/console/logout", data={"csrf": csrf},
                        allow_redirects=False).status_code == 303
    assert browser.get(replicas[0].url + "/console/tokens", allow_redirects=False).status_code == 303


def test_events_cross_replicas_and_a_stream_moves_without_missing_any(tmp_path):
    """A stream on one replica tells a write made through another at once; resumed on a
    third with Last-Event-ID it misses nothing; a webhook is delivered by the leader once."""
    from test_events import Receiver, Stream, verify
    servers = start_replicas(tmp_path, ["--webhook-allow-private"])
    try:
        user = servers[0].new_user()
        receiver = Receiver()
        hook = user.post("/webhooks", {"url": receiver.url, "events": ["instance.created"]}).json()
        watcher = Stream(as_user(servers[1], user))
        writer = as_user(servers[2], user)
        started = time.time()
        name = create(writer).json()["name"]
        wait_for(lambda: any(e["type"] == "instance.created" for e in watcher.events), timeout=5,
                 what="the create on another replica's stream")
        assert time.time() - started < 2, "told through LISTEN/NOTIFY, not a poll"
        seen = watcher.events[-1]["id"]
        watcher.close()
        writer.wait_status(name, "Running", cluster="small")
        moved = Stream(as_user(servers[0], user), last_event_id=seen)
        wait_for(lambda: "Running" in moved.statuses(name), timeout=20, what="the missed events on the third")
        ids = [int(e["id"]) for e in moved.events]
        assert ids[0] == int(seen) + 1 and ids == sorted(ids)
        moved.close()
        wait_for(lambda: receiver.received, timeout=20, what="the webhook delivery")
        time.sleep(2)
        assert len(receiver.received) == 1, "one replica (the leader) delivers, once"
        verify(hook["secret"], *receiver.received[0])
        receiver.close()
    finally:
        for server in servers:
            server.stop()


def test_an_idle_timer_survives_the_leaders_kill_9(replicas):
    """The idle clock is in the instance's record: a new leader stops the instance when its
    minute is up, neither restarted by the failover nor lost with the old leader."""
    first = wait_for(lambda: leader(replicas), timeout=15, what="a leader")
    rest = [r for r in replicas if r is not first]
    client = as_user(rest[0], rest[0].new_user())
    body = client.create_body(sku="t4", image=IMAGE)
    body["idleStop"] = {"afterMinutes": 1}
    r = client.post("/clusters/small/instances", body)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    running = client.wait_status(name, "Running", cluster="small", timeout=30)
    stops_at = running["idle"]["stopsAt"]
    time.sleep(20)
    first.kill9()
    wait_for(lambda: leader(rest), timeout=20, what="a new leader")
    assert client.instance(name, "small").json()["idle"]["stopsAt"] == stops_at, "the clock did not restart"
    started = time.time()
    stopped = client.wait_status(name, "Stopped", cluster="small", timeout=90)
    assert stopped["statusReason"].startswith("IdleStopped"), stopped["statusReason"]
    assert time.time() - started < 60, "stopped when its minute was up, not a minute after the failover"
    events = client.get("/events", params={"follow": "false"}).json()["events"]
    assert [e["instance"] for e in events if e["type"] == "instance.idle_stopped"] == [name], "told once"
