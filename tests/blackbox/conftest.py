"""Black-box harness: starts the built `lattice serve` binary on a free port with its own
data directory, and gives tests a small client for it."""
import json
import os
import pathlib
import queue
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOOTSTRAP_TOKEN = "bootstrap-admin-token-for-tests"


def lattice_binary():
    path = os.environ.get("LATTICE_BIN")
    if path:
        return path
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return str(pathlib.Path(out.stdout.strip()) / "lattice")


class Server:
    """One `lattice serve` process. `restart()` keeps the data directory."""

    def __init__(self, data_dir, args=(), env=None, open_files=None):
        self.data_dir = pathlib.Path(data_dir)
        self.args = list(args)
        self.open_files = open_files
        self.env = {**os.environ, "LATTICE_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN, **(env or {})}
        self.proc = None
        self.url = None
        self.stdout_lines = []
        # A command the server runs under (`ip netns exec NAME`), for tests that make hosts.
        self.wrapper = []

    def start(self, timeout=60):
        cmd = self.wrapper + [lattice_binary(), "serve", "--port", "0", "--data-dir", str(self.data_dir)] + self.args
        self.log = open(self.data_dir.parent / f"{self.data_dir.name}.stderr.log", "ab")
        limit = self.open_files

        def preexec():
            if limit:
                import resource
                # A number sets the soft limit (the server raises it to the hard one); a pair
                # (soft, hard) sets both, as `prlimit --nofile=N` does.
                soft, hard = limit if isinstance(limit, tuple) else (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=self.env,
                                     preexec_fn=preexec)
        # stdout is read by a thread, so a server that prints nothing never hangs the suite.
        self.lines = queue.Queue()
        self.run_lines = []
        self.pump = threading.Thread(target=self._pump, args=(self.proc, self.lines), daemon=True)
        self.pump.start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"lattice exited early with {self.proc.wait()}; see {self.log.name}")
            self.stdout_lines.append(line)
            self.run_lines.append(line)
            if line.startswith("listening on "):
                self.url = line.split("listening on ", 1)[1].strip()
                return self
        self.proc.kill()
        raise RuntimeError("lattice did not print 'listening on' in time")

    @staticmethod
    def _pump(proc, lines):
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def drain_output(self):
        """Lines printed since the last look, without blocking."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.stdout_lines.append(line)
                self.run_lines.append(line)

    def terminate(self, timeout):
        """SIGTERM and wait up to `timeout` seconds, never killing: the exit status, or
        None if the process is still running."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.pump.join(timeout=5)
        self.drain_output()
        self.proc = None
        return code

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.pump.join(timeout=5)
            self.drain_output()
        self.proc = None

    def kill9(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def client(self, token=BOOTSTRAP_TOKEN, namespace="admin"):
        return Client(self.url, token, namespace)

    def new_user(self, namespace=None, balance="1000", admin=False):
        namespace = namespace or "u" + uuid.uuid4().hex[:10]
        r = self.client().post("/admin/users", {"namespace": namespace, "balance": balance, "admin": admin})
        assert r.status_code == 200, r.text
        return Client(self.url, r.json()["token"], namespace)


class Client:
    """Sends authenticated requests the way the seed's examples do."""

    def __init__(self, url, token, namespace):
        self.url = url
        self.token = token
        self.namespace = namespace

    def headers(self, namespace=True, extra=None):
        h = {"Authorization": f"bearer {self.token}"}
        if namespace:
            h["namespace"] = self.namespace
        h.update(extra or {})
        return h

    def get(self, path, **kw):
        return requests.get(self.url + "/mdc/api/v1" + path, headers=self.headers(), timeout=30, **kw)

    def post(self, path, body=None, headers=None, **kw):
        return requests.post(self.url + "/mdc/api/v1" + path, json=body, headers=self.headers(extra=headers), timeout=30,
                             **kw)

    def put(self, path, body=None, **kw):
        return requests.put(self.url + "/mdc/api/v1" + path, json=body, headers=self.headers(), timeout=30, **kw)

    def delete(self, path, **kw):
        return requests.delete(self.url + "/mdc/api/v1" + path, headers=self.headers(), timeout=30, **kw)

    def create_body(self, sku="66", display_name="test1", size=50, cost_type="1", cost_time="", image=None):
        return {
            "Cost": {"CostType": cost_type, "CouponID": "", "DiskSKUID": "1", "GPUSKUID": sku, "CostTime": cost_time},
            "VolumeMount": [{"PathInContainer": "/root/data", "Size": size, "Type": "shared-filesystem"}],
            "namespace": self.namespace,
            "displayName": display_name,
            "image": image or "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
            "Region": "",
        }

    def create(self, cluster="host-cluster", **kw):
        return self.post(f"/clusters/{cluster}/instances", self.create_body(**kw))

    def instance(self, name, cluster="host-cluster"):
        return self.get(f"/clusters/{cluster}/instances/{name}")

    def wait_status(self, name, status, cluster="host-cluster", timeout=30):
        deadline = time.time() + timeout
        last = reason = None
        while time.time() < deadline:
            r = self.instance(name, cluster)
            if status is None and r.status_code == 404:
                return None
            if r.status_code == 200:
                last, reason = r.json()["status"], r.json().get("statusReason")
                if last == status:
                    return r.json()
            time.sleep(0.1)
        raise AssertionError(f"{name} did not reach {status}; last {last}: {reason}")

    def remain(self, sku):
        skus = self.get("/skus/computings").json()
        return next(s["remainGPUCount"] for s in skus if s["skusID"] == sku)


def store_column(server, sql):
    """The first column of every row `sql` selects in the server's store (SQLite file or
    PostgreSQL database), as text; `sql` writes when it selects nothing."""
    if "--database-url" in server.args:
        url = server.args[server.args.index("--database-url") + 1]
        out = subprocess.run(["psql", "-qAt", url, "-c", sql], check=True, capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line]
    import sqlite3
    db = sqlite3.connect(server.data_dir / "lattice.sqlite")
    rows = [str(row[0]) for row in db.execute(sql)]
    db.commit()
    db.close()
    return rows


def new_database():
    """A fresh, empty database on the test PostgreSQL server (LATTICE_TEST_DATABASE_URL),
    as a URL for `--database-url`."""
    base = os.environ["LATTICE_TEST_DATABASE_URL"]
    name = "lattice_bb_" + uuid.uuid4().hex
    subprocess.run(["psql", "-q", base, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    prefix, _, query = base.partition("?")
    return prefix.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


# LATTICE_BLACKBOX_STORE=postgres runs every server of the suite on a database of its own
# on the test PostgreSQL server instead of SQLite in its data directory.
ON_POSTGRES = os.environ.get("LATTICE_BLACKBOX_STORE") == "postgres"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.call_failed = report.failed


@pytest.fixture
def make_server(tmp_path, request):
    servers = []

    def make(args=("--simulated-delay-scale", "0.1"), env=None, name="data", open_files=None):
        if ON_POSTGRES and "--database-url" not in args:
            args = list(args) + ["--database-url", new_database()]
        server = Server(tmp_path / name, args, env, open_files)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
    # A failed test shows the end of each of its servers' logs (CI keeps nothing else).
    if getattr(request.node, "call_failed", False):
        for server in servers:
            tail = pathlib.Path(server.log.name).read_text(errors="replace").splitlines()[-60:]
            print(f"\n--- last lines of {server.log.name} ---\n" + "\n".join(tail))


@pytest.fixture
def server(make_server):
    return make_server()


def wait_for(condition, timeout=60, interval=0.1, what=None):
    """Polls `condition` until it is true and returns what it returned; fails naming `what`
    after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def json_lines(text):
    """The JSON objects among a server's log lines (`--log-format json`, the default)."""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def write_catalog(tmp_path, text):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return str(path)


SMALL_CATALOG = """
regions:
  - id: r1
    name: test-region
    harborAddr: images.test.local
    clusters:
      - name: small
        driver: simulated
        startDelaySeconds: 0.2
        stopDelaySeconds: 0.2
        nodes:
          - {name: t4-a, gpuModel: T4, gpuCount: 4, cpuCores: 64, memoryGiB: 256}
gpuSkus:
  - {id: "t4", name: T4, regionID: r1, clusterName: small, gpuModel: T4, gpuCount: 1, cpuCores: 8, memoryGiB: 32, sellingType: 1, price: "1.20"}
  - {id: "t4x2", name: T4, regionID: r1, clusterName: small, gpuModel: T4, gpuCount: 2, cpuCores: 16, memoryGiB: 64, sellingType: 1, price: "2.40"}
diskSkus:
  - {id: "1", type: shared-filesystem, pricePerGBDay: "0.01"}
images:
  - name: images.test.local/matrixdc/ubuntu:22.04
"""


# A CI run must not pass by skipping: with CI set, any skipped test fails the session.
_skipped = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI") and _skipped:
        print(f"\nCI is set and {len(_skipped)} test(s) were skipped (see the skip reasons above):")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1
