"""SPEC §12, second part: idle stop that keeps the disk, and wake on connect
through the SSH and HTTP gateways, on the simulated fleet with real clients."""
import os
import shutil
import time
from datetime import datetime, timedelta

import pytest
import requests

from conftest import wait_for
from test_gateways import SSH_OPTIONS, gateway_get, gateway_server, ssh

pytestmark = pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("sshpass")),
                                reason="needs openssh-client and sshpass")

ZERO = "0001-01-01T00:00:00Z"


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def idle_server(make_server):
    return gateway_server(make_server, "--meter-interval-seconds", "1")


def create(user, sku="66", **fields):
    body = user.create_body(sku=sku)
    body.update(fields)
    r = user.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 200, r.text
    return user.wait_status(r.json()["name"], "Running", timeout=60)


def test_idle_policies_are_checked_and_shown(make_server):
    server = make_server()
    user = server.new_user()
    for bad, field in [({"afterMinutes": 0}, "idleStop.afterMinutes"),
                       ({"afterMinutes": 10081}, "idleStop.afterMinutes"),
                       ({"afterMinutes": "x"}, "idleStop.afterMinutes"),
                       ({"gpuUtilizationBelow": 10}, "idleStop.afterMinutes"),
                       ({"afterMinutes": 5, "gpuUtilizationBelow": 0}, "idleStop.gpuUtilizationBelow"),
                       ({"afterMinutes": 5, "gpuUtilizationBelow": 101}, "idleStop.gpuUtilizationBelow"),
                       ("soon", "idleStop")]:
        body = user.create_body()
        body["idleStop"] = bad
        r = user.post("/clusters/host-cluster/instances", body)
        assert r.status_code == 400, (bad, r.text)
        assert field in r.json()["message"], (bad, r.text)
    body = user.create_body()
    body["wakeOnConnect"] = "yes please"
    assert user.post("/clusters/host-cluster/instances", body).status_code == 400

    instance = create(user, idleStop={"afterMinutes": 30, "gpuUtilizationBelow": 5}, wakeOnConnect=True)
    assert instance["idleStop"] == {"afterMinutes": 30, "gpuUtilizationBelow": 5}
    assert instance["wakeOnConnect"] is True
    since, stops = parse(instance["idle"]["since"]), parse(instance["idle"]["stopsAt"])
    assert stops - since == timedelta(minutes=30)
    name = instance["name"]
    path = f"/clusters/host-cluster/instances/{name}/idle_stop"
    r = user.post(path, {"afterMinutes": 0})
    assert r.status_code == 400 and r.json()["code"] == "InvalidField"
    r = user.post(path, {"wakeOnConnect": False})
    assert r.status_code == 200 and r.json()["wakeOnConnect"] is False
    assert r.json()["idleStop"] == {"afterMinutes": 30, "gpuUtilizationBelow": 5}, "only wakeOnConnect changed"
    r = user.post(path, {"afterMinutes": 2})
    assert r.status_code == 200 and r.json()["idleStop"] == {"afterMinutes": 2}
    assert parse(r.json()["idle"]["stopsAt"]) - parse(r.json()["idle"]["since"]) == timedelta(minutes=2)
    r = requests.post(server.url + "/mdc/api/v1" + path, data="null", headers=user.headers())
    assert r.status_code == 200, r.text
    assert "idleStop" not in r.json() and r.json()["idle"] == {"since": ZERO, "stopsAt": ZERO}
    plain = create(user)
    assert plain["wakeOnConnect"] is False and plain["idle"] == {"since": ZERO, "stopsAt": ZERO}
    # Prepaid terms are paid for: no idle stop.
    body = user.create_body(sku="101", cost_type="4", cost_time="1D")
    body["idleStop"] = {"afterMinutes": 5}
    r = user.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 400 and "idleStop" in r.json()["message"], r.text
    other = server.new_user()
    assert other.post(path, {"afterMinutes": 5}).status_code == 404


