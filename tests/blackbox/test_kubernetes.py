"""A `driver: kubernetes` cluster against the fake API server (`lattice-kube-fake`, built
with lattice; a test program, never shipped) over real HTTP: the seed lifecycle, snapshots
as Jobs, pod trouble as statuses and reasons, a lost node, throttling, dropped and expired
watches. Every object the driver sends is written to LATTICE_K8S_OBJECTS_DIR, which
scripts/test.sh validates with kubernetes-validate --strict."""
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import lattice_binary, wait_for, write_catalog

IMAGE = "images.test.local/matrixdc/ubuntu:22.04"
COMMITTER = "registry.test.local/lattice/committer:1"
CLUSTER = "k8s"


class FakeKube:
    def __init__(self, tmp_path, *extra):
        binary = os.path.join(os.path.dirname(lattice_binary()), "lattice-kube-fake")
        if not os.path.exists(binary):
            pytest.skip("lattice-kube-fake is not built")
        port_file = tmp_path / "fake.port"
        args = [binary, "--port-file", str(port_file), "--node", "k8s-a:2:T4", "--node", "k8s-b:2:T4",
                "--image", IMAGE, "--image", COMMITTER, *extra]
        objects = os.environ.get("LATTICE_K8S_OBJECTS_DIR")
        if objects:
            args += ["--objects-dir", objects]
        self.log_path = tmp_path / "fake.log"
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "ab"))
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30, what="the fake to listen")
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
current-context: fake
clusters:
  - name: fake
    cluster: {{server: "{self.url}"}}
contexts:
  - name: fake
    context: {{cluster: fake, user: tester}}
users:
  - name: tester
    user: {{token: not-checked}}
""")

    def call(self, method, path):
        """One request to the fake; a connection that breaks is tried again (the fake's own
        controls are idempotent), and a fake that died fails the test with its log."""
        for attempt in range(3):
            request = urllib.request.Request(self.url + path, method=method)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read() or b"{}")
            except (ConnectionError, urllib.error.URLError) as error:
                self.check_alive()
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def check_alive(self):
        if self.proc.poll() is not None:
            log = (self.log_path.read_text(errors="replace") if self.log_path.exists() else "")[-4000:]
            pytest.fail(f"lattice-kube-fake exited with {self.proc.returncode}; its log:\n{log}")

    def items(self, resource, instance=None):
        """The instance's objects (its pods without the snapshot Job's); every one Lattice made without an instance."""
        group = "apis/networking.k8s.io/v1" if resource in ("ingresses", "networkpolicies") else "api/v1"
        selector = (f"lattice.dev/instance%3D{instance}" if instance else "app.kubernetes.io/managed-by%3Dlattice") + (
            ",%21lattice.dev/job" if resource == "pods" else "")
        status, body = self.call("GET", f"/{group}/namespaces/lattice-instances/{resource}?labelSelector={selector}")
        assert status == 200, body
        return body["items"]

    def stop(self):
        self.check_alive()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def fake(tmp_path):
    kube = FakeKube(tmp_path)
    yield kube
    kube.stop()


def catalog(kube):
    return f"""
regions:
  - id: r-k8s
    name: kubernetes
    harborAddr: harbor.test.local
    clusters:
      - name: {CLUSTER}
        driver: kubernetes
        kubernetes: {{kubeconfig: "{kube.kubeconfig}", queriesPerSecond: 50, burst: 100,
                      committerImage: "{COMMITTER}", registrySecret: harbor-robot, runtimeClass: nvidia}}
gpuSkus:
  - {{id: "t4", name: T4, regionID: r-k8s, clusterName: {CLUSTER}, gpuModel: T4, gpuCount: 1, cpuCores: 1, memoryGiB: 1, sellingType: 1, price: "1"}}
diskSkus:
  - {{id: "1", type: shared-filesystem, maxSizeGiB: 10, defaultSizeGiB: 1, storageClass: fast-nvme,
      accessMode: ReadWriteMany}}
  - {{id: "2", type: local-nvme, maxSizeGiB: 10, defaultSizeGiB: 1, storageClass: local-path, nodeLocal: true}}
images:
  - name: {IMAGE}
