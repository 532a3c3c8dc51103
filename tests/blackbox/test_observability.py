"""SPEC §10 against the running server: the version, request ids, one JSON log line per
request without secrets, and /metrics scraped by a real Prometheus server (Debian's)."""
import pathlib
import re
import shutil
import socket
import subprocess
import time

import pytest
import requests

from conftest import ROOT, json_lines, lattice_binary, wait_for

# Every series SPEC §10 names.
SERIES = ("lattice_http_requests_total", "lattice_http_request_duration_seconds_bucket", "lattice_instances",
          "lattice_gpus", "lattice_reconcile_queue_depth", "lattice_reconcile_duration_seconds_bucket",
          "lattice_gateway_sessions", "lattice_build_info")


def request_lines(server):
    return [e for e in json_lines(pathlib.Path(server.log.name).read_text(errors="replace"))
            if e.get("message") == "request"]


def test_the_version_is_on_the_command_line_and_on_healthz(server):
    version = subprocess.run([lattice_binary(), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok", "version": version}


def test_every_answer_has_a_request_id_and_one_json_log_line(server):
    user = server.new_user()
    r = requests.get(server.url + "/mdc/api/v1/regions", timeout=5,
                     headers={**user.headers(), "X-Request-Id": "blackbox-trace-1"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "blackbox-trace-1"
    generated = user.get("/clusters/host-cluster/instances/instance-0000dead").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # A wrong token is logged as a 401 in no namespace, and the token never appears.
    wrong = "lat_" + "x" * 40
    r = requests.get(server.url + "/mdc/api/v1/regions", headers={"Authorization": f"bearer {wrong}"}, timeout=5)
    assert r.status_code == 401
    failed_id = r.headers["X-Request-Id"]

    def logged():
        lines = {e.get("requestId"): e for e in request_lines(server)}
        return lines if {"blackbox-trace-1", generated, failed_id} <= lines.keys() else None

    lines = wait_for(logged, timeout=10, what="the request log lines")
    first = lines["blackbox-trace-1"]
    assert (first["method"], first["route"], first["status"], first["namespace"]) == \
        ("GET", "/mdc/api/v1/regions", "200", user.namespace)
    assert first["remoteAddress"] == "127.0.0.1" and float(first["durationMs"]) >= 0 and first["time"]
    missing = lines[generated]
    assert missing["status"] == "404" and "instance-0000dead" not in missing["route"]
    assert lines[failed_id]["status"] == "401" and lines[failed_id]["namespace"] == ""
    log = pathlib.Path(server.log.name).read_text(errors="replace")
    assert user.token not in log and wrong not in log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prometheus_scrapes_every_series_and_loads_the_alert_rules(server, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (scripts/test.sh installs it)")
    user = server.new_user()
    assert user.create().status_code == 200
    target = server.url.removeprefix("http://")
    rules = ROOT / "deploy/prometheus/lattice-alerts.yml"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{rules}']\n"
        f"scrape_configs: [{{job_name: lattice, static_configs: [{{targets: ['{target}']}}]}}]\n")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        def names():
            try:
                r = requests.get(api + "/label/__name__/values", timeout=2)
            except requests.RequestException:
                return None
            found = set(r.json().get("data", [])) if r.status_code == 200 else set()
            return found if set(SERIES) <= found else None

        wait_for(names, timeout=60, what="Prometheus to have scraped every series")
        build = requests.get(api + "/query", params={"query": "lattice_build_info"}, timeout=5).json()
        version = requests.get(server.url + "/healthz", timeout=5).json()["version"]
        assert [s["metric"]["version"] for s in build["data"]["result"]] == [version]
        up = requests.get(api + "/query", params={"query": 'up{job="lattice"}'}, timeout=5).json()
        assert [s["value"][1] for s in up["data"]["result"]] == ["1"]
        # The route label is a template: no instance name is ever a label value.
        routes = requests.get(api + "/label/route/values", timeout=5).json()["data"]
        assert "/mdc/api/v1/admin/users" in routes and not any("instance-" in r for r in routes), routes

        def evaluated():
            groups = requests.get(api + "/rules", timeout=5).json()["data"]["groups"]
            loaded = [r for g in groups for r in g["rules"]]
            return loaded if loaded and all(r.get("health") == "ok" for r in loaded) else None

        loaded = wait_for(evaluated, timeout=30, what="the alert rules to evaluate")
        assert {r["name"] for r in loaded} >= {"LatticeDown", "LatticeReconcileBacklog", "LatticeServerErrors"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_dashboard_and_the_rules_name_only_series_the_server_serves(server):
    requests.get(server.url + "/healthz", timeout=5)
    served = requests.get(server.url + "/metrics", timeout=5).text
    names = {line.split("{")[0].split(" ")[0] for line in served.splitlines() if line and not line.startswith("#")}
    names |= {n.rsplit("_bucket", 1)[0] for n in names if n.endswith("_bucket")}
    import json
    dashboard = json.loads((ROOT / "deploy/grafana/lattice.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += re.findall(r"expr: (.+)", (ROOT / "deploy/prometheus/lattice-alerts.yml").read_text())
    used = {m for e in exprs for m in re.findall(r"\b(lattice_[a-z_]+)", e)}
    assert used and used <= names, used - names
