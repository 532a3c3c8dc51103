"""Hostile and careless input (issue: hardening): no request can stop the server, and no
number a client sends can trap or overflow."""
import json
import time

import requests

from conftest import wait_for
from test_bad_input import assert_json_error, post_raw

LISTS = ("/images", "/tokens", "/orders", "/bills", "/clusters/host-cluster/instances", "/skus/disks")


def test_paging_out_of_range_is_a_400_naming_the_field_and_the_server_lives(server):
    user = server.new_user()
    for path in LISTS:
        for page in ("9223372036854775807", "9223372036854775808", "99999999999999999999", "10000001"):
            r = user.get(f"{path}?page={page}&pageSize=100")
            assert_json_error(r, 400, "page")
        r = user.get(f"{path}?page=1&pageSize=9223372036854775807")
        assert r.status_code == 200, (path, r.text)
        # SPEC §5: a pageSize over 100 is 100, however many digits it has.
        r = user.get(f"{path}?pageSize=99999999999999999999")
        assert r.status_code == 200, (path, r.text)
        assert_json_error(user.get(f"{path}?pageSize=-99999999999999999999"), 400, "pageSize")
        r = user.get(f"{path}?page=10000000&pageSize=100")
        assert r.status_code == 200 and r.json()["nodes"] == [], (path, r.text)
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_deeply_nested_bodies_are_refused_quickly(server):
    user = server.new_user()
    bodies = [
        "[" * 500 + "]" * 500,
        '{"a":' * 4000 + "1" + "}" * 4000,
        "[" * 200_000,
    ]
    for body in bodies:
        started = time.monotonic()
        r = post_raw(user, "/clusters/host-cluster/instances", body)
        assert_json_error(r, 400)
        assert "deeper than" in r.json()["message"], r.text
        # Generous: the point is seconds before the fix, not a timing target.
        assert time.monotonic() - started < 2
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_numbers_at_the_edges_are_refused_by_name(server):
    user = server.new_user()
    admin = server.client()
    body = user.create_body()
    for size in (10**15, 2**63, "9223372036854775808", 65537, -1):
        body["VolumeMount"][0]["Size"] = size
        assert_json_error(user.post("/clusters/host-cluster/instances", body), 400, "Size")
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    for grace in (2**63, "99999999999999999999", -5):
        r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"gracePeriodSeconds": grace})
        assert_json_error(r, 400, "gracePeriodSeconds")
    assert_json_error(user.post("/tokens", {"name": "t", "validityDays": 2**62}), 400, "validityDays")
    for amount in ("99999999999999", "1000000000.0001", 1e300):
        r = admin.post(f"/admin/users/{user.namespace}/credit", {"amount": amount})
        assert_json_error(r, 400, "amount")
    for _ in range(3):
        assert admin.post(f"/admin/users/{user.namespace}/credit", {"amount": "1000000000"}).status_code == 200
    balance = user.get("/balance").json()["balance"]
    assert balance == "3000001000.00", balance
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def serve_once(tmp_path, args, env, name):
    import os
    import subprocess
    from conftest import lattice_binary
    data = tmp_path / name
    cmd = [lattice_binary(), "serve", "--data-dir", str(data)] + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=dict(os.environ, **env))
    return out, data