allowedImagePatterns:
  - images.test.local/nowhere/*
"""


def start(make_server, tmp_path, kube, *extra):
    server = make_server(args=("--catalog", write_catalog(tmp_path, catalog(kube)), "--resync-seconds", "2", *extra))
    return server, server.new_user(balance="1000")


def create(user, image=IMAGE):
    r = user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image=image))
    assert r.status_code == 200, r.text
    return r.json()["name"]


def test_the_seed_lifecycle_on_kubernetes(make_server, tmp_path, fake):
    server, user = start(make_server, tmp_path, fake)
    # Nodes and GPUs come from the cluster, not the catalog.
    nodes = {n["name"]: n for n in server.client().get("/admin/nodes").json()["nodes"]}
    assert set(nodes) == {"k8s-a", "k8s-b"} and all(n["gpuTotal"] == 2 for n in nodes.values()), nodes
    assert user.remain("t4") == 4

    name = create(user)
    running = user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)
    pod = running["Pods"][0]
    assert pod["nodeScheduled"] in nodes and pod["Name"].startswith(name + "-")
    pods = fake.items("pods", name)
    assert [p["metadata"]["name"] for p in pods] == [pod["Name"]]
    labels = pods[0]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "lattice" and labels["lattice.dev/namespace"] == user.namespace
    # Pinned by the node's name (as DaemonSets are), and pulling with the registry Secret.
    terms = pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pod["nodeScheduled"]]}]}]
    assert pods[0]["spec"]["imagePullSecrets"] == [{"name": "harbor-robot"}]
    assert pods[0]["spec"]["runtimeClassName"] == "nvidia"
    assert pods[0]["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    volume = running["volumeMounts"][1]["PVCName"]
    claims = fake.items("persistentvolumeclaims", name)
    assert [c["metadata"]["name"] for c in claims] == [volume]
    assert claims[0]["spec"]["storageClassName"] == "fast-nvme"  # the disk SKU's class and mode
    assert claims[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    # No NodePort to the image's own sshd (SSH goes through the gateway), and a default deny.
    assert {s["metadata"]["name"] for s in fake.items("services", name)} == {f"{name}-web"}
    policies = fake.items("networkpolicies")
    assert [p["metadata"]["name"] for p in policies] == ["lattice-instances-isolation"]
    assert policies[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert fake.items("ingresses", name)[0]["spec"]["rules"][0]["host"].startswith(running["uid"] + ".")
    # The secrets are in the Secret, not in the pod.
    assert running["servers"]["SSH"]["sshPassword"] not in json.dumps(pods)
    assert user.remain("t4") == 3

    # power_off deletes the pod and keeps the PVC; power_on makes a new pod on it.
    assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off", {"gracePeriodSeconds": 1}).text == '"ok"'
    user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=60)
    assert fake.items("pods", name) == [] and len(fake.items("persistentvolumeclaims", name)) == 1
    assert user.remain("t4") == 4
    assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_on").status_code == 200
    again = user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)
    assert again["Pods"][0]["Name"] != pod["Name"]
    assert [c["metadata"]["name"] for c in fake.items("persistentvolumeclaims", name)] == [volume]

    # power_off with a snapshot: a Job commits the running pod; then the pod goes.
    r = user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off",
                  {"gracePeriodSeconds": 1, "needSnapshot": True, "imageName": "snap", "tag": "v1"})
    assert r.status_code == 200, r.text
    user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=60)
    snapshot = f"harbor.test.local/{user.namespace}/snap:v1"
    images = {i["name"]: i for i in user.get("/images").json()["nodes"]}
    assert images[snapshot]["status"] == "Ready" and images[snapshot]["sizeBytes"] > 0
    status, job = fake.call("GET", f"/apis/batch/v1/namespaces/lattice-instances/jobs/{name}-commit")
    assert status == 200 and job["status"]["succeeded"] == 1
    committer = job["spec"]["template"]["spec"]
    node = committer["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert node["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [again["Pods"][0]["nodeScheduled"]]
    assert committer["containers"][0]["image"] == COMMITTER and committer["tolerations"] == [{"operator": "Exists"}]
    assert {"name": "DOCKER_CONFIG", "value": "/etc/lattice/registry"} in committer["containers"][0]["env"]
    assert fake.items("pods", name) == []

    # A new instance from the snapshot runs (the committer pushed it).
    clone = create(user, image=snapshot)
    user.wait_status(clone, "Running", cluster=CLUSTER, timeout=60)

    # delete removes everything.
    for victim in (name, clone):
        assert user.delete(f"/clusters/{CLUSTER}/instances?name={victim}").status_code == 200
    for victim in (name, clone):
        user.wait_status(victim, None, cluster=CLUSTER, timeout=60)
        wait_for(lambda: fake.items("pods", victim) == [], timeout=10, what="the pods to go")
        for resource in ("persistentvolumeclaims", "secrets", "services", "ingresses"):
            assert fake.items(resource, victim) == [], resource


def test_pod_trouble_becomes_statuses_and_reasons(make_server, tmp_path, fake):
    server, user = start(make_server, tmp_path, fake)
    # An image the kubelet cannot pull.
    bad = create(user, image="images.test.local/nowhere/none:1")
    failed = user.wait_status(bad, "Failed", cluster=CLUSTER, timeout=60)
    assert failed["statusReason"].startswith("ImagePullFailed: failed to pull"), failed["statusReason"]
    assert user.remain("t4") == 4, "a failed instance holds no GPU"

    # A snapshot the registry refuses: the image is Failed with the committer's message and
    # the instance stops.
    name = create(user)
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)
    r = user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off",
                  {"gracePeriodSeconds": 1, "needSnapshot": True, "imageName": "refused", "tag": "v1"})
    assert r.status_code == 200, r.text
    stopped = user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=60)
    assert "403 Forbidden" in stopped["statusReason"], stopped["statusReason"]
    images = {i["name"]: i for i in user.get("/images").json()["nodes"]}
    assert images[f"harbor.test.local/{user.namespace}/refused:v1"]["status"] == "Failed"

    # A pod deleted under Lattice: the instance fails with WorkloadLost.
    assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_on").status_code == 200
    pod = user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)["Pods"][0]["Name"]
    assert fake.call("DELETE", f"/api/v1/namespaces/lattice-instances/pods/{pod}")[0] == 200
    lost = user.wait_status(name, "Failed", cluster=CLUSTER, timeout=60)
    assert lost["statusReason"].startswith("WorkloadLost: "), lost["statusReason"]

    # A node that leaves the cluster: its instance fails, and nothing more is placed there.
    other = create(user)
    node = user.wait_status(other, "Running", cluster=CLUSTER, timeout=60)["Pods"][0]["nodeScheduled"]
    assert fake.call("POST", f"/fake/nodes/{node}/lose")[0] == 200
    gone = user.wait_status(other, "Failed", cluster=CLUSTER, timeout=60)
    assert gone["statusReason"].startswith("WorkloadLost: "), gone["statusReason"]
    wait_for(lambda: node not in {n["name"] for n in server.client().get("/admin/nodes").json()["nodes"]},
             timeout=10, what="the node to leave")
    third = create(user)
    assert user.wait_status(third, "Running", cluster=CLUSTER, timeout=60)["Pods"][0]["nodeScheduled"] != node


def test_throttling_and_broken_watches_do_not_stop_the_cluster(make_server, tmp_path, fake):
    server, user = start(make_server, tmp_path, fake)
    # The API server throttles: requests wait for Retry-After and go on.
    assert fake.call("POST", "/fake/throttle?count=3&retryAfter=1")[0] == 200
    first = create(user)
    user.wait_status(first, "Running", cluster=CLUSTER, timeout=60)
    assert fake.call("GET", "/fake/stats")[1]["throttled"] == 3

    # Watches dropped, then history expired (410 Gone): the caches recover.
    assert fake.call("POST", "/fake/drop-watches")[0] == 200
    second = create(user)
    user.wait_status(second, "Running", cluster=CLUSTER, timeout=60)
    assert fake.call("POST", "/fake/expire")[0] == 200
    assert user.post(f"/clusters/{CLUSTER}/instances/{first}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
    user.wait_status(first, "Stopped", cluster=CLUSTER, timeout=60)
    time.sleep(0.5)
    assert user.instance(second, CLUSTER).json()["status"] == "Running"


def test_a_node_kept_for_other_work_by_a_taint_takes_none(make_server, tmp_path, fake):
    server, user = start(make_server, tmp_path, fake)
    # A GPU pool's own taint is tolerated; another NoSchedule taint closes the node.
    assert fake.call("POST", "/fake/nodes/k8s-a/taint?key=nvidia.com/gpu&value=present&effect=NoSchedule")[0] == 200
    assert fake.call("POST", "/fake/nodes/k8s-b/taint?key=dedicated&value=training&effect=NoSchedule")[0] == 200
    nodes = lambda: {n["name"]: n for n in server.client().get("/admin/nodes").json()["nodes"]}
    wait_for(lambda: nodes()["k8s-b"]["health"] != "healthy", timeout=10, what="the taint to be seen")
    assert nodes()["k8s-a"]["health"] == "healthy"
    assert nodes()["k8s-b"]["reason"].startswith("Tainted: the node has the taint dedicated=training:NoSchedule")
    for _ in range(2):
        name = create(user)
        assert user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)["Pods"][0]["nodeScheduled"] == "k8s-a"
    assert user.post(f"/clusters/{CLUSTER}/instances", user.create_body(sku="t4", size=1, image=IMAGE)).status_code == 409


def test_a_node_local_disk_brings_power_on_back_to_its_node(make_server, tmp_path, fake):
    server, user = start(make_server, tmp_path, fake)
    body = user.create_body(sku="t4", size=1, image=IMAGE)
    body["Cost"]["DiskSKUID"] = "2"
    body["VolumeMount"][0]["Type"] = "local-nvme"
    r = user.post(f"/clusters/{CLUSTER}/instances", body)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    node = user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)["Pods"][0]["nodeScheduled"]
    assert fake.items("persistentvolumeclaims", name)[0]["spec"]["storageClassName"] == "local-path"
    assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
    user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=60)

    # Its node takes no work: power_on does not move the disk's instance elsewhere, it says why.
    admin = server.client()
    health = lambda: {n["name"]: n["health"] for n in admin.get("/admin/nodes").json()["nodes"]}[node]
    assert fake.call("POST", f"/fake/nodes/{node}/cordon?value=true")[0] == 200
    wait_for(lambda: health() != "healthy", timeout=10, what="the cordon to be seen")
    r = user.post(f"/clusters/{CLUSTER}/instances/{name}/power_on")
    assert r.status_code == 409 and f"data volume is on node {node}" in r.text, r.text
    assert fake.call("POST", f"/fake/nodes/{node}/cordon?value=false")[0] == 200
    wait_for(lambda: health() == "healthy", timeout=10, what="the node to take work again")
    assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_on").status_code == 200
    assert user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)["Pods"][0]["nodeScheduled"] == node


@pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("sshpass")), reason="needs openssh-client and sshpass")
def test_ssh_sessions_run_in_the_pod_through_exec(make_server, tmp_path, fake):
    from test_gateways import free_port, free_port_range, ssh, ssh_port
    server, user = start(make_server, tmp_path, fake, "--ssh-gateway-port", str(free_port()),
                         "--ssh-ports", free_port_range())
    name = create(user)
    instance = user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)
    password = instance["servers"]["SSH"]["sshPassword"]
    # The fake runs the exec on this machine (the pod's stand-in); a real cluster in the pod.
    out = ssh(ssh_port(instance), "root", "echo hi; echo oops >&2; exit 3", password=password)
    assert (out.returncode, out.stdout, out.stderr) == (3, "hi\n", "oops\n"), out
    out = ssh(ssh_port(instance), "root", "cat", password=password, stdin="piped\n")
    assert (out.returncode, out.stdout) == (0, "piped\n"), out.stderr


@pytest.mark.skipif(not (shutil.which("socat") and shutil.which("openssl") and shutil.which("sshpass")),
                    reason="needs socat, openssl and sshpass")
def test_https_with_a_ca_a_client_certificate_and_a_token(make_server, tmp_path):
    """The API server behind TLS that asks for a client certificate (socat, certificates
    made here by openssl), and a token it checks: the kubeconfig's data fields carry all of
    it, for the REST calls, the watches and sessions over wss (whose first frames come in
    the same read as the 101 answer)."""
    from test_gateways import free_port, free_port_range, ssh, ssh_port
    import base64
    from test_engine_hosts import free_port as any_port, make_certificates
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(certs)
    kube = FakeKube(tmp_path, "--token", "s3cret-token")
    terminator = None
    try:
        tls_port = any_port()
        plain = kube.url.rsplit(":", 1)[1]
        terminator = subprocess.Popen(
            ["socat", f"OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={certs}/server.pem,"
             f"key={certs}/server-key.pem,cafile={certs}/ca.pem,verify=1", f"TCP:127.0.0.1:{plain}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

        def data(name):
            return base64.b64encode((certs / name).read_bytes()).decode()

        kube.kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
current-context: tls
clusters:
  - name: tls
    cluster: {{server: "https://127.0.0.1:{tls_port}", certificate-authority-data: "{data('ca.pem')}"}}
contexts:
  - name: tls
    context: {{cluster: tls, user: admin}}
users:
  - name: admin
    user:
      token: s3cret-token
      client-certificate-data: "{data('client.pem')}"
      client-key-data: "{data('client-key.pem')}"
""")
        # Without the token the fake refuses: the driver's calls really carry it.
        assert kube.call("GET", "/api/v1/nodes")[0] == 401
        server, user = start(make_server, tmp_path, kube, "--ssh-gateway-port", str(free_port()),
                             "--ssh-ports", free_port_range())
        nodes = {n["name"] for n in server.client().get("/admin/nodes").json()["nodes"]}
        assert nodes == {"k8s-a", "k8s-b"}
        name = create(user)
        instance = user.wait_status(name, "Running", cluster=CLUSTER, timeout=60)
        password = instance["servers"]["SSH"]["sshPassword"]
        for _ in range(5):
            out = ssh(ssh_port(instance), "root", "echo over-tls; exit 5", password=password, timeout=30)
            assert (out.returncode, out.stdout) == (5, "over-tls\n"), out.stderr
        assert user.post(f"/clusters/{CLUSTER}/instances/{name}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
        user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=60)
        assert user.delete(f"/clusters/{CLUSTER}/instances?name={name}").status_code == 200
        user.wait_status(name, None, cluster=CLUSTER, timeout=60)
    finally:
        if terminator:
            terminator.terminate()
        kube.stop()


NERDCTL_STUB = """#!/bin/sh
# A stand-in for nerdctl: records its arguments, answers as the real one would.
echo "$*" >> "$CALLS"
shift 2  # --namespace k8s.io
case "$1" in
ps) echo 'time="2026-12-02" level=warning msg="cannot read the name store"' >&2
    [ -n "$STUB_CONTAINERS" ] && printf '%s\\n' $STUB_CONTAINERS; exit 0 ;;
commit) echo "sha256:0123"; exit 0 ;;
push) case "$*" in *refused*) echo "pushing"; echo "failed to push: 403 Forbidden" >&2; exit 1 ;; esac; exit 0 ;;
image) echo 123456789; exit 0 ;;
esac
exit 3
"""


def run_committer(tmp_path, *args, containers="4f1c9e", insecure=False):
    """deploy/committer/lattice-commit against a stub nerdctl: exit status, termination
    message and the nerdctl calls."""
    stub = tmp_path / "nerdctl"
    stub.write_text(NERDCTL_STUB)
    stub.chmod(0o755)
    calls, log = tmp_path / "calls", tmp_path / "termination-log"
    for path in (calls, log):
        path.write_text("")
    env = {**os.environ, "NERDCTL": str(stub), "TERMINATION_LOG": str(log), "CALLS": str(calls),
           "STUB_CONTAINERS": containers, **({"LATTICE_COMMIT_INSECURE": "1"} if insecure else {})}
    script = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "committer", "lattice-commit")
    done = subprocess.run(["sh", script, *args], env=env, capture_output=True, text=True, timeout=30)
    return done.returncode, log.read_text(), calls.read_text().splitlines()


def test_the_shipped_committer_commits_pushes_and_reports_the_size(tmp_path):
    ref = "harbor.test.local/alice/snap:v1"
    args = ("--namespace", "lattice-instances", "--pod", "instance-0000abcd-x7k2q", "--image", ref)
    code, message, calls = run_committer(tmp_path, *args)
    assert (code, message) == (0, "123456789")
    assert calls == [
        "--namespace k8s.io ps --quiet --no-trunc --filter label=io.kubernetes.pod.namespace=lattice-instances"
        " --filter label=io.kubernetes.pod.name=instance-0000abcd-x7k2q --filter label=io.kubernetes.container.name=main",
        f"--namespace k8s.io commit 4f1c9e {ref}",
        f"--namespace k8s.io push {ref}",
        f"--namespace k8s.io image inspect --format {{{{.Size}}}} {ref}",
    ]
    assert run_committer(tmp_path, *args, insecure=True)[2][2] == f"--namespace k8s.io push --insecure-registry {ref}"

    # What went wrong is the termination message (the driver's SnapshotFailed: ...), exit 1.
    refused = ("--namespace", "n", "--pod", "p", "--image", "harbor.test.local/alice/refused:v1")
    assert run_committer(tmp_path, *refused)[:2] == (
        1, "push harbor.test.local/alice/refused:v1: failed to push: 403 Forbidden")
    assert run_committer(tmp_path, *args, containers="")[:2] == (
        1, "found 0 running containers 'main' of pod lattice-instances/instance-0000abcd-x7k2q on this node, not one")
    code, message, calls = run_committer(tmp_path, "--namespace", "n", "--pod")
    assert (code, calls) == (1, []) and message == "--pod needs a value"
    code, message, calls = run_committer(tmp_path, "--pod", "p", "--image", ref, "--force")
    assert (code, calls) == (1, []) and message.startswith("unknown argument '--force'")
