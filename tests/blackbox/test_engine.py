"""Real containers: `lattice serve` with an engine cluster on Podman (or Docker), checked
with `podman inspect` and `podman exec`. Runs when LATTICE_TEST_ENGINE_SOCKET and
LATTICE_TEST_IMAGE are set (scripts/test.sh starts Podman and sets them)."""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from conftest import wait_for, write_catalog

SOCKET = os.environ.get("LATTICE_TEST_ENGINE_SOCKET")
IMAGE = os.environ.get("LATTICE_TEST_IMAGE")
# A cluster name of its own, so test runs sharing one engine never take each other's
# containers for orphans.
CLUSTER = "local-" + uuid.uuid4().hex[:6]
pytestmark = pytest.mark.skipif(not (SOCKET and IMAGE and shutil.which("podman")), reason="no container engine configured")

CATALOG = """
regions:
  - id: r-local
    name: workstation
    harborAddr: images.test.local
    clusters:
      - name: {cluster}
        driver: engine
        socket: {socket}
        gpuRequests: none
        nodes:
          - {{name: this-host, gpuModel: T4, gpuCount: 2, cpuCores: 2, memoryGiB: 4}}
gpuSkus:
  - {{id: "t4", name: T4, regionID: r-local, clusterName: {cluster}, gpuModel: T4, gpuCount: 1, cpuCores: 1, memoryGiB: 1, sellingType: 1, price: "1"}}
diskSkus:
  - {{id: "1", type: shared-filesystem, maxSizeGiB: 10, defaultSizeGiB: 1}}
images:
  - name: {image}
"""


def podman(*args, check=True):
    out = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def container_of(name):
    names = podman("ps", "-a", "--filter", f"label=lattice.instance={name}", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 1, names
    return names[0]


def test_instances_are_real_containers(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, CATALOG.format(socket=SOCKET, image=IMAGE, cluster=CLUSTER)),
                               "--ssh-ports", "31000-31999"))
    user = server.new_user(balance="100")
    body = user.create_body(sku="t4", size=1, image=IMAGE)
    r = user.post(f"/clusters/{CLUSTER}/instances", body)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    running = user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    servers = running["servers"]
    # Jupyter and Tensorboard through the HTTP gateway on the API's port (test_gateways.py).
    api_port = server.url.rsplit(":", 1)[1]
    assert servers["Jupyterlab"].startswith(f"http://{running['uid']}.localhost:{api_port}/jupyter?token=")
    token = servers["Jupyterlab"].split("token=")[1]
    assert servers["Tensorboard"] == f"http://{running['uid']}.localhost:{api_port}/monitor?token={token}"

    # 1-2: env, volume, limits, labels, ports
    container = container_of(name)
    info = json.loads(podman("inspect", container).stdout)[0]
    env = info["Config"]["Env"]
    assert f"LATTICE_ROOT_PASSWORD={servers['SSH']['sshPassword']}" in env
    assert any(e.startswith("JUPYTER_TOKEN=") and e.split("=", 1)[1] in servers["Jupyterlab"] for e in env)
    volume = running["volumeMounts"][1]["PVCName"]
    assert any(m.get("Name") == volume and m["Destination"] == "/root/data" for m in info["Mounts"])
    # the data disk: capped at its Size where the host's storage can (XFS with project quota),
    # else the instance says that its Size is billed but not enforced
    options = json.loads(podman("volume", "inspect", volume).stdout)[0].get("Options") or {}
    if "size=" in options.get("o", ""):
        assert running["statusReason"] == ""
    else:
        assert running["statusReason"].startswith("DiskSizeNotEnforced: the storage of host this-host"), running
    assert info["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert info["HostConfig"]["Memory"] == 1024 ** 3
    assert info["Config"]["Labels"]["lattice.namespace"] == user.namespace
    # isolation: the namespace's own network, a pids limit, no port published on the host
    assert list(info["NetworkSettings"]["Networks"]) == [f"lattice-{user.namespace}"]
    assert info["HostConfig"]["PidsLimit"] == 4096
    assert not any(info["HostConfig"].get("PortBindings", {}).values())

    # 3: data on the volume survives power_off / power_on
    podman("exec", container, "sh", "-c", "echo kept > /root/data/keep.txt && echo layer > /marker.txt")
    r = user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off",
                  {"gracePeriodSeconds": 2, "needSnapshot": True, "imageName": "snap", "tag": "v1"})
    assert r.status_code == 200, r.text
    stopped = user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=120)
    assert stopped["statusReason"] == ""
    assert user.remain("t4") == 2, "GPUs released while Stopped"
    assert podman("volume", "exists", volume, check=False).returncode == 0
    snapshot = f"images.test.local/{user.namespace}/snap:v1"
    images = {i["name"]: i for i in user.get("/images").json()["nodes"]}
    assert images[snapshot]["status"] == "Ready" and images[snapshot]["sizeBytes"] > 0
    # the snapshot keeps no secret of the instance it came from
    config = json.loads(podman("image", "inspect", snapshot).stdout)[0]["Config"]
    leaked = [e for e in config.get("Env") or [] if e.split("=", 1)[0] in ("LATTICE_ROOT_PASSWORD", "JUPYTER_TOKEN")
              and e.split("=", 1)[1]]
    assert leaked == [], leaked
    assert servers["SSH"]["sshPassword"] not in json.dumps(config)
    assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_on").status_code == 200
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    assert podman("exec", container_of(name), "cat", "/root/data/keep.txt").stdout.strip() == "kept"

    # 4: a new instance from the snapshot sees the file written outside the volume
    body = user.create_body(sku="t4", size=1, image=snapshot)
    r = user.post(f"/clusters/{CLUSTER}/instances", body)
    assert r.status_code == 200, r.text
    clone = r.json()["name"]
    user.wait_status(clone, "Running", cluster=CLUSTER, timeout=120)
    assert podman("exec", container_of(clone), "cat", "/marker.txt").stdout.strip() == "layer"

    # 5: delete leaves no container and no volume
    for victim in (name, clone):
        assert user.delete(f"/clusters/{CLUSTER}/instances?name={victim}").status_code == 200
    for victim in (name, clone):
        user.wait_status(victim, None, cluster=CLUSTER, timeout=120)
        assert podman("ps", "-a", "-q", "--filter", f"label=lattice.instance={victim}").stdout.strip() == ""
    assert podman("volume", "exists", volume, check=False).returncode != 0


