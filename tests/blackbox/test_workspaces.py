"""SPEC §11 on the simulated fleet: env, secretEnv, startupScript, ports, templates, logs,
metrics and apps, every field and its bad input; the seed's body unchanged still works."""
import json

import requests

from conftest import wait_for


def create(user, **fields):
    body = user.create_body()
    body.update(fields)
    return user.post("/clusters/host-cluster/instances", body)


def test_env_secret_env_script_and_ports_are_kept_and_shown(server):
    user = server.new_user()
    r = create(user, env={"MODE": "train", "EPOCHS": "3"}, secretEnv={"HF_TOKEN": "hf-secret-value"},
               startupScript="echo started $MODE\necho epochs $EPOCHS",
               ports=[{"port": 8000, "name": "api"}, {"port": 7860, "name": "ui", "public": True}])
    assert r.status_code == 200, r.text
    inst = r.json()
    assert inst["env"] == {"MODE": "train", "EPOCHS": "3"}
    assert inst["secretEnvNames"] == ["HF_TOKEN"]
    assert inst["startupScript"].startswith("echo started")
    assert "hf-secret-value" not in r.text
    ports = inst["servers"]["ports"]
    assert [p["port"] for p in ports] == [8000, 7860]
    assert ports[0]["name"] == "api"
    assert ports[0]["url"].startswith(f"http://{inst['uid']}-8000.")
    assert ports[0]["url"].endswith("/")
    running = user.wait_status(inst["name"], "Running")
    assert running["servers"]["apps"] == {"jupyterlab": "running", "tensorboard": "running"}
    assert running["statusReason"] == ""
    listed = user.get("/clusters/host-cluster/instances").text
    assert "hf-secret-value" not in listed and "HF_TOKEN" in listed

    # The startup script ran in the workload, with the environment, and its output is in the log.
    r = user.get(f"/clusters/host-cluster/instances/{inst['name']}/logs")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "started train" in r.text and "epochs 3" in r.text
    assert "exited with status 0" in r.text
    r = user.get(f"/clusters/host-cluster/instances/{inst['name']}/logs?tail=1")
    assert r.text.count("\n") == 1

    # Metrics, plausible and in range.
    r = user.get(f"/clusters/host-cluster/instances/{inst['name']}/metrics")
    assert r.status_code == 200, r.text
    m = r.json()
    assert set(m) >= {"at", "cpuPercent", "memoryUsedBytes", "memoryLimitBytes", "gpus"}
    assert 0 <= m["memoryUsedBytes"] <= m["memoryLimitBytes"]
    assert m["gpus"] and all(0 <= g["utilization"] <= 100 and g["memoryUsedMiB"] <= g["memoryTotalMiB"]
                             for g in m["gpus"])


def test_a_failing_startup_script_is_reported_and_the_instance_stays_running(server):
    user = server.new_user()
    inst = create(user, startupScript="echo about to fail\nexit 3").json()
    running = user.wait_status(inst["name"], "Running")
    wait_for(lambda: "StartupScriptFailed" in user.instance(inst["name"]).json()["statusReason"],
             what="the failure in statusReason")
    assert "status 3" in user.instance(inst["name"]).json()["statusReason"]
    assert user.instance(inst["name"]).json()["status"] == "Running"
    assert "about to fail" in user.get(f"/clusters/host-cluster/instances/{running['name']}/logs").text


def test_bad_fields_get_clear_errors(server):
    user = server.new_user()
    cases = [
        ({"env": {"1BAD": "x"}}, "env.1BAD"),
        ({"env": {"A": 5}}, "env.A"),
        ({"env": "A=1"}, "env"),
        ({"env": {"JUPYTER_TOKEN": "x"}}, "env.JUPYTER_TOKEN"),
        ({"env": {f"V{i}": "x" for i in range(65)}}, "env"),
        ({"env": {"BIG": "x" * 33000}}, "env"),
        ({"secretEnv": {"A": "1"}, "env": {"A": "2"}}, "secretEnv"),
        ({"startupScript": 5}, "startupScript"),
        ({"ports": [{"port": 22}]}, "ports[0].port"),
        ({"ports": [{"port": 70000}]}, "ports[0].port"),
        ({"ports": [{"port": 8000}, {"port": 8000}]}, "ports[1].port"),
        ({"ports": [{"port": 8000 + i} for i in range(11)]}, "ports"),
        ({"ports": "8000"}, "ports"),
        ({"template": "tpl-none"}, None),
        ({"template": 5}, "template"),
    ]
    for fields, field in cases:
        r = create(user, **fields)
        assert r.status_code in (400, 404), (fields, r.status_code, r.text)
        body = r.json()
        assert body["code"] and body["message"], body
        if field:
            assert r.status_code == 400 and body["message"].startswith(field), (fields, body)
    assert user.get("/clusters/host-cluster/instances").json()["totalCount"] == 0
    # Logs and metrics of what does not exist, and bad query values.
    assert user.get("/clusters/host-cluster/instances/instance-00000000/logs").status_code == 404
    assert user.get("/clusters/host-cluster/instances/instance-00000000/metrics").status_code == 404
    name = user.create().json()["name"]
    assert user.get(f"/clusters/host-cluster/instances/{name}/logs?tail=x").status_code == 400
    assert user.get(f"/clusters/host-cluster/instances/{name}/logs?follow=maybe").status_code == 400
    # Someone else's instance is not found.
    other = server.new_user()
    assert other.get(f"/clusters/host-cluster/instances/{name}/logs").status_code == 404