def test_an_idle_instance_stops_while_one_in_use_runs_and_both_wake(make_server):
    pexpect = pytest.importorskip("pexpect")
    server = idle_server(make_server)
    user = server.new_user()
    idle = create(user, idleStop={"afterMinutes": 1}, wakeOnConnect=True)
    used = create(user, idleStop={"afterMinutes": 1}, wakeOnConnect=True)
    web = create(user, idleStop={"afterMinutes": 1}, wakeOnConnect=True)
    # An open SSH session keeps `used` from being idle.
    child = pexpect.spawn("sshpass", ["-e", "ssh", *SSH_OPTIONS, "-tt", "-p", str(server.ssh_shared_port),
                                      "-o", "PubkeyAuthentication=no", f"{used['name']}@127.0.0.1"],
                          env={**os.environ, "SSHPASS": used["servers"]["SSH"]["sshPassword"]},
                          timeout=30, encoding="utf-8")
    child.expect(r"# ")
    started = time.time()
    stopped = user.wait_status(idle["name"], "Stopped", timeout=150)
    assert time.time() - started >= 40, "not before its minute"
    assert stopped["statusReason"].startswith("IdleStopped"), stopped["statusReason"]
    assert stopped["volumeMounts"][0]["PVCName"] == idle["volumeMounts"][0]["PVCName"], "the disk is kept"
    web_stopped = user.wait_status(web["name"], "Stopped", timeout=60)
    assert user.instance(used["name"]).json()["status"] == "Running", "a session is open"
    child.sendline("echo still-here")
    child.expect("still-here")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    audit = user.get("/audit?action=instance.idle_stopped").json()["nodes"]
    assert {e["target"] for e in audit} >= {idle["name"], web["name"]}, audit
    assert all(e["actor"] == "lattice:idle" for e in audit)
    # Told as events too (SPEC §13): instance.idle_stopped, once each.
    events = user.get("/events", params={"follow": "false"}).json()["events"]
    told = [e["instance"] for e in events if e["type"] == "instance.idle_stopped"]
    assert sorted(told) == sorted([idle["name"], web["name"]]), told

    # Wake on connect over SSH: the session waits with a banner, then runs.
    out = ssh(server.ssh_shared_port, idle["name"], "echo hi", password=idle["servers"]["SSH"]["sshPassword"],
              timeout=120)
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert "waking" in out.stderr, out.stderr
    assert user.instance(idle["name"]).json()["status"] == "Running"

    # ... and over HTTP: a browser gets a page that reloads, other clients 503 + Retry-After.
    uid, token = web_stopped["uid"], web["servers"]["Jupyterlab"].split("token=")[1]
    r = gateway_get(server, uid, "/jupyter", headers={"Cookie": f"lattice_jupyter={token}", "Accept": "text/html"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
    assert 'http-equiv="refresh"' in r.text and "starting" in r.text
    r = gateway_get(server, uid, "/jupyter", headers={"Cookie": f"lattice_jupyter={token}"})
    assert r.status_code == 503 and "Retry-After" in r.headers and "refresh" not in r.text
    user.wait_status(web["name"], "Running", timeout=60)
    r = gateway_get(server, uid, "/jupyter", headers={"Cookie": f"lattice_jupyter={token}"})
    assert r.status_code == 502, "up: the request goes through to the (empty) workload"
    wakes = user.get("/audit?action=instance.power_on").json()["nodes"]
    assert {e["target"] for e in wakes if e["actor"] == "gateway:wake"} == {idle["name"], web["name"]}


def test_no_wake_without_the_flag_or_without_free_gpus(make_server, tmp_path):
    server = idle_server(make_server)
    user = server.new_user()
    plain = create(user)
    r = user.post(f"/clusters/host-cluster/instances/{plain['name']}/power_off", {})
    assert r.status_code == 200
    user.wait_status(plain["name"], "Stopped")
    out = ssh(server.ssh_shared_port, plain["name"], "echo hi", password=plain["servers"]["SSH"]["sshPassword"])
    assert out.returncode != 0 and "not Running" in out.stderr, out.stderr
    assert user.instance(plain["name"]).json()["status"] == "Stopped"

    # Every GPU of the SKU taken while the instance sleeps: told so in words, it stays Stopped.
    sleeper = create(user, sku="3", wakeOnConnect=True)
    r = user.post(f"/clusters/host-cluster/instances/{sleeper['name']}/power_off", {})
    user.wait_status(sleeper["name"], "Stopped")
    hog = server.new_user(balance="100000")
    while True:
        r = hog.post("/clusters/host-cluster/instances", hog.create_body(sku="3"))
        if r.status_code == 409 and r.json()["code"] == "QuotaExceeded":
            hog = server.new_user(balance="100000")
            continue
        if r.status_code == 409 and r.json()["code"] == "InsufficientCapacity":
            assert "GPU" in r.json()["message"], r.text
            break
        assert r.status_code == 200, r.text
    assert hog.remain("3") == 0
    out = ssh(server.ssh_shared_port, sleeper["name"], "echo hi", password=sleeper["servers"]["SSH"]["sshPassword"])
    assert out.returncode != 0 and "no free GPUs" in out.stderr, out.stderr
    r = gateway_get(server, sleeper["uid"], "/jupyter",
                    headers={"Cookie": f"lattice_jupyter={sleeper['servers']['Jupyterlab'].split('token=')[1]}"})
    assert r.status_code == 503 and "no free GPUs" in r.text and "Retry-After" not in r.headers
    wait_for(lambda: user.instance(sleeper["name"]).json()["status"] == "Stopped", timeout=5)


def test_the_command_line_sets_and_clears_idle_stop(server, tmp_path):
    import json
    import subprocess

    from conftest import lattice_binary
    user = server.new_user()
    name = user.create().json()["name"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_NAMESPACE": user.namespace,
                "LATTICE_CONFIG": str(tmp_path / "c.json")})

    def run(*args, ok=True):
        out = subprocess.run([lattice_binary(), *args], capture_output=True, text=True, timeout=60, env=env)
        assert (out.returncode == 0) == ok, (args, out.stdout, out.stderr)
        return json.loads(out.stdout) if ok and "-o" in args else out

    set_ = run("instances", "idle-stop", name, "--after", "45", "--gpu-below", "10", "--wake-on-connect", "-o", "json")
    assert set_["idleStop"] == {"afterMinutes": 45, "gpuUtilizationBelow": 10} and set_["wakeOnConnect"] is True
    kept = run("instances", "idle-stop", name, "--no-wake-on-connect", "-o", "json")
    assert kept["idleStop"] == set_["idleStop"] and kept["wakeOnConnect"] is False
    assert kept["idle"] == set_["idle"], "changing only wakeOnConnect leaves the clock alone"
    cleared = run("instances", "idle-stop", name, "--clear", "-o", "json")
    assert "idleStop" not in cleared and cleared["idle"]["stopsAt"] == ZERO
    bad = run("instances", "idle-stop", name, "--after", "0", ok=False)
    assert "afterMinutes" in bad.stderr
    assert "--clear" in run("instances", "idle-stop", name, ok=False).stderr


def test_an_idle_clock_survives_a_kill_9(make_server):
    server = idle_server(make_server)
    user = server.new_user()
    instance = create(user, idleStop={"afterMinutes": 1})
    stops_at = instance["idle"]["stopsAt"]
    time.sleep(5)
    server.kill9()
    server.start()
    user.url = server.url
    assert user.instance(instance["name"]).json()["idle"]["stopsAt"] == stops_at, "the clock is in the record"
    stopped = user.wait_status(instance["name"], "Stopped", timeout=120)
    assert stopped["statusReason"].startswith("IdleStopped")
    assert datetime.now(parse(stops_at).tzinfo) >= parse(stops_at)
