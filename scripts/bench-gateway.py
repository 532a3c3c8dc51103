#!/usr/bin/env python3
"""The SSH gateway's cost per connection: memory and descriptors of N idle connections
that have not signed in, then of N signed-in idle sessions (OpenSSH clients with -N), and
the CPU the server spends while they sit there.

    swift build -c release --product lattice
    python3 scripts/bench-gateway.py [--bin .build/release/lattice] [--connections 500] [--sessions 100]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKEN = "bootstrap-admin-token-for-bench"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call(url, path, body=None, token=TOKEN, namespace="admin"):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"bearer {token}", "namespace": namespace,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/lattice")
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=100)
    args = parser.parse_args()
    data = tempfile.mkdtemp()
    ssh_port = 42222
    server = subprocess.Popen([args.bin, "serve", "--port", "0", "--data-dir", data, "--ssh-gateway-port",
                               str(ssh_port), "--simulated-delay-scale", "0.05", "--ssh-ports", "43000-43099",
                               "--max-connections-per-address", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "LATTICE_BOOTSTRAP_TOKEN": TOKEN})
    url = None
    for line in server.stdout:
        if line.startswith("listening on "):
            url = line.split()[-1]
            break
    try:
        user = call(url, "/mdc/api/v1/admin/users", {"namespace": "bench", "balance": "1000"})
        body = {"Cost": {"CostType": "1", "DiskSKUID": "1", "GPUSKUID": "66"},
                "VolumeMount": [{"PathInContainer": "/root/data", "Size": 50}], "namespace": "bench",
                "displayName": "bench",
                "image": "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"}
        name = call(url, "/mdc/api/v1/clusters/host-cluster/instances", body, user["token"], "bench")["name"]
        while True:
            instance = call(url, f"/mdc/api/v1/clusters/host-cluster/instances/{name}", None, user["token"], "bench")
            if instance["status"] == "Running":
                break
            time.sleep(0.1)
        password = instance["servers"]["SSH"]["sshPassword"]
        time.sleep(1)
        base_rss, base_fds = rss_kib(server.pid), fds(server.pid)
        held = [socket.create_connection(("127.0.0.1", ssh_port)) for _ in range(args.connections)]
        time.sleep(2)
        rss, open_fds = rss_kib(server.pid), fds(server.pid)
        before = cpu_seconds(server.pid)
        time.sleep(10)
        idle_cpu = cpu_seconds(server.pid) - before
        print(f"{args.connections} connections signing in: +{(rss - base_rss) / args.connections:.1f} KiB and "
              f"{(open_fds - base_fds) / args.connections:.2f} descriptors each, "
              f"{idle_cpu / 10 * 100:.2f} % of a core while idle")
        for s in held:
            s.close()
        time.sleep(2)
        base_rss, base_fds = rss_kib(server.pid), fds(server.pid)
        env = {**os.environ, "SSHPASS": password}
        clients = [subprocess.Popen(["sshpass", "-e", "ssh", "-o", "StrictHostKeyChecking=no", "-o",
                                     "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-N", "-p", str(ssh_port),
                                     "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                                     f"{name}@127.0.0.1"], env=env) for _ in range(args.sessions)]
        deadline = time.time() + 120
        while time.time() < deadline:
            report = json.load(urllib.request.urlopen(url + "/readyz", timeout=10))["sshListeners"]
            if report["sessions"] >= args.sessions:
                break
            time.sleep(0.5)
        time.sleep(2)
        rss, open_fds = rss_kib(server.pid), fds(server.pid)
        before = cpu_seconds(server.pid)
        time.sleep(10)
        idle_cpu = cpu_seconds(server.pid) - before
        print(f"{report['sessions']} signed-in idle sessions: +{(rss - base_rss) / args.sessions:.1f} KiB and "
              f"{(open_fds - base_fds) / args.sessions:.2f} descriptors each, "
              f"{idle_cpu / 10 * 100:.2f} % of a core while idle")
        for c in clients:
            c.kill()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