def test_metrics_of_a_stopped_instance_are_refused(server):
    user = server.new_user()
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    user.post(f"/clusters/host-cluster/instances/{name}/power_off", {})
    user.wait_status(name, "Stopped")
    r = user.get(f"/clusters/host-cluster/instances/{name}/metrics")
    assert r.status_code == 409 and r.json()["code"] == "InvalidState"


def test_logs_follow_streams_new_lines(server):
    user = server.new_user()
    name = create(user, startupScript="echo first").json()["name"]
    user.wait_status(name, "Running")
    url = f"{user.url}/mdc/api/v1/clusters/host-cluster/instances/{name}/logs?follow=true"
    with requests.get(url, headers=user.headers(), stream=True, timeout=30) as r:
        assert r.status_code == 200
        seen = ""
        for chunk in r.iter_content(chunk_size=None):
            seen += chunk.decode()
            if "first" in seen:
                break
    assert "first" in seen
    # Powered off and on: a new start's lines arrive in the same log.
    user.post(f"/clusters/host-cluster/instances/{name}/power_off", {})
    user.wait_status(name, "Stopped")
    user.post(f"/clusters/host-cluster/instances/{name}/power_on")
    user.wait_status(name, "Running")
    text = user.get(f"/clusters/host-cluster/instances/{name}/logs?tail=100").text
    assert text.count("lattice: starting") >= 1


def test_templates_fill_a_create_and_are_kept_per_namespace(server):
    admin = server.client()
    alice, bob = server.new_user(), server.new_user()
    listed = alice.get("/templates").json()
    official = [t for t in listed["nodes"] if t["official"]]
    assert len(official) >= 3 and all(t["public"] for t in official)
    assert {"id", "name", "image", "env", "ports", "startupScript", "diskSizeGB", "description", "public"} <= set(
        official[0])

    r = alice.post("/templates", {"name": "my torch", "image": official[1]["image"], "env": {"MODE": "dev"},
                                  "ports": [{"port": 8000, "name": "api"}], "startupScript": "echo hello",
                                  "diskSizeGB": 80, "description": "mine"})
    assert r.status_code == 200, r.text
    mine = r.json()
    assert mine["id"] and mine["public"] is False and mine["diskSizeGB"] == 80
    assert alice.post("/templates", {"name": "x", "image": "img:1", "public": True}).status_code in (403, 422)
    assert alice.post("/templates", {"name": "x", "image": official[0]["image"], "public": True}).status_code == 403
    assert alice.post("/templates", {"image": official[0]["image"]}).status_code == 400
    assert alice.post("/templates", {"name": "x", "image": "nothere.example/a/b:1"}).status_code == 422
    r = admin.post("/templates", {"name": "everyone's", "image": official[0]["image"], "public": True})
    assert r.status_code == 200, r.text
    shared = r.json()

    ids = lambda user: [t["id"] for t in user.get("/templates").json()["nodes"]]
    assert mine["id"] in ids(alice) and mine["id"] not in ids(bob)
    assert shared["id"] in ids(alice) and shared["id"] in ids(bob)

    # A create that names the template gets what it leaves out.
    body = alice.create_body()
    del body["image"]
    body["VolumeMount"] = [{"PathInContainer": "/root/data", "Type": "shared-filesystem"}]
    body["template"] = mine["id"]
    r = alice.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 200, r.text
    inst = r.json()
    assert inst["image"] == official[1]["image"]
    assert inst["env"] == {"MODE": "dev"} and inst["startupScript"] == "echo hello"
    assert inst["volumeMounts"][1]["Size"] == 80
    assert [p["port"] for p in inst["servers"]["ports"]] == [8000]
    # Bob cannot use Alice's template nor delete it.
    body["namespace"] = bob.namespace
    assert bob.post("/clusters/host-cluster/instances", body).status_code == 404
    assert bob.delete(f"/templates/{mine['id']}").status_code == 404
    assert bob.delete(f"/templates/{shared['id']}").status_code == 403
    assert alice.delete(f"/templates/{official[0]['id']}").status_code == 403
    assert alice.delete(f"/templates/{mine['id']}").status_code == 200
    assert mine["id"] not in ids(alice)
    assert admin.delete(f"/templates/{shared['id']}").status_code == 200


