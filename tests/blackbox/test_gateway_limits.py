"""The SSH gateway under pressure, with real clients and a low open-file limit (as
`prlimit --nofile=1024` sets it): idle connections, a burst of creates over a wide port
range, silent clients, big uploads, and the host key each instance port presents."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import wait_for
from test_gateways import SSH_OPTIONS, free_port, free_port_range, gateway_server, running_instance, ssh_port

pytestmark = pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("sshpass") and shutil.which("ssh-keyscan")),
                                reason="needs openssh-client and sshpass")

LOW_LIMIT = (1024, 1024)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def password_login(port, login, password, command="echo hello", timeout=60):
    env = {**os.environ, "SSHPASS": password}
    return subprocess.run(["sshpass", "-e", "ssh", *SSH_OPTIONS, "-p", str(port), "-o",
                           "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                           f"{login}@127.0.0.1", command], capture_output=True, text=True, timeout=timeout, env=env)


def test_a_thousand_idle_connections_leave_the_api_and_later_logins_working(make_server):
    shared = free_port()
    server = make_server(args=("--simulated-delay-scale", "0.1", "--ssh-gateway-port", str(shared),
                               "--ssh-ports", free_port_range()), open_files=LOW_LIMIT)
    user = server.new_user()
    instance = running_instance(user)
    held = []
    for _ in range(1100):
        try:
            held.append(socket.create_connection(("127.0.0.1", shared), timeout=5))
        except OSError:
            break  # the kernel's backlog is full: the gateway refuses, it does not fall over
    assert len(held) > 500
    started = time.monotonic()
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 5
    ready = requests.get(server.url + "/readyz", timeout=5).json()["sshListeners"]
    assert ready["openFileLimit"] == 1024 and ready["signingIn"] <= 96, ready
    for s in held:
        s.close()
    wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).json()["sshListeners"]["signingIn"] == 0,
             timeout=30, what="the idle connections forgotten")
    result = password_login(ssh_port(instance), "root", instance["servers"]["SSH"]["sshPassword"])
    assert result.returncode == 0 and "hello" in result.stdout, result.stderr
    assert server.proc.poll() is None


def big_fleet_catalog(path, nodes=60):
    """A simulated region with 480 GPUs, more than the SSH ports 1,024 files can listen on."""
    region = "6b1f0c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"
    lines = ["regions:", f"  - id: {region}", "    name: big", "    harborAddr: registry.example.com",
             "    clusters:", "      - name: big", "        driver: simulated", "        startDelaySeconds: 0.2",
             "        stopDelaySeconds: 0.2", "        nodes:"]
    lines += [f"          - {{name: n{i:03}, gpuModel: T4, gpuCount: 8, cpuCores: 256, memoryGiB: 2048}}"
              for i in range(nodes)]
    lines += ["gpuSkus:", '  - id: "t4"', "    name: T4", f"    regionID: {region}", "    clusterName: big",
              "    gpuModel: T4", "    gpuCount: 1", "    cpuCores: 1", "    memoryGiB: 1", "    sellingType: 1",
              '    price: "0.10"', "diskSkus:", '  - id: "1"', "    name: disk", f"    regionID: {region}",
              "    type: shared-filesystem", '    pricePerGBDay: "0.01"', "    minSizeGiB: 1",
              "    maxSizeGiB: 100", "    defaultSizeGiB: 1", "images:", "  - name: registry.example.com/official/ubuntu:22.04"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_create_burst_over_a_wide_port_range_is_refused_in_words_before_the_limit(make_server, tmp_path):
    catalog = big_fleet_catalog(tmp_path / "catalog.yaml")
    server = make_server(args=("--catalog", str(catalog), "--ssh-ports", "1024-65535", "--ssh-gateway-port", "0",
                               "--quota-instances", "5000", "--quota-gpus", "5000", "--rate-limit-per-token", "0"),
                         open_files=LOW_LIMIT)
    user = server.new_user(balance="100000")
    body = user.create_body(sku="t4", size=1, image="registry.example.com/official/ubuntu:22.04")
    answers, lock = [], threading.Lock()

    def creates(n):
        session = requests.Session()
        for _ in range(n):
            r = session.post(server.url + "/mdc/api/v1/clusters/big/instances", json=body, headers=user.headers(),
                             timeout=60)
            with lock:
                answers.append((r.status_code, r.json()))

    threads = [threading.Thread(target=creates, args=(300,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 1200
    statuses = {status for status, _ in answers}
    assert statuses <= {200, 409, 503}, statuses
    created = [a for s, a in answers if s == 200]
    refused = [a for s, a in answers if s == 503]
    assert len(created) == 288, len(created)  # the budget of 1,024 files: docs/operations.md
    assert refused and all(a["code"] == "OpenFileLimitReached" and "LimitNOFILE" in a["message"] for a in refused)
    ready = requests.get(server.url + "/readyz", timeout=5).json()["sshListeners"]
    assert ready["budget"] == 288
    wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).json()["sshListeners"]["full"], timeout=30,
             what="every allowed listener open")
    admin = server.client().get("/admin/nodes").json()
    assert admin["sshListeners"]["full"] and admin["sshListeners"]["listening"] == 288
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert server.proc.poll() is None


def test_a_silent_connection_is_closed_before_it_signs_in(make_server):
    server = gateway_server(make_server)
    s = socket.create_connection(("127.0.0.1", server.ssh_shared_port), timeout=5)
    s.settimeout(60)
    started = time.monotonic()
    assert s.recv(64).startswith(b"SSH-2.0-")
    while s.recv(4096):
        pass  # the server's key exchange offer, then its close
    assert time.monotonic() - started < 40
    s.close()


def host_key(port, timeout=30):
    """The ed25519 key the port presents, once it listens (after a restart, within a resync)."""
    seen = []

    def scanned():
        out = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"], capture_output=True,
                             text=True, timeout=30).stdout
        keys = [line.split()[2] for line in out.splitlines() if line and not line.startswith("#")]
        seen[:] = keys
        return len(keys) == 1

    wait_for(scanned, timeout=timeout, interval=0.5, what=f"a host key on port {port}")
    return seen[0]


def test_every_instance_port_shows_its_own_host_key(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    first, second = running_instance(user), running_instance(user)
    one, two = host_key(ssh_port(first)), host_key(ssh_port(second))
    shared = host_key(server.ssh_shared_port)
    assert len({one, two, shared}) == 3
    assert host_key(ssh_port(first)) == one, "stable"
    master = (server.data_dir / "ssh_host_ed25519_key.pub").read_text().split()[1]
    assert shared == master
    # and after a restart, the same keys
    server.restart()
    assert host_key(ssh_port(first)) == one


def test_a_big_upload_does_not_fill_the_servers_memory(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    before = rss_kib(server.proc.pid)
    data = b"a" * (20 * 1024 * 1024) + b"\nexit 0\n"
    env = {**os.environ, "SSHPASS": instance["servers"]["SSH"]["sshPassword"]}
    result = subprocess.run(["sshpass", "-e", "ssh", *SSH_OPTIONS, "-T", "-p", str(ssh_port(instance)), "-o",
                             "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no", "root@127.0.0.1"],
                            input=data, capture_output=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    after = rss_kib(server.proc.pid)
    print(f"RSS before {before} KiB, after {after} KiB")
    assert after - before < 64 * 1024, (before, after)


def test_channels_per_connection_are_capped(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    # OpenSSH multiplexes sessions over one master connection: the eleventh is refused.
    control = f"/tmp/lattice-mux-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "SSHPASS": instance["servers"]["SSH"]["sshPassword"]}
    base = ["ssh", *SSH_OPTIONS, "-p", str(ssh_port(instance)), "-o", "PreferredAuthentications=password",
            "-o", "PubkeyAuthentication=no", "-o", f"ControlPath={control}"]
    master = subprocess.Popen(["sshpass", "-e", *base, "-o", "ControlMaster=yes", "-N", "root@127.0.0.1"], env=env)
    try:
        wait_for(lambda: os.path.exists(control), timeout=30, what="the master connection")
        # Ten shells that wait for input hold ten channels.
        sessions = [subprocess.Popen([*base, "-T", "-o", "ControlMaster=no", "root@127.0.0.1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(10)]
        time.sleep(3)
        extra = subprocess.run([*base, "-o", "ControlMaster=no", "root@127.0.0.1", "echo eleventh"],
                               capture_output=True, text=True, timeout=30)
        assert "eleventh" not in extra.stdout and extra.returncode != 0, extra
        for s in sessions:
            s.kill()
    finally:
        master.kill()
