"""SPEC §12, first part: a scheduled stop powers off (or deletes) an instance at its time,
set at create or through schedule_stop, kept across a restart."""
import time

from conftest import wait_for

ZERO = "0001-01-01T00:00:00Z"


def rfc3339(seconds_from_now):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))


def test_an_instance_scheduled_ahead_is_stopped_after_it_and_kept_across_a_restart(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--meter-interval-seconds", "1"))
    user = server.new_user()
    body = user.create_body()
    body["ScheduleStopTimestamp"] = rfc3339(20)
    r = user.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 200, r.text
    inst = r.json()
    assert inst["ScheduleStopTimestamp"] != ZERO and inst["scheduleStopAction"] == "power_off"
    user.wait_status(inst["name"], "Running")
    server.kill9()
    server.start()
    user.url = server.url
    assert user.instance(inst["name"]).json()["ScheduleStopTimestamp"] == inst["ScheduleStopTimestamp"]
    assert user.instance(inst["name"]).json()["status"] == "Running"
    stopped = user.wait_status(inst["name"], "Stopped", timeout=40)
    assert stopped["statusReason"].startswith("ScheduledStop: powered off as scheduled")
    assert stopped["ScheduleStopTimestamp"] == ZERO
    # Powered on again it runs on: the schedule was used up.
    assert user.post(f"/clusters/host-cluster/instances/{inst['name']}/power_on").status_code == 200
    user.wait_status(inst["name"], "Running")
    time.sleep(3)
    assert user.instance(inst["name"]).json()["status"] == "Running"


def test_schedule_stop_with_delete_and_clearing(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--meter-interval-seconds", "1"))
    user = server.new_user()
    doomed, kept = user.create().json()["name"], user.create().json()["name"]
    for name in (doomed, kept):
        user.wait_status(name, "Running")
    path = "/clusters/host-cluster/instances/{}/schedule_stop"
    r = user.post(path.format(doomed), {"at": rfc3339(4), "action": "delete"})
    assert r.status_code == 200 and r.json()["scheduleStopAction"] == "delete", r.text
    r = user.post(path.format(kept), {"at": rfc3339(4)})
    assert r.status_code == 200 and r.json()["scheduleStopAction"] == "power_off"
    r = user.post(path.format(kept), {"at": ZERO})
    assert r.status_code == 200 and r.json()["ScheduleStopTimestamp"] == ZERO and r.json()["scheduleStopAction"] == ""
    user.wait_status(doomed, None, timeout=30)
    time.sleep(3)
    assert user.instance(kept).json()["status"] == "Running"


def test_bad_schedules_get_clear_errors(server):
    user = server.new_user()
    name = user.create().json()["name"]
    path = f"/clusters/host-cluster/instances/{name}/schedule_stop"
    for body, field in (({}, "at"), ({"at": "soon"}, "at"), ({"at": rfc3339(-60)}, "at"),
                        ({"at": rfc3339(60), "action": "hibernate"}, "action")):
        r = user.post(path, body)
        assert r.status_code == 400 and r.json()["message"].startswith(field), (body, r.text)
    assert user.post("/clusters/host-cluster/instances/instance-00000000/schedule_stop",
                     {"at": rfc3339(60)}).status_code == 404
    body = user.create_body()
    body["ScheduleStopTimestamp"] = "next week"
    r = user.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 400 and r.json()["message"].startswith("ScheduleStopTimestamp")
    body["ScheduleStopTimestamp"] = rfc3339(-5)
    assert user.post("/clusters/host-cluster/instances", body).status_code == 400
    # Another namespace cannot schedule this one.
    assert server.new_user().post(path, {"at": rfc3339(60)}).status_code == 404


def test_the_command_line_schedules_and_clears(server, tmp_path):
    import json
    import os
    import subprocess

    from conftest import lattice_binary
    user = server.new_user()
    name = user.create().json()["name"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_NAMESPACE": user.namespace,
                "LATTICE_CONFIG": str(tmp_path / "c.json")})

    def run(*args):
        out = subprocess.run([lattice_binary(), *args], capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, (args, out.stderr)
        return json.loads(out.stdout)

    assert run("instances", "schedule-stop", name, "--at", "+2h", "--delete", "-o", "json")["scheduleStopAction"] == "delete"
    assert run("instances", "schedule-stop", name, "--clear", "-o", "json")["ScheduleStopTimestamp"] == ZERO


def test_budgets_block_then_stop_and_admins_set_them_for_anyone(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--meter-interval-seconds", "1"))
    admin = server.client()
    user = server.new_user(balance="1000")
    assert user.get("/budget").status_code == 404
    for body in ({}, {"monthlyLimit": "0"}, {"monthlyLimit": "5", "action": "pause"},
                 {"monthlyLimit": "5", "alertAt": ["x"]}):
        r = user.put("/budget", body)
        assert r.status_code == 400 and r.json()["code"], (body, r.text)
    r = user.put("/budget", {"monthlyLimit": "10", "alertAt": [50, 80, 100], "action": "block"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["monthlyLimit"] == "10.00" and b["action"] == "block" and b["spentThisMonth"] == "0.00"
    assert set(b) >= {"monthlyLimit", "alertAt", "action", "spentThisMonth", "forecast"}
    running = user.create().json()["name"]
    user.wait_status(running, "Running")
    # Spend passes the limit (an operator's debit is spending): the next create is refused.
    assert admin.post(f"/admin/users/{user.namespace}/debit", {"amount": "12", "reason": "support"}).status_code == 200
    b = user.get("/budget").json()
    assert b["spentThisMonth"] == "12.00" and float(b["forecast"]) >= 12
    r = user.create()
    assert r.status_code == 402 and r.json()["code"] == "BudgetExceeded", r.text
    time.sleep(2)
    assert user.instance(running).json()["status"] == "Running", "block does not stop what runs"
    # A tenant cannot set another's budget; an admin can, and at stop it powers off what runs.
    assert user.put(f"/budget?namespace=admin", {"monthlyLimit": "1"}).status_code == 403
    r = admin.put(f"/budget?namespace={user.namespace}", {"monthlyLimit": "10", "action": "stop"})
    assert r.status_code == 200 and r.json()["namespace"] == user.namespace
    stopped = user.wait_status(running, "Stopped", timeout=30)
    assert stopped["statusReason"].startswith("BudgetExceeded")
    r = user.post(f"/clusters/host-cluster/instances/{running}/power_on")
    assert r.status_code == 402 and r.json()["code"] == "BudgetExceeded"
    # Raised, it lets the power on through.
    assert user.put("/budget", {"monthlyLimit": "100", "action": "stop"}).status_code == 200
    assert user.post(f"/clusters/host-cluster/instances/{running}/power_on").status_code == 200


def test_lattice_budget_sets_and_shows(server, tmp_path):
    import json
    import os
    import subprocess

    from conftest import lattice_binary
    user = server.new_user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_NAMESPACE": user.namespace,
                "LATTICE_CONFIG": str(tmp_path / "c.json")})
    out = subprocess.run([lattice_binary(), "budget", "set", "--limit", "250", "--action", "block", "-o", "json"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["monthlyLimit"] == "250.00"
    out = subprocess.run([lattice_binary(), "budget"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and "spent this month" in out.stdout and "block" in out.stdout, out.stderr


def test_a_namespace_default_idle_stop_applies_to_creates_that_say_nothing(make_server):
    server = make_server()
    user = server.new_user()
    assert user.get("/idle_stop").status_code == 404
    r = user.put("/idle_stop", {"afterMinutes": 45, "gpuUtilizationBelow": 5, "wakeOnConnect": True})
    assert r.status_code == 200, r.text
    assert r.json() == {**r.json(), "namespace": user.namespace, "afterMinutes": 45, "gpuUtilizationBelow": 5,
                        "wakeOnConnect": True}
    assert user.get("/idle_stop").json()["afterMinutes"] == 45
    for bad in [{"afterMinutes": 0}, {"afterMinutes": "x"}, {}, {"afterMinutes": 30, "gpuUtilizationBelow": 101}]:
        r = user.put("/idle_stop", bad)
        assert r.status_code == 400 and "afterMinutes" in r.text or "gpuUtilizationBelow" in r.text, (bad, r.text)

    plain = user.create()
    assert plain.status_code == 200, plain.text
    assert plain.json()["idleStop"] == {"afterMinutes": 45, "gpuUtilizationBelow": 5}
    assert plain.json()["wakeOnConnect"] is True
    body = user.create_body()
    body["idleStop"] = None
    opted_out = user.post("/clusters/host-cluster/instances", body)
    assert opted_out.status_code == 200 and not opted_out.json().get("idleStop"), opted_out.text
    body = user.create_body()
    body["idleStop"] = {"afterMinutes": 5}
    own = user.post("/clusters/host-cluster/instances", body)
    assert own.json()["idleStop"]["afterMinutes"] == 5
    prepaid = user.create(sku="101", cost_type="4", cost_time="1D")
    assert prepaid.status_code == 200, prepaid.text
    assert not prepaid.json().get("idleStop")

    other = server.new_user()
    assert other.put(f"/idle_stop?namespace={user.namespace}", {"afterMinutes": 5}).status_code == 403
    admin = server.client()
    r = admin.put(f"/idle_stop?namespace={user.namespace}", {"afterMinutes": 90})
    assert r.status_code == 200 and r.json()["namespace"] == user.namespace
    assert user.get("/idle_stop").json()["afterMinutes"] == 90
    assert user.delete("/idle_stop").status_code == 200
    assert user.delete("/idle_stop").status_code == 404
    assert not user.create().json().get("idleStop")
    actions = {e["action"] for e in user.get("/audit").json()["nodes"]}
    assert {"idle_default.set", "idle_default.clear"} <= actions


def test_lattice_idle_default_sets_shows_and_clears(server, tmp_path):
    import json
    import os
    import subprocess

    from conftest import lattice_binary
    user = server.new_user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_NAMESPACE": user.namespace,
                "LATTICE_CONFIG": str(tmp_path / "c.json")})

    def run(*args):
        return subprocess.run([lattice_binary(), "idle-default", *args], capture_output=True, text=True, timeout=60,
                              env=env)

    out = run("set", "--after", "20", "--gpu-below", "10", "--wake-on-connect", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {**json.loads(out.stdout), "afterMinutes": 20, "gpuUtilizationBelow": 10,
                                      "wakeOnConnect": True}
    out = run()
    assert out.returncode == 0 and "20 minutes" in out.stdout, out.stdout + out.stderr
    assert user.create().json()["idleStop"] == {"afterMinutes": 20, "gpuUtilizationBelow": 10}
    assert run("set", "--after", "0").returncode == 1
    assert run("clear").returncode == 0
    out = run()
    assert out.returncode == 1 and "NotFound" in out.stderr