def test_missing_image_fails_with_the_engines_message(make_server, tmp_path):
    catalog = CATALOG.format(socket=SOCKET, image=IMAGE, cluster=CLUSTER) + "allowedImagePatterns:\n  - localhost/nowhere/*\n"
    server = make_server(args=("--catalog", write_catalog(tmp_path, catalog), "--ssh-ports", "32000-32099",
                               "--charge-period-seconds", "1", "--meter-interval-seconds", "0.05"))
    user = server.new_user(balance="100")
    r = user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image="localhost/nowhere/missing:1"))
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    failed = user.wait_status(name, "Failed", cluster=CLUSTER, timeout=120)
    assert failed["statusReason"].startswith("ImagePullFailed: localhost/nowhere/missing:1")
    # a failed start is not billed, and the order closes when the instance goes
    time.sleep(1.5)
    assert [b for b in user.get("/bills?pageSize=100").json()["nodes"] if b["kind"] == "compute"] == []
    assert user.delete(f"/clusters/{CLUSTER}/instances?name={name}").status_code == 200
    user.wait_status(name, None, cluster=CLUSTER, timeout=120)
    assert [o["status"] for o in user.get("/orders").json()["nodes"] if o["instanceName"] == name] == ["closed"]
    assert user.remain("t4") == 2


