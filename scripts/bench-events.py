#!/usr/bin/env python3
"""Events benchmark (a script that prints figures, never a timed test), SPEC §13.

A release `lattice serve` on a generated catalog of simulated nodes with zero delays:

1. Latency: one SSE client follows the namespace's stream while WRITES creates are sent
   one after another; for each create, the time from sending it to its `instance.created`
   arriving on the stream (an upper bound of commit-to-event: the commit is inside that
   span), and from its answer arriving to the event arriving (negative when the event came
   first). Prints p50/p99/max.
2. Idle cost: the server's CPU over IDLE seconds with no stream open, then with STREAMS
   open streams (raw sockets that read their heartbeats), then with none again (its
   instances are metered throughout), as shares of one core; the streams' own cost (their
   figure less the mean of the two around it) and the server's RSS.

    scripts/bench-events.py [--writes 1000] [--streams 1000] [--idle 60] [--database-url postgres://...]
"""
import argparse
import http.client
import json
import os
import pathlib
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "bench-events-token-0123456789"


def catalog(nodes, gpus):
    lines = ["regions:", "  - id: bench-region", "    name: bench", "    harborAddr: images.bench.local",
             "    clusters:", "      - name: bench", "        driver: simulated", "        startDelaySeconds: 0",
             "        stopDelaySeconds: 0", "        nodes:"]
    for i in range(nodes):
        lines.append(f"          - {{name: n{i:05d}, gpuModel: 4090, gpuCount: {gpus}, cpuCores: {gpus * 16}, "
                     f"memoryGiB: {gpus * 128}}}")
    lines += ["gpuSkus:",
              '  - {id: "g1", name: "4090", regionID: bench-region, clusterName: bench, gpuModel: "4090", gpuCount: 1, '
              'cpuCores: 16, memoryGiB: 128, sellingType: 1, price: "1"}',
              "diskSkus:", '  - {id: "1", type: shared-filesystem, pricePerGBDay: "0.01"}',
              "images:", "  - name: images.bench.local/matrixdc/ubuntu:22.04"]
    return "\n".join(lines) + "\n"


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def open_stream(host, port):
    """A raw SSE connection that has read its response head; returns the socket."""
    sock = socket.create_connection((host, port))
    sock.sendall((f"GET /mdc/api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: bearer {TOKEN}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("stream closed before its head")
        head += chunk
    assert b" 200 " in head.split(b"\r\n", 1)[0], head[:200]
    return sock


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--database-url")
    parser.add_argument("--bin")
    args = parser.parse_args()

    if not args.bin:
        subprocess.run(["swift", "build", "-c", "release", "--product", "lattice"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        binpath = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()
        args.bin = os.path.join(binpath, "lattice")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = pathlib.Path(tempfile.mkdtemp(prefix="lattice-bench-events-"))
    (work / "catalog.yaml").write_text(catalog(max(1, args.writes // 8 + 1), 8))
    command = [args.bin, "serve", "--port", "0", "--data-dir", str(work / "state"), "--catalog",
               str(work / "catalog.yaml"), "--rate-limit-per-token", "0", "--rate-limit-per-address", "0",
               "--max-connections-per-address", "0", "--ssh-gateway-port", "0", "--ssh-ports", "1024-65535",
               "--http-gateway-port", "0", "--log-level", "warning"]
    if args.database_url:
        command += ["--database-url", args.database_url]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=open(work / "stderr", "wb"), text=True,
                              env={**os.environ, "LATTICE_BOOTSTRAP_TOKEN": TOKEN})
    try:
        url = None
        for line in server.stdout:
            if line.startswith("listening on "):
                url = line.split("listening on ", 1)[1].strip()
                break
        parsed = urllib.parse.urlparse(url)
        host, port = parsed.hostname, parsed.port
        headers = {"Authorization": f"bearer {TOKEN}", "namespace": "admin", "Content-Type": "application/json"}
        api = http.client.HTTPConnection(host, port)

        def call(method, path, body=None):
            api.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = api.getresponse()
            data = response.read()
            assert response.status == 200, (response.status, data[:300])
            return json.loads(data)

        call("POST", "/mdc/api/v1/admin/users/admin/credit", {"amount": "100000000"})
        print(f"store: {'PostgreSQL' if args.database_url else 'SQLite'}; machine: {os.cpu_count()} cores; "
              f"writes: {args.writes}; streams: {args.streams}")

        # 1. Latency.
        arrived = {}
        stream = open_stream(host, port)

        def read():
            pending = b""
            while True:
                try:
                    chunk = stream.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                now = time.perf_counter()
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        if event["type"] == "instance.created":
                            arrived[event["instance"]] = now

        threading.Thread(target=read, daemon=True).start()
        body = {"Cost": {"CostType": "1", "DiskSKUID": "1", "GPUSKUID": "g1"}, "VolumeMount": [{"Size": 50}],
                "namespace": "admin", "displayName": "bench", "image": "images.bench.local/matrixdc/ubuntu:22.04"}
        sent, answered = {}, {}
        for _ in range(args.writes):
            start = time.perf_counter()
            name = call("POST", "/mdc/api/v1/clusters/bench/instances", body)["name"]
            sent[name], answered[name] = start, time.perf_counter()
        deadline = time.time() + 30
        while len(arrived) < len(sent) and time.time() < deadline:
            time.sleep(0.05)
        missing = [n for n in sent if n not in arrived]
        from_send = [(arrived[n] - sent[n]) * 1000 for n in sent if n in arrived]
        from_answer = [(arrived[n] - answered[n]) * 1000 for n in sent if n in arrived]
        print(f"events received: {len(from_send)} of {len(sent)}{' (missing ' + str(len(missing)) + ')' if missing else ''}")
        print(f"create sent -> event at the client (bounds commit -> event), ms: p50 {statistics.median(from_send):.2f}"
              f"  p99 {percentile(from_send, 99):.2f}  max {max(from_send):.2f}")
        print(f"create answered -> event at the client, ms: p50 {statistics.median(from_answer):.2f}"
              f"  p99 {percentile(from_answer, 99):.2f}  max {max(from_answer):.2f}  "
              f"(event first in {sum(1 for v in from_answer if v < 0)} of {len(from_answer)})")
        stream.close()

        # 2. Idle cost of open streams: the server's CPU with no stream open, then with STREAMS
        # open, then with none again, each over IDLE seconds (the meter still charges the
        # instances just made, in all three), after 15 s for the instances to settle. The
        # streams' own cost is their figure less the mean of the two around it.
        time.sleep(15)

        def idle_share():
            before, started = cpu_seconds(server.pid), time.time()
            time.sleep(args.idle)
            return (cpu_seconds(server.pid) - before) / (time.time() - started)

        first = idle_share()
        print(f"no open stream, {args.idle:.0f} s idle: server CPU {100 * first:.2f} % of one core")
        sockets = [open_stream(host, port) for _ in range(args.streams)]
        selector = selectors.DefaultSelector()
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        time.sleep(2)
        before, started = cpu_seconds(server.pid), time.time()
        heartbeats = 0
        while time.time() - started < args.idle:
            for key, _ in selector.select(timeout=1):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                heartbeats += data.count(b": heartbeat")
        used = (cpu_seconds(server.pid) - before) / (time.time() - started)
        print(f"{args.streams} open streams, {args.idle:.0f} s idle: server CPU {100 * used:.2f} % of one core; "
              f"heartbeats received {heartbeats}; RSS {rss_mb(server.pid):.0f} MB")
        for sock in sockets:
            sock.close()
        time.sleep(2)
        second = idle_share()
        print(f"no open stream again, {args.idle:.0f} s idle: server CPU {100 * second:.2f} % of one core")
        print(f"the streams' own cost: {100 * (used - (first + second) / 2):.2f} % of one core")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
