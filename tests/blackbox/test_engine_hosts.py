"""One engine cluster over several hosts: three Podman services on this machine, each with
its own storage root, run root and socket, stand in for three GPU servers; the third is
reached over TCP with mutual TLS through a TLS terminator (socat), with certificates made
here by openssl. Runs when LATTICE_TEST_ROOTFS (the busybox test image's root file system)
is set and podman, socat and openssl are installed (scripts/test.sh)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from conftest import wait_for, write_catalog

ROOTFS = os.environ.get("LATTICE_TEST_ROOTFS")
IMAGE = "localhost/lattice-test:busybox"
pytestmark = pytest.mark.skipif(
    not (ROOTFS and all(shutil.which(t) for t in ("podman", "socat", "openssl"))),
    reason="needs LATTICE_TEST_ROOTFS, podman, socat and openssl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PodmanHost:
    """A Podman API service with storage of its own: one 'host' of the cluster."""

    def __init__(self, base, name):
        self.name = name
        self.dir = base / name
        self.dir.mkdir(parents=True)
        self.socket = self.dir / "podman.sock"
        self.flags = ["--root", str(self.dir / "root"), "--runroot", str(self.dir / "run"),
                      "--tmpdir", str(self.dir / "tmp")]
        self.proc = None
        self.podman("import", "--change", 'CMD ["/bin/sh","-c","trap \\"exit 0\\" TERM; while true; do sleep 1; done"]',
                    ROOTFS, IMAGE)

    def podman(self, *args, check=True):
        out = subprocess.run(["podman", *self.flags, *args], capture_output=True, text=True, timeout=120)
        if check:
            assert out.returncode == 0, out.stderr
        return out

    def start(self):
        self.proc = subprocess.Popen(["podman", *self.flags, "system", "service", "--time=0", f"unix://{self.socket}"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "service.log", "ab"))
        wait_for(lambda: subprocess.run(["curl", "-sf", "--unix-socket", str(self.socket), "http://localhost/_ping"],
                                        capture_output=True).returncode == 0, timeout=30, what=f"{self.name} to serve")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.proc = None
        if self.socket.exists():
            self.socket.unlink()

    def containers(self):
        names = self.podman("ps", "-a", "--filter", "label=lattice.managed=true", "--format",
                            '{{index .Labels "lattice.instance"}}').stdout.split()
        return set(names)

    def cleanup(self):
        self.podman("rm", "-af", "-t", "0", check=False)
        self.podman("volume", "prune", "-f", check=False)

    def unmount(self):
        """Podman's storage leaves its overlay mounted under the root: lift it, so the test's
        directory can go."""
        with open("/proc/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(self.dir))]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)


def make_certificates(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker's TLS
    guide makes them."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=lattice-test-ca")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}-key.pem", "-out", f"{who}.csr",
                "-subj", f"/CN={who}")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-out", f"{who}.pem", "-days", "2", "-extfile", f"{who}.ext")


class TLSTerminator:
    """socat: TCP with mutual TLS in front of a host's unix socket (as dockerd --tlsverify)."""

    def __init__(self, host, certs):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["socat", f"OPENSSL-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,cert={certs}/server.pem,"
             f"key={certs}/server-key.pem,cafile={certs}/ca.pem,verify=1", f"UNIX-CONNECT:{host.socket}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def fleet(tmp_path_factory):
    base = tmp_path_factory.mktemp("hosts")
    certs = base / "certs"
    certs.mkdir()
    make_certificates(certs)
    hosts = [PodmanHost(base, name) for name in ("host-a", "host-b", "host-c")]
    for host in hosts:
        host.start()
    tls = TLSTerminator(hosts[2], certs)
    yield hosts, tls, certs
    tls.stop()
    for host in hosts:
        if not host.proc:
            host.start()
        host.cleanup()
        host.stop()
        host.unmount()


def catalog(hosts, tls, certs, cluster):
    a, b, _ = hosts
    return f"""
regions:
  - id: r-rack
    name: rack
    harborAddr: images.test.local
    clusters:
      - name: {cluster}
        driver: engine
        gpuRequests: none
        nodes:
          - {{name: host-a, gpuModel: T4, gpuCount: 2, cpuCores: 8, memoryGiB: 16, engine: {{url: "unix://{a.socket}"}}}}
          - {{name: host-b, gpuModel: T4, gpuCount: 2, cpuCores: 8, memoryGiB: 16, engine: {{url: "unix://{b.socket}"}}}}
          - {{name: host-c, gpuModel: T4, gpuCount: 2, cpuCores: 8, memoryGiB: 16,
              engine: {{url: "tcp://127.0.0.1:{tls.port}", ca: "{certs}/ca.pem", cert: "{certs}/client.pem",
                        key: "{certs}/client-key.pem"}}}}
gpuSkus:
  - {{id: "t4", name: T4, regionID: r-rack, clusterName: {cluster}, gpuModel: T4, gpuCount: 1, cpuCores: 1, memoryGiB: 1, sellingType: 1, price: "1"}}
diskSkus:
  - {{id: "1", type: shared-filesystem, maxSizeGiB: 10, defaultSizeGiB: 1}}
images:
  - name: {IMAGE}
"""


def create(user, cluster):
    r = user.post(f"/clusters/{cluster}/instances", user.create_body(sku="t4", size=1, image=IMAGE))
    assert r.status_code == 200, r.text
    return user.wait_status(r.json()["name"], "Running", cluster=cluster, timeout=120)


def node_of(instance):
    return instance["Pods"][0]["nodeScheduled"]


def admin_nodes(server):
    r = server.client().get("/admin/nodes")
    assert r.status_code == 200, r.text
    return {n["name"]: n for n in r.json()["nodes"]}


def test_three_hosts_fill_by_best_fit_and_survive_a_host_going_away(make_server, tmp_path, fleet):
    hosts, tls, certs = fleet
    a, b, c = hosts
    cluster = "rack-" + uuid.uuid4().hex[:6]
    server = make_server(args=("--catalog", write_catalog(tmp_path, catalog(hosts, tls, certs, cluster)),
                               "--resync-seconds", "2"))
    user = server.new_user(balance="1000")

    # Best fit: the fullest node that still fits, ties by name.
    i1, i2, i3 = (create(user, cluster) for _ in range(3))
    seen_note = user.instance(i3["name"], cluster).json()["statusReason"]
    assert seen_note == "" or seen_note.startswith("DiskSizeNotEnforced: "), seen_note
    assert [node_of(i) for i in (i1, i2, i3)] == ["host-a", "host-a", "host-b"]
    assert a.containers() == {i1["name"], i2["name"]} and b.containers() == {i3["name"]}
    nodes = admin_nodes(server)
    assert {n: (v["health"], v["gpuFree"]) for n, v in nodes.items()} == {
        "host-a": ("healthy", 0), "host-b": ("healthy", 1), "host-c": ("healthy", 2)}

    # host-b's engine stops answering: it is unhealthy, its instance says why and keeps its
    # status, and new instances go elsewhere although host-b has a free GPU.
    b.stop()
    wait_for(lambda: admin_nodes(server)["host-b"]["health"] == "unhealthy", timeout=30, what="host-b unhealthy")
    assert admin_nodes(server)["host-b"]["reason"].startswith("EngineUnreachable: ")
    seen = wait_for(lambda: (lambda i: i if i["statusReason"].startswith("NodeUnreachable: ") else None)(
        user.instance(i3["name"], cluster).json()), timeout=30, what="i3's reason")
    assert seen["status"] == "Running"
    i4 = create(user, cluster)
    assert node_of(i4) == "host-c", "over TLS"
    assert c.containers() == {i4["name"]}

    # It comes back: its container is adopted again and the reason goes (what stays is the
    # driver's own note, if any: these hosts' storage cannot cap the data disk).
    b.start()
    wait_for(lambda: admin_nodes(server)["host-b"]["health"] == "healthy", timeout=30, what="host-b healthy")
    back = wait_for(lambda: (lambda i: i if i["statusReason"] in ("", seen_note) else None)(
        user.instance(i3["name"], cluster).json()), timeout=60, what="i3's reason to go")
    assert back["status"] == "Running" and node_of(back) == "host-b"
    assert b.containers() == {i3["name"]}

    # Sessions reach every host, the TLS one included (exec through each host's engine).
    if shutil.which("sshpass") and shutil.which("ssh"):
        for instance in (i1, i3, i4):
            current = user.instance(instance["name"], cluster).json()
            port = current["servers"]["SSH"]["sshAddr"].split()[1][2:]
            out = subprocess.run(
                ["sshpass", "-e", "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "LogLevel=ERROR", "-o", "PubkeyAuthentication=no", "-p", port, "root@127.0.0.1", "hostname"],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "SSHPASS": current["servers"]["SSH"]["sshPassword"]})
            assert out.stdout.strip() == instance["name"], out.stderr


def test_drain_and_power_on_return_to_the_volume_host(make_server, tmp_path, fleet):
    hosts, tls, certs = fleet
    a, b, c = hosts
    cluster = "rack-" + uuid.uuid4().hex[:6]
    server = make_server(args=("--catalog", write_catalog(tmp_path, catalog(hosts, tls, certs, cluster)),))
    admin = server.client()
    user = server.new_user(balance="1000")
    i1 = create(user, cluster)
    assert node_of(i1) == "host-a"
    assert admin.post("/admin/nodes/host-a/drain").status_code == 200
    i2 = create(user, cluster)
    assert node_of(i2) == "host-b", "a drained host takes no new instance"
    assert user.instance(i1["name"], cluster).json()["status"] == "Running", "what runs there runs on"

    # power_off, then power_on: back to host-a where the volume is, or a clear refusal.
    name = i1["name"]
    assert user.post(f"/clusters/{cluster}/instances/{name}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
    user.wait_status(name, "Stopped", cluster=cluster, timeout=120)
    r = user.post(f"/clusters/{cluster}/instances/{name}/power_on")
    assert r.status_code == 409 and r.json()["code"] == "InsufficientCapacity", r.text
    assert "host-a" in r.json()["message"] and "data volume" in r.json()["message"]
    assert user.instance(name, cluster).json()["status"] == "Stopped"
    assert admin.post("/admin/nodes/host-a/undrain").status_code == 200
    assert user.post(f"/clusters/{cluster}/instances/{name}/power_on").status_code == 200
    back = user.wait_status(name, "Running", cluster=cluster, timeout=120)
    assert node_of(back) == "host-a"
    assert a.containers() == {name}
    volume = back["volumeMounts"][1]["PVCName"]
    assert a.podman("volume", "exists", volume, check=False).returncode == 0
    assert b.podman("volume", "exists", volume, check=False).returncode != 0


def test_gpus_are_counted_on_each_host_where_a_probe_image_runs(make_server, tmp_path, fleet):
    """`gpuProbeImage`: each host's GPUs are what `nvidia-smi --query-gpu=index` lists when
    run there through its engine (here a stand-in `nvidia-smi` that lists three GPUs, on
    host-a only); a host where the probe cannot run keeps the catalog's count."""
    import tarfile
    hosts, tls, certs = fleet
    a = hosts[0]
    probe_tar = tmp_path / "probe.tar"
    shutil.copy(ROOTFS, probe_tar)
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\nprintf '0\\n1\\n2\\n'\n")
    script.chmod(0o755)
    with tarfile.open(probe_tar, "a") as archive:
        archive.add(script, arcname="./bin/nvidia-smi")
    a.podman("import", str(probe_tar), "localhost/lattice-test:gpu-probe")
    cluster = "rack-" + uuid.uuid4().hex[:6]
    text = catalog(hosts, tls, certs, cluster).replace(
        "        gpuRequests: none\n", "        gpuRequests: none\n        gpuProbeImage: localhost/lattice-test:gpu-probe\n")
    server = make_server(args=("--catalog", write_catalog(tmp_path, text),))
    counted = wait_for(lambda: (lambda n: n if n["host-a"]["gpuTotal"] == 3 else None)(admin_nodes(server)),
                       timeout=60, what="host-a's GPUs counted by the probe")
    assert counted["host-b"]["gpuTotal"] == 2 and counted["host-c"]["gpuTotal"] == 2
    # No probe container is left behind.
    wait_for(lambda: a.podman("ps", "-a", "--filter", "label=lattice.probe", "--format", "{{.Names}}").stdout.strip()
             == "", timeout=30, what="the probe container to go")
