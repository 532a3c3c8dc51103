"""SPEC §10's audit log against the running server: API calls (accepted and refused), SSH
gateway sign-ins, the admin's view of every namespace, the CLI and the console page."""
import json
import os
import shutil
import subprocess

import pytest
import requests

from conftest import BOOTSTRAP_TOKEN, lattice_binary, wait_for
from test_gateways import gateway_server, running_instance, ssh, ssh_port

FIELDS = {"id", "time", "namespace", "actor", "action", "target", "status", "requestId", "remoteAddress"}


def entries(client, path="/audit", **params):
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()["nodes"]


def test_every_state_changing_call_is_audited_and_kept_to_its_namespace(server):
    alice, bob = server.new_user(), server.new_user()
    r = alice.post("/clusters/host-cluster/instances", alice.create_body(), headers={"X-Request-Id": "audit-bb-1"})
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    alice.wait_status(name, "Running")
    assert alice.post(f"/clusters/host-cluster/instances/{name}/power_off", {}).status_code == 200
    assert alice.post("/clusters/host-cluster/instances/instance-0000beef/power_on", {}).status_code == 404
    token = alice.post("/tokens", {"name": "ci"}).json()
    assert alice.post(f"/tokens/{token['id']}/regenerate", {}).status_code == 200
    assert alice.get("/regions").status_code == 200  # a read: not audited

    got = entries(alice)
    assert [e["action"] for e in got] == ["token.regenerate", "token.create", "instance.power_on",
                                          "instance.power_off", "instance.create"], got
    assert all(set(e) == FIELDS and e["namespace"] == alice.namespace for e in got)
    create = got[-1]
    assert (create["target"], create["status"], create["requestId"], create["actor"]) == \
        (name, 200, "audit-bb-1", alice.namespace)
    assert create["remoteAddress"] == "127.0.0.1"
    refused = got[2]
    assert (refused["target"], refused["status"]) == ("instance-0000beef", 404)
    assert [e["action"] for e in entries(alice, action="instance.power_off")] == ["instance.power_off"]
    # Bob sees none of it; the admin sees it all, and its own credit of bob's wallet.
    assert entries(bob) == []
    admin = server.client()
    assert admin.post(f"/admin/users/{bob.namespace}/credit", {"amount": "5"}).status_code == 200
    everyone = entries(admin, "/admin/audit")
    assert {alice.namespace, "admin"} <= {e["namespace"] for e in everyone}
    credit = entries(admin, action="wallet.credit")[0]
    assert (credit["namespace"], credit["actor"], credit["target"]) == ("admin", "admin", bob.namespace)
    assert len(entries(admin, "/admin/audit", namespace=alice.namespace)) == 5
    assert alice.get("/admin/audit").status_code == 403
    r = alice.get("/audit", params={"action": "<script>"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidField"


@pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("sshpass")), reason="needs openssh-client and sshpass")
def test_ssh_sign_ins_are_audited_refused_or_not(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    name, password, port = instance["name"], instance["servers"]["SSH"]["sshPassword"], ssh_port(instance)
    assert ssh(port, "root", "true", password="wrong-password").returncode != 0
    assert ssh(port, "root", "true", password=password).returncode == 0

    def logins():
        found = entries(user, action="ssh.login")
        return found if len(found) >= 2 else None

    found = wait_for(logins, timeout=10, what="two ssh.login entries")
    assert [(e["status"], e["actor"], e["target"]) for e in found[:2]] == \
        [(200, "ssh:password", name), (401, "ssh:password", name)]
    assert found[0]["remoteAddress"] == "127.0.0.1"


def test_the_cli_and_the_console_show_the_log(server, tmp_path):
    user = server.new_user()
    assert user.post("/tokens", {"name": "laptop"}).status_code == 200
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_CONFIG": str(tmp_path / "config.json"), "NO_COLOR": "1"})

    def cli(*args, token=user.token):
        subprocess.run([lattice_binary(), "login", "--url", server.url, "--token", token], env=env, check=True,
                       capture_output=True)
        return subprocess.run([lattice_binary(), *args], env=env, capture_output=True, text=True, timeout=60)

    out = cli("audit")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:4] == ["TIME", "NAMESPACE", "ACTOR", "ACTION"]
    assert "token.create" in out.stdout and user.namespace in out.stdout
    out = cli("audit", "--output", "json")
    assert json.loads(out.stdout)["nodes"][0]["action"] == "token.create"
    assert cli("audit", "--all").returncode == 1, "a tenant's token is not an admin's"
    out = cli("audit", "--all", "--of", user.namespace, "--output", "json", token=BOOTSTRAP_TOKEN)
    assert out.returncode == 0, out.stderr
    assert {e["namespace"] for e in json.loads(out.stdout)["nodes"]} == {user.namespace}
    assert cli("audit", "--of", "x").returncode == 2

    browser = requests.Session()
    page = browser.get(server.url + "/console/login")
    r = browser.post(server.url + "/console/login", allow_redirects=False,
                     headers={"Origin": server.url},
                     data={"csrf": browser.cookies["lattice_csrf"], "namespace": user.namespace, "token": user.token})
    assert r.status_code == 303, (page.status_code, r.text)
    activity = browser.get(server.url + "/console/activity")
    assert activity.status_code == 200 and "token.create" in activity.text and "Activity" in activity.text
    filtered = browser.get(server.url + "/console/activity", params={"action": "instance.create"})
    assert "token.create" not in filtered.text and "Nothing yet." in filtered.text
