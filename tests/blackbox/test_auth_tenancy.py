"""Authentication and tenancy (SPEC §2)."""
import subprocess
import requests

API = "/mdc/api/v1"


def test_every_401_case(server):
    user = server.new_user()
    url = server.url + API + "/regions"
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Authorization": "bearer"}).status_code == 401
    assert requests.get(url, headers={"Authorization": "Basic abc"}).status_code == 401
    assert requests.get(url, headers={"Authorization": "bearer nope-not-a-token"}).status_code == 401
    bad_checksum = user.token[:-1] + ("A" if user.token[-1] != "A" else "B")
    assert requests.get(url, headers={"Authorization": f"bearer {bad_checksum}"}).status_code == 401
    # revoked
    made = user.post("/tokens", {"name": "short"}).json()
    assert requests.get(url, headers={"Authorization": f"bearer {made['token']}"}).status_code == 200
    assert user.delete(f"/tokens/{made['id']}").status_code == 200
    r = requests.get(url, headers={"Authorization": f"bearer {made['token']}"})
    assert r.status_code == 401 and r.json()["code"] == "Unauthorized"
    # the scheme word is case-insensitive
    for scheme in ("bearer", "Bearer", "BEARER"):
        assert requests.get(url, headers={"Authorization": f"{scheme} {user.token}"}).status_code == 200


def test_validity_days_sets_the_expiry(server):
    """Expiry itself (cached, uncached, console) is tested with an injected clock in
    `TokenExpiryTests`; here, what a client sees of it."""
    from datetime import datetime, timedelta
    user = server.new_user()
    made = user.post("/tokens", {"name": "one-day", "validityDays": 1}).json()
    created = datetime.fromisoformat(made["createdAt"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(made["expiresAt"].replace("Z", "+00:00"))
    assert expires - created == timedelta(days=1)
    listed = next(t for t in user.get("/tokens").json()["nodes"] if t["id"] == made["id"])
    assert listed["expiresAt"] == made["expiresAt"] and "token" not in listed
    for bad in (0, -1, "x", 1e9):
        r = user.post("/tokens", {"name": "bad", "validityDays": bad})
        assert r.status_code == 400 and "validityDays" in r.json()["message"], (bad, r.text)


def test_every_403_case(server):
    alice = server.new_user()
    bob = server.new_user()
    r = requests.get(server.url + API + "/regions", headers={"Authorization": f"bearer {alice.token}", "namespace": bob.namespace})
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"
    body = alice.create_body()
    body["namespace"] = bob.namespace
    r = alice.post("/clusters/host-cluster/instances", body)
    assert r.status_code == 403 and "namespace" in r.json()["message"]
    r = alice.post("/admin/users", {"namespace": "sneaky"})
    assert r.status_code == 403
    r = alice.post(f"/admin/users/{alice.namespace}/credit", {"amount": "100"})
    assert r.status_code == 403


def test_another_tenants_instance_is_404_for_every_verb(server):
    alice = server.new_user()
    bob = server.new_user()
    name = alice.create().json()["name"]
    alice.wait_status(name, "Running")
    missing = "instance-00000000"
    for target in (name, missing):
        assert bob.instance(target).status_code == 404
        assert bob.post(f"/clusters/host-cluster/instances/{target}/power_off", {}).status_code == 404
        assert bob.post(f"/clusters/host-cluster/instances/{target}/power_on").status_code == 404
        assert bob.delete(f"/clusters/host-cluster/instances?name={target}").status_code == 404
    assert bob.instance(name).json() == {"code": "NotFound", "message": f"instance '{name}' in cluster host-cluster not found"}
    assert bob.instance(missing).json()["message"] == f"instance '{missing}' in cluster host-cluster not found"
    assert bob.get("/clusters/host-cluster/instances").json()["totalCount"] == 0
    assert alice.instance(name).json()["status"] == "Running"
    # bob's token list does not show alice's tokens, and he cannot touch them
    alice_tokens = alice.get("/tokens").json()["nodes"]
    assert alice_tokens and not set(t["id"] for t in alice_tokens) & set(t["id"] for t in bob.get("/tokens").json()["nodes"])
    assert bob.delete(f"/tokens/{alice_tokens[0]['id']}").status_code == 404
    assert bob.post(f"/tokens/{alice_tokens[0]['id']}/regenerate").status_code == 404


def test_tokens_are_never_stored_in_clear(server):
    user = server.new_user()
    made = user.post("/tokens", {"name": "ci"}).json()
    assert made["token"].startswith("lat_") and len(made["token"]) == 42
    regenerated = user.post(f"/tokens/{made['id']}/regenerate").json()
    secrets = [user.token, made["token"], regenerated["token"], "bootstrap-admin-token-for-tests"]
    server.stop()
    blob = b""
    # bootstrap.json holds the admin token by design (SPEC §7); the database must not.
    for path in server.data_dir.glob("lattice.sqlite*"):
        blob += path.read_bytes()
    if "--database-url" in server.args:
        url = server.args[server.args.index("--database-url") + 1]
        blob += subprocess.run(["pg_dump", url], check=True, capture_output=True).stdout
    assert blob
    for secret in secrets:
        assert secret.encode() not in blob, "a token secret was found in the data directory"
    server.start()


def test_token_lifecycle(server):
    user = server.new_user()
    made = user.post("/tokens", {"name": "laptop"}).json()
    assert set(made) >= {"id", "name", "token", "createdAt", "expiresAt"}
    listed = user.get("/tokens").json()["nodes"]
    assert all("token" not in t or t["token"] is None for t in listed)
    assert "laptop" in [t["name"] for t in listed]
    new = user.post(f"/tokens/{made['id']}/regenerate").json()
    url = server.url + API + "/regions"
    assert requests.get(url, headers={"Authorization": f"bearer {made['token']}"}).status_code == 401
    assert requests.get(url, headers={"Authorization": f"bearer {new['token']}"}).status_code == 200
    assert user.post("/tokens", {}).status_code == 400
    assert user.post("/tokens", {"name": "x", "validityDays": 0}).status_code == 400


def test_admin_creates_users_and_credits(server):
    admin = server.client()
    r = admin.post("/admin/users", {"namespace": "team-a", "balance": "50.5"})
    assert r.status_code == 200 and r.json()["namespace"] == "team-a"
    assert admin.post("/admin/users", {"namespace": "team-a"}).status_code == 409
    assert admin.post("/admin/users", {"namespace": "Bad_Name"}).status_code == 400
    r = admin.post("/admin/users/team-a/credit", {"amount": "10"})
    assert r.status_code == 200 and r.json()["balance"] == "60.50"
    assert admin.post("/admin/users/nobody/credit", {"amount": "10"}).status_code == 404
    assert admin.post("/admin/users/team-a/credit", {"amount": "-1"}).status_code == 400
