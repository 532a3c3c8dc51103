#!/usr/bin/env python3
"""Kubernetes driver benchmark (a script that prints figures, never a timed test).

Runs `lattice serve` with one `driver: kubernetes` cluster against `lattice-kube-fake`
(NODES nodes of 8 GPUs), creates INSTANCES instances, waits until all are Running, powers
them all off, on again, and deletes them; prints for each phase the wall time and how many
requests the driver sent to the API server (from the fake's counters), and the server's
idle CPU over IDLE seconds with everything Running (watches open, no polling).

    scripts/bench-kubernetes.py [INSTANCES] [NODES] [QPS] [BURST]
    LATTICE_BIN=.build/release/lattice scripts/bench-kubernetes.py 200 25 50 100
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

INSTANCES = int(sys.argv[1]) if len(sys.argv) > 1 else 100
NODES = int(sys.argv[2]) if len(sys.argv) > 2 else 13
QPS = sys.argv[3] if len(sys.argv) > 3 else "5"
BURST = sys.argv[4] if len(sys.argv) > 4 else "10"
IDLE = int(os.environ.get("IDLE", "20"))
BIN = os.environ.get("LATTICE_BIN", ".build/release/lattice")
FAKE = os.path.join(os.path.dirname(BIN), "lattice-kube-fake")
TOKEN = "bench-bootstrap-token-0123456789abcdef"
IMAGE = "images.test.local/matrixdc/ubuntu:22.04"


def call(url, method="GET", body=None, token=None, namespace=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"bearer {token}")
    if namespace:
        request.add_header("namespace", namespace)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    work = tempfile.mkdtemp(prefix="bench-k8s-")
    port_file = os.path.join(work, "fake.port")
    nodes = sum((["--node", f"node-{i:03d}:8:T4"] for i in range(NODES)), [])
    fake = subprocess.Popen([FAKE, "--port-file", port_file, "--image", IMAGE, *nodes],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        time.sleep(0.05)
    fake_url = f"http://127.0.0.1:{open(port_file).read().strip()}"
    kubeconfig = os.path.join(work, "kubeconfig")
    open(kubeconfig, "w").write(f"""apiVersion: v1
kind: Config
current-context: fake
clusters: [{{name: fake, cluster: {{server: "{fake_url}"}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: u}}}}]
users: [{{name: u, user: {{token: t}}}}]
""")
    catalog = os.path.join(work, "catalog.yaml")
    open(catalog, "w").write(f"""regions:
  - id: r1
    name: k8s
    harborAddr: harbor.test.local
    clusters:
      - name: k8s
        driver: kubernetes
        kubernetes: {{kubeconfig: "{kubeconfig}", queriesPerSecond: {QPS}, burst: {BURST}}}
gpuSkus:
  - {{id: "t4", name: T4, regionID: r1, clusterName: k8s, gpuModel: T4, gpuCount: 1, cpuCores: 1, memoryGiB: 1, sellingType: 1, price: "1"}}
diskSkus:
  - {{id: "1", type: shared-filesystem, maxSizeGiB: 10, defaultSizeGiB: 1}}
images:
  - name: {IMAGE}
""")
    env = dict(os.environ, LATTICE_BOOTSTRAP_TOKEN=TOKEN)
    server = subprocess.Popen([BIN, "serve", "--port", "0", "--data-dir", os.path.join(work, "data"),
                               "--catalog", catalog, "--ssh-gateway-port", "0", "--quota-instances", "100000",
                               "--quota-gpus", "100000"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    url = None
    for line in server.stdout:
        if line.startswith("listening on "):
            url = line.split("listening on ", 1)[1].strip()
            break
    try:
        admin = {"token": TOKEN, "namespace": "admin"}
        user = call(f"{url}/mdc/api/v1/admin/users", "POST", {"namespace": "bench", "balance": "1000000"}, **admin)
        token, namespace = user["token"], "bench"

        def api(path, method="GET", body=None):
            return call(f"{url}/mdc/api/v1{path}", method, body, token=token, namespace=namespace)

        def requests_sent():
            return call(f"{fake_url}/fake/stats")["requests"]

        def wait_all(names, status):
            while True:
                got, page = {}, 1
                while True:
                    nodes = api(f"/clusters/k8s/instances?pageSize=100&page={page}")["nodes"]
                    got.update({i["name"]: i["status"] for i in nodes})
                    if len(nodes) < 100:
                        break
                    page += 1
                if status is None and not (set(names) & set(got)):
                    return
                if status is not None and all(got.get(n) == status for n in names):
                    return
                time.sleep(0.2)

        def phase(label, action, names, status):
            before, started = requests_sent(), time.time()
            action()
            wait_all(names, status)
            seconds, sent = time.time() - started, requests_sent() - before
            print(f"{label:10s} {len(names)} instances: {seconds:6.1f} s, {sent} requests "
                  f"({sent / max(1, len(names)):.1f} per instance)")

        names = []

        def create():
            for _ in range(INSTANCES):
                body = {"Cost": {"CostType": "1", "CouponID": "", "DiskSKUID": "1", "GPUSKUID": "t4", "CostTime": ""},
                        "VolumeMount": [{"PathInContainer": "/root/data", "Size": 1, "Type": "shared-filesystem"}],
                        "namespace": namespace, "displayName": "b", "image": IMAGE, "Region": ""}
                names.append(api("/clusters/k8s/instances", "POST", body)["name"])

        print(f"kubernetes driver on lattice-kube-fake: {NODES} nodes, QPS {QPS}, burst {BURST}")
        phase("create", create, names, "Running")
        before_cpu, before_req = cpu_seconds(server.pid), requests_sent()
        time.sleep(IDLE)
        print(f"idle       {IDLE} s with {INSTANCES} Running: {cpu_seconds(server.pid) - before_cpu:.2f} s CPU, "
              f"{requests_sent() - before_req} requests")
        phase("power_off", lambda: [api(f"/clusters/k8s/instances/{n}/power_off", "POST", {"gracePeriodSeconds": 1})
                                    for n in names], names, "Stopped")
        phase("power_on", lambda: [api(f"/clusters/k8s/instances/{n}/power_on", "POST") for n in names],
              names, "Running")
        phase("delete", lambda: [api(f"/clusters/k8s/instances?name={n}", "DELETE") for n in names], names, None)
    finally:
        server.terminate()
        fake.terminate()


if __name__ == "__main__":
    main()