def test_orphans_are_removed_and_labelled_containers_adopted(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, CATALOG.format(socket=SOCKET, image=IMAGE, cluster=CLUSTER)),
                               "--ssh-ports", "32100-32199"))
    orphan = "lattice-orphan-" + str(int(time.time()))
    podman("run", "-d", "--name", orphan, "--label", "lattice.managed=true", "--label", f"lattice.cluster={CLUSTER}",
           "--label", "lattice.instance=instance-deadbeef", IMAGE)
    deadline = time.time() + 60
    while time.time() < deadline and podman("container", "exists", orphan, check=False).returncode == 0:
        time.sleep(0.5)
    assert podman("container", "exists", orphan, check=False).returncode != 0, "the orphan was not removed"
    # an instance survives a restart of the server: its container is adopted, not recreated
    user = server.new_user(balance="100")
    name = user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image=IMAGE)).json()["name"]
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    before = json.loads(podman("inspect", container_of(name)).stdout)[0]["Id"]
    server.restart()
    user.url = server.url
    # ready = the reconciler has made its first pass over the engine
    wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).status_code == 200, what="/readyz")
    assert user.instance(name, cluster=CLUSTER).json()["status"] == "Running"
    assert json.loads(podman("inspect", container_of(name)).stdout)[0]["Id"] == before
    user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    user.wait_status(name, None, cluster=CLUSTER, timeout=120)


REGISTRY = os.environ.get("LATTICE_TEST_REGISTRY")


@pytest.mark.skipif(not REGISTRY, reason="no test registry (LATTICE_TEST_REGISTRY)")
def test_snapshots_are_pushed_when_a_registry_is_configured(make_server, tmp_path):
    catalog = CATALOG.format(socket=SOCKET, image=IMAGE, cluster=CLUSTER).replace("harborAddr: images.test.local", f"harborAddr: {REGISTRY}")
    catalog = catalog.replace("        gpuRequests: none\n", "        gpuRequests: none\n        pushSnapshots: true\n")
    server = make_server(args=("--catalog", write_catalog(tmp_path, catalog), "--ssh-ports", "32200-32299"))
    user = server.new_user(balance="100")
    name = user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image=IMAGE)).json()["name"]
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    tag = "v" + uuid.uuid4().hex[:6]
    r = user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off", {"gracePeriodSeconds": 1, "needSnapshot": True, "imageName": "pushed", "tag": tag})
    assert r.status_code == 200, r.text
    stopped = user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=120)
    assert stopped["statusReason"] == ""
    reference = f"{REGISTRY}/{user.namespace}/pushed:{tag}"
    assert {i["name"]: i["status"] for i in user.get("/images").json()["nodes"]}[reference] == "Ready"
    tags = requests.get(f"http://{REGISTRY}/v2/{user.namespace}/pushed/tags/list", timeout=10).json()["tags"]
    assert tag in tags
    user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    user.wait_status(name, None, cluster=CLUSTER, timeout=120)


def engine_server(make_server, tmp_path, ports, catalog=None, socket=None):
    catalog = catalog or CATALOG.format(socket=socket or SOCKET, image=IMAGE, cluster=CLUSTER)
    return make_server(args=("--catalog", write_catalog(tmp_path, catalog), "--ssh-ports", ports))


def running_instance(user):
    r = user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image=IMAGE))
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    return name


def test_a_container_that_exits_or_vanishes_fails_its_instance(make_server, tmp_path):
    server = engine_server(make_server, tmp_path, "32300-32399")
    user = server.new_user(balance="100")
    exits, vanishes = running_instance(user), running_instance(user)
    assert user.remain("t4") == 0
    podman("kill", container_of(exits))
    failed = user.wait_status(exits, "Failed", cluster=CLUSTER, timeout=60)
    assert failed["statusReason"].startswith("Exited"), failed["statusReason"]
    # Removed while the server is away, so no reconcile pass sees it exit on the way out.
    server.stop()
    podman("rm", "-f", container_of(vanishes))
    server.start()
    user.url = server.url
    failed = user.wait_status(vanishes, "Failed", cluster=CLUSTER, timeout=60)
    assert failed["statusReason"].startswith("WorkloadLost"), failed["statusReason"]
    assert user.remain("t4") == 2, "a failed instance holds no GPUs"
    # the exited container stays stopped with its volume; power_on brings both back
    state = json.loads(podman("inspect", container_of(exits)).stdout)[0]["State"]
    assert not state["Running"]
    assert podman("volume", "exists", failed["volumeMounts"][1]["PVCName"], check=False).returncode == 0
    for name in (exits, vanishes):
        assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_on").status_code == 200
        user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
        user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    for name in (exits, vanishes):
        user.wait_status(name, None, cluster=CLUSTER, timeout=120)


