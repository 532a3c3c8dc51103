"""Runs each Python example of the seed (typo fixed; URL, namespace and token
substituted) against a real `lattice serve` and checks the responses against the seed's
samples, field by field."""
import json
import pathlib
import subprocess
import sys

from shapes import assert_same_shape

SEED = pathlib.Path(__file__).parent / "seed"


def run_example(name, server, user, replacements=None):
    text = (SEED / f"{name}.py").read_text()
    text = text.replace("https://demo.cdc.datenfab.com", server.url)
    text = text.replace("$userid", user.namespace).replace("$token", user.token)
    for old, new in (replacements or {}).items():
        text = text.replace(old, new)
    out = subprocess.run([sys.executable, "-c", text], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def sample(name):
    return json.loads((SEED / f"{name}.sample.json").read_text())


def test_every_seed_example_works_verbatim(make_server):
    server = make_server(args=("--annotation-domain", "demo.cdc.datenfab.com", "--simulated-delay-scale", "0.2"))
    user = server.new_user()

    regions = json.loads(run_example("regions", server, user))
    assert_same_shape(sample("regions"), regions)
    assert regions[0]["id"] == "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa"
    assert regions[0]["clusterName"] == "host-cluster"

    skus = json.loads(run_example("skus", server, user))
    assert_same_shape(sample("skus"), skus)
    ids = {s["skusID"] for s in skus}
    assert {"2", "66"} <= ids

    created = json.loads(run_example("create", server, user))
    assert_same_shape(sample("create"), created)
    assert created["status"] == "Creating"
    assert set(sample("create")["annotations"]) <= set(created["annotations"])
    name = created["name"]

    user.wait_status(name, "Running")
    listed = json.loads(run_example("list", server, user))
    assert_same_shape(sample("list"), listed)
    assert [n["name"] for n in listed["nodes"]] == [name]

    got = json.loads(run_example("get", server, user, {"instance-4ca9xxxx": name}))
    assert_same_shape(sample("get"), got)
    assert got["Pods"][0]["Name"].startswith(name + "-")
    assert got["servers"]["SSH"]["sshAddr"].startswith("ssh -p")

    assert run_example("power_off", server, user, {"instance-3ba5xxxx": name}) == '"ok"'
    user.wait_status(name, "Stopped")
    images = user.get("/images").json()["nodes"]
    snapshot = f"images.neolink-ai.com/{user.namespace}/image1:v1.1.0"
    assert any(i["name"] == snapshot and i["status"] == "Ready" and i["kind"] == "snapshot" for i in images), images

    assert run_example("power_on", server, user, {"instance-4ca9xxxx": name}) == '"ok"'
    user.wait_status(name, "Running")

    assert run_example("delete", server, user, {"instance-ccffxxxx": name}) == '"ok"'
    user.wait_status(name, None)
    assert user.instance(name).status_code == 404


def test_examples_without_namespace_header_use_the_tokens_namespace(server):
    """Several seed examples lose the header to a typo; the request must still work."""
    user = server.new_user()
    import requests
    r = requests.get(server.url + "/mdc/api/v1/regions", headers={"Authorization": f"bearer {user.token}"})
    assert r.status_code == 200
    r = requests.post(server.url + "/mdc/api/v1/clusters/host-cluster/instances", json=user.create_body(),
                      headers={"Authorization": f"Bearer {user.token}"})
    assert r.status_code == 200, r.text
    assert r.json()["namespace"] == user.namespace