def test_a_second_server_on_a_busy_port_fails_before_it_creates_anything(server, tmp_path):
    port = server.url.rsplit(":", 1)[1]
    out, data = serve_once(tmp_path, ["--port", port], {"LATTICE_BOOTSTRAP_TOKEN": ""}, "second")
    assert out.returncode != 0
    assert "token" not in out.stdout.lower() and "lat_" not in out.stdout + out.stderr
    assert port in out.stderr and "listening" not in out.stdout
    assert not data.exists(), "the second server created its data directory"
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_a_lat_token_with_a_wrong_checksum_is_refused_at_start_naming_the_variable(tmp_path):
    from conftest import Server
    probe = Server(tmp_path / "probe", env={"LATTICE_BOOTSTRAP_TOKEN": ""}).start()
    token = json.loads((tmp_path / "probe" / "bootstrap.json").read_text())["token"]
    probe.stop()
    broken = token[:-1] + ("a" if token[-1] != "a" else "b")
    out, data = serve_once(tmp_path, ["--port", "0"], {"LATTICE_BOOTSTRAP_TOKEN": broken}, "broken")
    assert out.returncode != 0
    assert "LATTICE_BOOTSTRAP_TOKEN" in out.stderr and "listening" not in out.stdout
    assert not data.exists()
    # The well-formed one is taken as given.
    good = Server(tmp_path / "good", env={"LATTICE_BOOTSTRAP_TOKEN": token}).start()
    try:
        r = requests.get(good.url + "/mdc/api/v1/balance", headers={"Authorization": "bearer " + token}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        good.stop()


def test_a_revoked_or_regenerated_secret_fails_on_the_very_next_request(server):
    user = server.new_user()
    for _ in range(20):
        made = user.post("/tokens", {"name": "t"}).json()
        old = made["token"]
        headers = {"Authorization": "bearer " + old}
        assert requests.get(server.url + "/mdc/api/v1/balance", headers=headers, timeout=10).status_code == 200
        assert user.post(f"/tokens/{made['id']}/regenerate").status_code == 200
        assert requests.get(server.url + "/mdc/api/v1/balance", headers=headers, timeout=10).status_code == 401
        assert user.delete(f"/tokens/{made['id']}").status_code == 200


def test_image_references_and_mount_paths_are_validated(server):
    user = server.new_user()
    for image in ("images.neolink-ai.com/matrixdc/../matrixdc/ubuntu:22.04-cuda12.1.0", "a//b", "UP/PER CASE",
                  "images.neolink-ai.com/matrixdc/ubuntu:22.04-cuda12.1.0@sha256:xyz", "x" * 600):
        assert_json_error(user.create(image=image), 400, "image")
    for path in ("/.", "//", "/", "/proc", "/proc/self", "/sys/fs", "/dev", "/dev/shm", "/root/../etc", "/root//d",
                 "relative/path", "/root/data/"):
        body = user.create_body()
        body["VolumeMount"][0]["PathInContainer"] = path
        assert_json_error(user.post("/clusters/host-cluster/instances", body), 400, "VolumeMount[0].PathInContainer")
    body = user.create_body()
    body["VolumeMount"][0]["PathInContainer"] = "/workspace/data"
    assert user.post("/clusters/host-cluster/instances", body).status_code == 200


def test_no_snapshot_can_take_an_official_images_name(server):
    admin = server.client()
    r = admin.post("/admin/users", {"namespace": "matrixdc", "balance": "10"})
    assert_json_error(r, 409, "matrixdc")
    assert_json_error(admin.post("/admin/users", {"namespace": "library"}), 409, "library")
    official = [i["name"] for i in admin.get("/images?pageSize=100").json()["nodes"] if i["kind"] == "official"]
    assert any("/matrixdc/" in name for name in official)
    user = server.new_user()
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off",
                  {"needSnapshot": True, "imageName": "mine", "tag": "v1"})
    assert r.status_code == 200
    user.wait_status(name, "Stopped")
    names = [i["name"] for i in user.get("/images").json()["nodes"] if i["kind"] == "snapshot"]
    assert names == [f"images.neolink-ai.com/{user.namespace}/mine:v1"]
    assert not set(names) & set(official)