def test_the_seeds_body_still_works_unchanged(server):
    user = server.new_user()
    r = user.create()
    assert r.status_code == 200, r.text
    inst = r.json()
    assert inst["env"] == {} and inst["secretEnvNames"] == [] and inst["servers"]["ports"] == []
    json.dumps(inst)


def test_published_ports_go_through_the_gateway_behind_the_token(server):
    user = server.new_user()
    inst = create(user, ports=[{"port": 8000, "name": "api"}, {"port": 7860, "name": "ui", "public": True}]).json()
    inst = user.wait_status(inst["name"], "Running")
    uid, token = inst["uid"], inst["servers"]["Jupyterlab"].split("token=")[1]
    port = server.url.rsplit(":", 1)[1]
    url = inst["servers"]["ports"][0]["url"]
    assert url == f"http://{uid}-8000.localhost:{port}/"

    def get(host_port, path="/", **headers):
        return requests.get(f"http://127.0.0.1:{port}{path}", headers={"Host": f"{uid}-{host_port}.localhost:{port}",
                                                                      **headers}, timeout=30, allow_redirects=False)

    r = get(8000)
    assert r.status_code == 401 and "token" in r.text
    r = get(8000, f"/docs?token={token}")
    assert r.status_code == 303 and r.headers["Location"] == "/docs"
    assert r.headers["Set-Cookie"].startswith(f"lattice_port={token}; Path=/;")
    # Let through: nothing listens in a simulated workload, and the page says which port.
    r = get(8000, "/docs", Cookie=f"lattice_port={token}")
    assert r.status_code == 502 and "port 8000" in r.text
    assert get(8000, "/", Authorization=f"token {token}").status_code == 502
    # A public port needs no token; one not published is not served.
    assert get(7860).status_code == 502
    assert get(9999).status_code == 404


def test_the_command_line_creates_with_env_and_reads_logs_metrics_and_templates(server, tmp_path):
    import os
    import subprocess

    from conftest import lattice_binary
    user = server.new_user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_NAMESPACE": user.namespace,
                "LATTICE_CONFIG": str(tmp_path / "c.json")})
    script = tmp_path / "start.sh"
    script.write_text("echo from the cli $MODE\n")

    def run(*args):
        out = subprocess.run([lattice_binary(), *args], capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, (args, out.stderr)
        return out.stdout

    official = json.loads(run("templates", "list", "-o", "json"))
    assert any(t["official"] for t in official)
    made = json.loads(run("instances", "create", "--sku", "66", "--name", "cli", "--template", official[0]["id"],
                          "--env", "MODE=cli-mode", "--secret-env", "TOKEN=s3cr3t-value", "--port", "8000:api",
                          "--port", "7860:ui:public", "--startup-script", str(script), "--wait", "-o", "json"))
    assert made["status"] == "Running" and made["image"] == official[0]["image"]
    assert made["env"] == {"MODE": "cli-mode"} and made["secretEnvNames"] == ["TOKEN"]
    assert [(p["port"], p["public"]) for p in made["servers"]["ports"]] == [(8000, False), (7860, True)]
    wait_for(lambda: "from the cli cli-mode" in run("instances", "logs", made["name"]), what="the script's output")
    top = json.loads(run("instances", "top", "-o", "json"))
    assert [t["name"] for t in top] == [made["name"]] and top[0]["metrics"]["gpus"]
    assert "CPU %" in run("instances", "top")
    mine = run("templates", "create", "--name", "mine", "--image", official[0]["image"], "--env", "A=1").strip()
    assert mine.startswith("tpl-")
    run("templates", "delete", mine)


def test_the_simulated_shell_has_the_instances_environment(make_server):
    from test_gateways import gateway_server, ssh, ssh_port
    server = gateway_server(make_server)
    user = server.new_user()
    inst = create(user, env={"MODE": "sim"}, secretEnv={"API_KEY": "k-123"}).json()
    inst = user.wait_status(inst["name"], "Running")
    out = ssh(ssh_port(inst), "root", "echo $MODE $API_KEY", password=inst["servers"]["SSH"]["sshPassword"])
    assert out.returncode == 0 and out.stdout.strip() == "sim k-123", out.stderr