def test_power_on_with_other_gpus_replaces_the_container_on_the_same_volume(make_server, tmp_path):
    server = engine_server(make_server, tmp_path, "32400-32499")
    user = server.new_user(balance="100")
    first = running_instance(user)
    container = container_of(first)
    gpus = json.loads(podman("inspect", container).stdout)[0]["Config"]["Labels"]["lattice.gpus"]
    podman("exec", container, "sh", "-c", "echo kept > /root/data/keep.txt")
    assert user.post(f"/clusters/{CLUSTER}/instances/{first}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
    user.wait_status(first, "Stopped", cluster=CLUSTER, timeout=120)
    # another instance takes the GPU it had; the next power_on gets the other one
    second = running_instance(user)
    taken = json.loads(podman("inspect", container_of(second)).stdout)[0]["Config"]["Labels"]["lattice.gpus"]
    assert taken == gpus
    assert user.post(f"/clusters/{CLUSTER}/instances/{first}/power_on").status_code == 200
    user.wait_status(first, "Running", cluster=CLUSTER, timeout=120)
    replaced = container_of(first)
    labels = json.loads(podman("inspect", replaced).stdout)[0]["Config"]["Labels"]
    assert labels["lattice.gpus"] != gpus
    assert podman("exec", replaced, "cat", "/root/data/keep.txt").stdout.strip() == "kept"
    for name in (first, second):
        user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    for name in (first, second):
        user.wait_status(name, None, cluster=CLUSTER, timeout=120)


def test_an_engine_that_goes_down_keeps_instances_and_the_api_answering(make_server, tmp_path):
    # A Podman service of its own on the shared storage, so stopping it disturbs no other test.
    socket = str(tmp_path / "down.sock")
    env = dict(os.environ)

    def serve():
        proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: subprocess.run(["curl", "-sf", "--unix-socket", socket, "http://localhost/_ping"],
                                        capture_output=True).returncode == 0)
        return proc

    service = serve()
    try:
        server = engine_server(make_server, tmp_path, "32500-32599", socket=socket)
        user = server.new_user(balance="100")
        name = running_instance(user)
        service.terminate()
        service.wait(timeout=30)
        # the API answers at once, the instance keeps its last known state, writes are taken
        started = time.time()
        assert user.instance(name, cluster=CLUSTER).json()["status"] == "Running"
        assert time.time() - started < 2
        assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off", {"gracePeriodSeconds": 1}).text == '"ok"'
        # Several reconcile passes (every 0.2 s) meet the dead socket; none may record a
        # stop it has not seen, nor fail the instance.
        time.sleep(1)
        assert user.instance(name, cluster=CLUSTER).json()["status"] == "Stopping"
        service = serve()
        user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=120)
        user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
        user.wait_status(name, None, cluster=CLUSTER, timeout=120)
    finally:
        service.terminate()
        service.wait(timeout=30)


AUTH_REGISTRY = os.environ.get("LATTICE_TEST_AUTH_REGISTRY")


def push_catalog(registry, username="", password=""):
    catalog = CATALOG.format(socket=SOCKET, image=IMAGE, cluster=CLUSTER).replace(
        "harborAddr: images.test.local", f"harborAddr: {registry}")
    extra = "        pushSnapshots: true\n"
    if username:
        extra += f"        registryUsername: {username}\n        registryPassword: {password}\n"
    return catalog.replace("        gpuRequests: none\n", "        gpuRequests: none\n" + extra)


def snapshot_outcome(make_server, tmp_path, catalog, ports):
    server = make_server(args=("--catalog", write_catalog(tmp_path, catalog), "--ssh-ports", ports), name=ports)
    user = server.new_user(balance="100")
    name = running_instance(user)
    tag = "v" + uuid.uuid4().hex[:6]
    r = user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off",
                  {"gracePeriodSeconds": 1, "needSnapshot": True, "imageName": "pushed", "tag": tag})
    assert r.status_code == 200, r.text
    stopped = user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=120)
    images = {i["name"]: i for i in user.get("/images").json()["nodes"]}
    assert user.remain("t4") == 2, "GPUs released whatever became of the snapshot"
    user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    user.wait_status(name, None, cluster=CLUSTER, timeout=120)
    return server, user, stopped, images, tag


