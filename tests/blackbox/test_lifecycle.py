"""The instance lifecycle of SPEC §5, through the API."""
import time


def test_whole_lifecycle_with_wrong_state_verbs(server):
    user = server.new_user()
    before = user.remain("66")
    r = user.create()
    assert r.status_code == 200, r.text
    inst = r.json()
    name = inst["name"]
    assert inst["status"] == "Creating"
    assert inst["replicas"] == 1
    assert name.startswith("instance-") and len(name) == len("instance-") + 8
    assert user.remain("66") == before - 1

    # power_on while Creating makes no sense
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_on")
    assert r.status_code == 409 and r.json()["code"] == "InvalidState"

    running = user.wait_status(name, "Running")
    assert running["Pods"][0]["ip"]
    assert running["Pods"][0]["nodeScheduled"].startswith("gpu-4090")
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_on")
    assert r.status_code == 409 and r.json()["code"] == "InvalidState"

    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"gracePeriodSeconds": "", "needSnapshot": ""})
    assert r.status_code == 200 and r.json() == "ok"
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {})
    assert r.status_code == 409 and r.json()["code"] == "InvalidState"
    stopped = user.wait_status(name, "Stopped")
    assert stopped["replicas"] == 0
    assert stopped["Pods"] == []
    assert user.remain("66") == before, "GPUs are released while Stopped"

    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {})
    assert r.status_code == 409

    r = user.post(f"/clusters/host-cluster/instances/{name}/power_on")
    assert r.status_code == 200 and r.json() == "ok"
    assert user.remain("66") == before - 1
    user.wait_status(name, "Running")

    r = user.delete(f"/clusters/host-cluster/instances?name={name}")
    assert r.status_code == 200 and r.json() == "ok"
    user.wait_status(name, None)
    for verb in ("power_on", "power_off"):
        assert user.post(f"/clusters/host-cluster/instances/{name}/{verb}", {}).status_code == 404
    assert user.delete(f"/clusters/host-cluster/instances?name={name}").status_code == 404
    assert name not in [n["name"] for n in user.get("/clusters/host-cluster/instances").json()["nodes"]]
    assert user.remain("66") == before


def test_servers_are_stable_and_use_public_host(make_server):
    server = make_server(args=("--public-host", "gpu.example.test", "--simulated-delay-scale", "0.1"))
    user = server.new_user()
    name = user.create().json()["name"]
    first = user.instance(name).json()["servers"]
    user.wait_status(name, "Running")
    second = user.instance(name).json()["servers"]
    # The addresses stay; what runs behind them (servers.apps, SPEC §11) comes up with the instance.
    assert first.pop("apps") == {"jupyterlab": "absent", "tensorboard": "absent"}
    assert second.pop("apps") == {"jupyterlab": "running", "tensorboard": "running"}
    assert first == second
    assert "gpu.example.test" in first["SSH"]["sshAddr"]
    assert "/jupyter?token=" in first["Jupyterlab"] and "gpu.example.test" in first["Jupyterlab"]
    assert len(first["SSH"]["sshPassword"]) == 12


def test_lenient_scalars(server):
    user = server.new_user()
    body = user.create_body()
    body["Cost"]["CostType"] = 1
    body["Cost"]["GPUSKUID"] = 66
    body["Cost"]["DiskSKUID"] = 1
    body["VolumeMount"][0]["Size"] = "60"
    r = user.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 200, r.text
    inst = r.json()
    assert inst["cost"]["GPUSKUID"] == "66" and inst["volumeMounts"][1]["Size"] == 60
    name = inst["name"]
    user.wait_status(name, "Running")
    for grace, snap in ((10, False), ("10", "false"), ("", "False")):
        r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"gracePeriodSeconds": grace, "needSnapshot": snap})
        assert r.status_code == 200, r.text
        user.wait_status(name, "Stopped")
        assert user.post(f"/clusters/host-cluster/instances/{name}/power_on").status_code == 200
        user.wait_status(name, "Running")
    for snap in (True, "true", "True"):
        r = user.post(f"/clusters/host-cluster/instances/{name}/power_off",
                      {"gracePeriodSeconds": "1", "needSnapshot": snap, "imageName": "img", "tag": f"t{time.time_ns()}"})
        assert r.status_code == 200, r.text
        user.wait_status(name, "Stopped")
        assert user.post(f"/clusters/host-cluster/instances/{name}/power_on").status_code == 200
        user.wait_status(name, "Running")
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"needSnapshot": "yes"})
    assert r.status_code == 400 and "needSnapshot" in r.json()["message"]


def test_snapshot_can_be_used_as_an_image(server):
    user = server.new_user()
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"needSnapshot": True, "imageName": "mine", "tag": "v1"})
    assert r.status_code == 200
    user.wait_status(name, "Stopped")
    ref = f"images.neolink-ai.com/{user.namespace}/mine:v1"
    r = user.create(image=ref)
    assert r.status_code == 200, r.text
    other = server.new_user()
    r = other.create(image=ref)
    assert r.status_code == 422 and "image" in r.json()["message"]
    assert ref not in [i["name"] for i in other.get("/images").json()["nodes"]]


def test_prepaid_sets_schedule_stop(server):
    user = server.new_user()
    r = user.create(sku="101", cost_type="4", cost_time="3D")
    assert r.status_code == 200, r.text
    assert r.json()["ScheduleStopTimestamp"] != "0001-01-01T00:00:00Z"
    assert r.json()["cost"]["CostTime"] == "3D"
    for bad in ("", "0D", "3X", "-1D", "+3D", "2W"):
        r = user.create(sku="101", cost_type="4", cost_time=bad)
        assert r.status_code == 400, (bad, r.text)
        assert "CostTime" in r.json()["message"]
    r = user.create(sku="101", cost_type="1")
    assert r.status_code == 400 and "CostType" in r.json()["message"]


def test_lists_are_paginated(server):
    user = server.new_user()
    names = [user.create().json()["name"] for _ in range(5)]
    page = user.get("/clusters/host-cluster/instances?page=1&pageSize=2").json()
    assert page["totalCount"] == 5 and page["hasNextPage"] is True and len(page["nodes"]) == 2
    last = user.get("/clusters/host-cluster/instances?page=3&pageSize=2").json()
    assert last["hasNextPage"] is False and len(last["nodes"]) == 1
    seen = [n["name"] for p in (1, 2, 3) for n in user.get(f"/clusters/host-cluster/instances?page={p}&pageSize=2").json()["nodes"]]
    assert sorted(seen) == sorted(names)
    assert user.get("/clusters/host-cluster/instances?pageSize=1000").status_code == 200
    for bad in ("page=0", "pageSize=0", "page=-1", "page=x"):
        r = user.get(f"/clusters/host-cluster/instances?{bad}")
        assert r.status_code == 400, bad
        assert r.json()["code"] == "InvalidField"


def test_display_name_is_stored_exactly(server):
    user = server.new_user()
    for display in ("<script>alert(1)</script>", "训练任务 🚀", "x" * 128):
        r = user.create(display_name=display)
        assert r.status_code == 200, r.text
        assert user.instance(r.json()["name"]).json()["displayName"] == display
    assert user.create(display_name="x" * 129).status_code == 400
    assert user.create(display_name="").status_code == 400