def test_a_stopped_instance_holds_no_ssh_port(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--ssh-ports", "30000-30001"))
    hoarder = server.new_user()
    other = server.new_user()
    names = [hoarder.create().json()["name"] for _ in range(2)]
    for name in names:
        hoarder.wait_status(name, "Running")
    assert other.create().json()["code"] == "InsufficientCapacity"
    for name in names:
        assert hoarder.post(f"/clusters/host-cluster/instances/{name}/power_off").status_code == 200
    for name in names:
        stopped = hoarder.wait_status(name, "Stopped")
        assert stopped["servers"]["SSH"]["sshAddr"] == "", "a Stopped instance shows no address"
    made = [other.create() for _ in range(2)]
    assert [r.status_code for r in made] == [200, 200], [r.text for r in made]
    r = hoarder.post(f"/clusters/host-cluster/instances/{names[0]}/power_on")
    assert r.status_code == 409 and "SSH port" in r.json()["message"], r.text
    assert hoarder.instance(names[0]).json()["status"] == "Stopped"
    assert other.delete(f"/clusters/host-cluster/instances?name={made[0].json()['name']}").status_code == 200
    other.wait_status(made[0].json()["name"], None)
    assert hoarder.post(f"/clusters/host-cluster/instances/{names[0]}/power_on").status_code == 200
    running = hoarder.wait_status(names[0], "Running")
    assert running["servers"]["SSH"]["sshAddr"].startswith("ssh -p3000")


def test_quotas_per_namespace_with_defaults_admin_api_and_cli(make_server, tmp_path):
    import os
    import subprocess
    from conftest import lattice_binary
    server = make_server(args=("--simulated-delay-scale", "0.1", "--quota-instances", "3", "--quota-gpus", "2",
                               "--quota-tokens", "2", "--quota-snapshots", "1"))
    admin = server.client()
    user = server.new_user()
    q = admin.get(f"/admin/users/{user.namespace}/quota").json()
    assert q["quota"] == {"instances": 3, "gpus": 2, "tokens": 2, "snapshots": 1}
    assert q["usage"] == {"instances": 0, "gpus": 0, "tokens": 1, "snapshots": 0}
    assert user.get(f"/admin/users/{user.namespace}/quota").status_code == 403

    # GPUs: two run, a third is refused by name; instances: a Stopped one still counts
    names = [user.create().json()["name"] for _ in range(2)]
    r = user.create()
    assert r.status_code == 409 and r.json()["code"] == "QuotaExceeded" and "GPUs" in r.json()["message"], r.text
    for name in names:
        user.wait_status(name, "Running")
    assert user.post(f"/clusters/host-cluster/instances/{names[0]}/power_off",
                     {"needSnapshot": True, "imageName": "one"}).status_code == 200
    user.wait_status(names[0], "Stopped")
    third = user.create()
    assert third.status_code == 200, third.text
    r = user.create()
    assert r.status_code == 409 and "instances" in r.json()["message"]
    r = user.post(f"/clusters/host-cluster/instances/{names[0]}/power_on")
    assert r.status_code == 409 and "GPUs" in r.json()["message"]

    # snapshots: one kept; deleting it frees the quota
    user.wait_status(third.json()["name"], "Running")
    r = user.post(f"/clusters/host-cluster/instances/{names[1]}/power_off", {"needSnapshot": True, "imageName": "two"})
    assert r.status_code == 409 and "snapshots" in r.json()["message"]
    snapshot = f"images.neolink-ai.com/{user.namespace}/one:latest"
    official = next(i["name"] for i in user.get("/images").json()["nodes"] if i["kind"] == "official")
    assert user.delete(f"/images?name={official}").status_code == 403
    assert server.new_user().delete(f"/images?name={snapshot}").status_code == 404
    assert user.delete(f"/images?name={snapshot}").status_code == 200
    assert user.post(f"/clusters/host-cluster/instances/{names[1]}/power_off",
                     {"needSnapshot": True, "imageName": "two"}).status_code == 200

    # tokens
    assert user.post("/tokens", {"name": "second"}).status_code == 200
    r = user.post("/tokens", {"name": "third"})
    assert r.status_code == 409 and "tokens" in r.json()["message"]

    # the admin raises a limit through the CLI; bad values are named
    r = admin.put(f"/admin/users/{user.namespace}/quota", {"tokens": -1})
    assert r.status_code == 400 and "tokens" in r.json()["message"]
    r = admin.put(f"/admin/users/{user.namespace}/quota", {"cpus": 3})
    assert r.status_code == 400 and "cpus" in r.json()["message"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": admin.token, "LATTICE_CONFIG": str(tmp_path / "c.json")})
    out = subprocess.run([lattice_binary(), "admin", "quota", "set", user.namespace, "--tokens", "5", "-o", "json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["quota"]["tokens"] == 5
    out = subprocess.run([lattice_binary(), "admin", "quota", "get", user.namespace], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0 and "tokens" in out.stdout and "5" in out.stdout, out.stdout
    assert user.post("/tokens", {"name": "third"}).status_code == 200
    assert admin.get("/admin/users/nobody/quota").status_code == 404


def test_rate_limits_answer_429_with_retry_after(make_server):
    server = make_server(args=("--rate-limit-per-token", "2", "--rate-limit-burst", "5", "--rate-limit-per-address", "1",
                               "--sign-ins-per-minute", "3"))
    alice, bob = server.new_user(), server.new_user()
    codes = [alice.get("/balance").status_code for _ in range(12)]
    assert codes[:5] == [200] * 5 and 429 in codes, codes
    r = alice.get("/balance")
    assert r.status_code == 429 and r.json()["code"] == "RateLimited"
    assert 1 <= int(r.headers["Retry-After"]) <= 5
    assert bob.get("/balance").status_code == 200, "one token's limit is its own"
    time.sleep(int(r.headers["Retry-After"]))
    assert alice.get("/balance").status_code == 200, "the bucket refills"

    # wrong tokens from one address: 401 until the burst is spent, then 429; /healthz still answers
    bad = {"Authorization": "bearer lat_wrong-token-of-a-guesser"}
    codes = [requests.get(server.url + "/mdc/api/v1/balance", headers=bad, timeout=5).status_code for _ in range(10)]
    assert codes[:5] == [401] * 5 and codes[-1] == 429, codes
    assert bob.get("/balance").status_code == 200, "a valid token from the same address is never locked out"
    assert all(requests.get(server.url + "/healthz", timeout=5).status_code == 200 for _ in range(20))
    codes = [requests.get(server.url + "/metrics", timeout=5).status_code for _ in range(10)]
    assert 429 in codes

    # console sign-in attempts per address
    s = requests.Session()
    s.get(server.url + "/console/login")
    csrf = s.cookies["lattice_csrf"]
    codes = [s.post(server.url + "/console/login", data={"csrf": csrf, "namespace": "x", "token": "wrong"},
                    allow_redirects=False).status_code for _ in range(14)]
    assert codes[:10] == [303] * 10 and codes[-1] == 429, codes


def idle_connections(url, source, count):
    import socket
    host, port = url.split("//")[1].split(":")
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.connect((host, int(port)))
        s.settimeout(0.05)
        sockets.append(s)
    return sockets


def closed_by_server(s):
    import socket
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def test_half_open_connections_cannot_stop_the_server(make_server):
    # The usual soft limit of 1,024 files: the server raises it to the hard limit at start.
    server = make_server(args=("--max-connections-per-address", "300", "--header-timeout-seconds", "2"),
                         open_files=1024)
    held = []
    for n in range(2, 6):  # 1,100 idle connections from four addresses, none over the cap
        held += idle_connections(server.url, f"127.0.0.{n}", 275)
    started = time.monotonic()
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 2
    # the header timeout closes every one of them
    wait_for(lambda: all(closed_by_server(s) for s in held), timeout=20, what="idle connections closed")
    for s in held:
        s.close()


def test_connections_per_address_are_capped(make_server):
    server = make_server(args=("--max-connections-per-address", "20", "--header-timeout-seconds", "30"))
    held = idle_connections(server.url, "127.0.0.7", 25)
    time.sleep(0.5)
    refused = [s for s in held if closed_by_server(s)]
    assert len(refused) == 5, len(refused)
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200, "other addresses are served"
    for s in held:
        s.close()


def test_idempotency_key_on_every_post(server):
    user, other = server.new_user(), server.new_user()
    body = user.create_body(display_name="once")
    headers = {"Idempotency-Key": "create-1"}
    first = user.post("/clusters/host-cluster/instances", body, headers=headers)
    again = user.post("/clusters/host-cluster/instances", body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    listed = user.get("/clusters/host-cluster/instances").json()
    assert listed["totalCount"] == 1, "the work was done once"
    # another body under the same key: 422; the same key in another namespace is its own
    r = user.post("/clusters/host-cluster/instances", dict(body, displayName="twice"), headers=headers)
    assert_json_error(r, 422)
    assert r.json()["code"] == "IdempotencyKeyReused"
    r = other.post("/clusters/host-cluster/instances", dict(body, namespace=other.namespace), headers=headers)
    assert r.status_code == 200 and r.json()["name"] != first.json()["name"]
    # power verbs and tokens too; a token's secret is never kept, so a replay omits it
    name = first.json()["name"]
    user.wait_status(name, "Running")
    for _ in range(2):
        r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {}, headers={"Idempotency-Key": "off"})
        assert r.status_code == 200 and r.json() == "ok"
    made = user.post("/tokens", {"name": "t"}, headers={"Idempotency-Key": "tok"})
    replay = user.post("/tokens", {"name": "t"}, headers={"Idempotency-Key": "tok"})
    assert made.json()["token"].startswith("lat_") and "token" not in replay.json()
    assert replay.json()["id"] == made.json()["id"]
    assert [t["name"] for t in user.get("/tokens").json()["nodes"]].count("t") == 1
    # a refused call keeps nothing: the same key runs again
    poor = server.new_user(balance="0")
    body = poor.create_body()
    assert poor.post("/clusters/host-cluster/instances", body, headers={"Idempotency-Key": "k"}).status_code == 402
    server.client().post(f"/admin/users/{poor.namespace}/credit", {"amount": "100"})
    assert poor.post("/clusters/host-cluster/instances", body, headers={"Idempotency-Key": "k"}).status_code == 200
    for bad in ("", "x" * 256, "caf\u00e9"):
        r = requests.post(user.url + "/mdc/api/v1/tokens", json={"name": "b"},
                          headers=user.headers(extra={"Idempotency-Key": bad.encode("utf-8")}), timeout=10)
        assert r.status_code == 400 and "Idempotency-Key" in r.json()["message"], (bad, r.text)


def test_an_undeclared_method_is_405_with_allow(server):
    user = server.new_user()
    for method, path, allowed in (("TRACE", "/healthz", "GET"), ("PUT", "/openapi.json", "GET"),
                                  ("PATCH", "/mdc/api/v1/clusters/host-cluster/instances", "DELETE, GET, POST"),
                                  ("DELETE", "/mdc/api/v1/tokens", "GET, POST")):
        r = requests.request(method, server.url + path, headers=user.headers(), timeout=10)
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers["Allow"] == allowed and r.json()["code"] == "MethodNotAllowed"
    assert requests.get(server.url + "/nowhere", timeout=10).status_code == 404


def test_openapi_describes_every_answer(server):
    spec = requests.get(server.url + "/openapi.json", timeout=10).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "$ref" in next(iter(responses["200"]["content"].values()))["schema"], (method, path)
            assert responses["default"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