@pytest.mark.skipif(not AUTH_REGISTRY, reason="no authenticating test registry (LATTICE_TEST_AUTH_REGISTRY)")
def test_snapshots_push_with_registry_credentials_and_fail_without(make_server, tmp_path):
    username = os.environ["LATTICE_TEST_AUTH_REGISTRY_USER"]
    password = os.environ["LATTICE_TEST_AUTH_REGISTRY_PASSWORD"]
    server, user, stopped, images, tag = snapshot_outcome(
        make_server, tmp_path, push_catalog(AUTH_REGISTRY, username, password), "32600-32649")
    # Gone before the next server on this cluster starts, or it would take that one's
    # containers for orphans.
    server.stop()
    assert stopped["statusReason"] == ""
    reference = f"{AUTH_REGISTRY}/{user.namespace}/pushed:{tag}"
    assert images[reference]["status"] == "Ready"
    tags = requests.get(f"http://{AUTH_REGISTRY}/v2/{user.namespace}/pushed/tags/list", auth=(username, password),
                        timeout=10).json()["tags"]
    assert tag in tags

    _, user, stopped, images, tag = snapshot_outcome(
        make_server, tmp_path, push_catalog(AUTH_REGISTRY, username, "wrong-password"), "32650-32699")
    assert stopped["statusReason"].startswith("SnapshotFailed: "), stopped["statusReason"]
    assert images[f"{AUTH_REGISTRY}/{user.namespace}/pushed:{tag}"]["status"] == "Failed"


def test_a_snapshot_that_cannot_be_pushed_is_failed_and_the_instance_stopped(make_server, tmp_path):
    # Nothing listens on port 9 of loopback: the commit succeeds, the push cannot.
    _, user, stopped, images, tag = snapshot_outcome(make_server, tmp_path, push_catalog("127.0.0.1:9"), "32700-32749")
    assert stopped["statusReason"].startswith("SnapshotFailed: "), stopped["statusReason"]
    assert images[f"127.0.0.1:9/{user.namespace}/pushed:{tag}"]["status"] == "Failed"
    # a Failed snapshot cannot be started
    r = user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image=f"127.0.0.1:9/{user.namespace}/pushed:{tag}"))
    assert r.status_code == 422 and r.json()["code"] == "ImageNotReady"


def test_tenants_containers_cannot_reach_each_other(make_server, tmp_path):
    catalog = CATALOG.format(socket=SOCKET, image=IMAGE, cluster=CLUSTER).replace(
        "gpuCount: 2, cpuCores: 2, memoryGiB: 4", "gpuCount: 4, cpuCores: 4, memoryGiB: 8")
    server = engine_server(make_server, tmp_path, "34100-34199", catalog=catalog)
    alice, bob = server.new_user(balance="100"), server.new_user(balance="100")
    target = container_of(running_instance(alice))
    friend = container_of(running_instance(alice))
    stranger = container_of(running_instance(bob))
    inspect = json.loads(podman("inspect", target).stdout)[0]
    address = next(iter(inspect["NetworkSettings"]["Networks"].values()))["IPAddress"]
    podman("exec", "-d", target, "sh", "-c", "while true; do echo hello | busybox nc -l -p 8080; done")
    time.sleep(0.5)

    def reach(container):
        out = podman("exec", container, "sh", "-c", f"busybox nc -w 2 {address} 8080 </dev/null", check=False)
        return "hello" in out.stdout

    wait_for(lambda: reach(friend), timeout=20, what="the same tenant's container to reach it")
    assert not reach(stranger), "another tenant's container must not reach it"
    for user in (alice, bob):
        for instance in user.get(f"/clusters/{CLUSTER}/instances").json()["nodes"]:
            user.delete(f"/clusters/{CLUSTER}/instances?name={instance['name']}")
            user.wait_status(instance["name"], None, cluster=CLUSTER, timeout=60)
