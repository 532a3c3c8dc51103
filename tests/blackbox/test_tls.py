"""`--tls-cert` and `--tls-key` (docs/operations.md, "TLS"): the API, the console and the HTTP
gateway (on the API's port and on a port of its own) over TLS with a certificate the test
makes, links that say https, and clear refusals of a bad pair of files."""
import pathlib
import shutil
import socket
import subprocess

import pytest
import requests

from conftest import lattice_binary

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    # Every request of the harness trusts this certificate, and only it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    return cert, key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_api_console_and_gateway_speak_tls(make_server, certificate):
    cert, key = certificate
    server = make_server(args=("--simulated-delay-scale", "0.1", "--tls-cert", str(cert), "--tls-key", str(key)))
    assert server.url.startswith("https://127.0.0.1:")
    assert requests.get(server.url + "/healthz", timeout=5).json()["status"] == "ok"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url.replace("https://", "http://") + "/healthz", timeout=5)
    user = server.new_user()
    name = user.create().json()["name"]
    instance = user.wait_status(name, "Running")
    port = server.url.rsplit(":", 1)[1]
    link = instance["servers"]["Jupyterlab"]
    assert link.startswith(f"https://{instance['uid']}.localhost:{port}/jupyter?token="), link
    # The gateway on the API's port, by Host, inside TLS: it finds the instance and says
    # that nothing serves Jupyter there (the simulated fleet runs no Jupyter).
    token = link.split("token=")[1]
    r = requests.get(f"{server.url}/jupyter", timeout=10,
                     headers={"Host": f"{instance['uid']}.localhost:{port}", "Authorization": f"token {token}"})
    assert r.status_code == 502 and "on port 8888 of" in r.text
    assert requests.get(server.url + "/console/login", timeout=5).status_code == 200


def test_the_gateways_own_port_speaks_tls_too(make_server, certificate):
    cert, key = certificate
    gateway = free_port()
    server = make_server(args=("--simulated-delay-scale", "0.1", "--tls-cert", str(cert), "--tls-key", str(key),
                               "--http-gateway-port", str(gateway)))
    user = server.new_user()
    instance = user.wait_status(user.create().json()["name"], "Running")
    assert instance["servers"]["Tensorboard"].startswith(f"https://{instance['uid']}.localhost:{gateway}/monitor")
    r = requests.get(f"https://127.0.0.1:{gateway}/monitor?token={instance['servers']['SSH']['sshPassword']}x",
                     headers={"Host": f"{instance['uid']}.localhost"}, timeout=10)
    assert r.status_code in (401, 403), r.status_code
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{gateway}/", headers={"Host": f"{instance['uid']}.localhost"}, timeout=5)


def test_a_bad_pair_of_files_is_refused_at_start(tmp_path, certificate):
    cert, key = certificate

    def serve(*args):
        return subprocess.run([lattice_binary(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d"), *args],
                              capture_output=True, text=True, timeout=60)

    out = serve("--tls-cert", str(cert))
    assert out.returncode == 2 and "--tls-cert and --tls-key go together" in out.stderr
    out = serve("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key))
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = serve("--tls-cert", str(key), "--tls-key", str(key))
    assert out.returncode != 0 and "InvalidTLS" in out.stderr + out.stdout, out.stderr


def test_behind_a_tls_front_proxy_links_say_https_and_its_port(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--public-scheme", "https",
                               "--public-gateway-port", "443"))
    user = server.new_user()
    instance = user.wait_status(user.create().json()["name"], "Running")
    assert instance["servers"]["Jupyterlab"].startswith(f"https://{instance['uid']}.localhost/jupyter?token=")
    # The gateway itself still serves plain HTTP on the API's port, for the proxy.
    token = instance["servers"]["Jupyterlab"].split("token=")[1]
    r = requests.get(f"{server.url}/jupyter", timeout=10,
                     headers={"Host": f"{instance['uid']}.localhost", "Authorization": f"token {token}"})
    assert r.status_code == 502


def served_fingerprint(url):
    import hashlib
    import ssl
    host, port = url.removeprefix("https://").split(":")
    pem = ssl.get_server_certificate((host, int(port)))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def test_sighup_takes_a_renewed_certificate_and_refuses_a_broken_one(make_server, certificate, tmp_path):
    import signal
    import time
    cert, key = certificate
    live_cert, live_key = tmp_path / "live-cert.pem", tmp_path / "live-key.pem"
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    server = make_server(args=("--tls-cert", str(live_cert), "--tls-key", str(live_key)))
    first = served_fingerprint(server.url)
    # A renewed certificate (a new key as well), then SIGHUP: new connections get it.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(live_key), "-out", str(live_cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while served_fingerprint(server.url) == first and time.time() < deadline:
        time.sleep(0.1)
    second = served_fingerprint(server.url)
    assert second != first, "the renewed certificate is served after SIGHUP"
    # A broken file: refused, the one in use stays, the server serves on.
    live_cert.write_text("not a certificate\n")
    server.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert server.proc.poll() is None, "SIGHUP never ends the server"
    assert served_fingerprint(server.url) == second
    log = pathlib.Path(server.log.name).read_text(errors="replace")
    assert "SIGHUP: reloaded" in log and "SIGHUP: reload refused; the one in use stays" in log


def test_sighup_without_tls_changes_nothing_and_ends_nothing(make_server):
    import signal
    import time
    server = make_server()
    server.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert server.proc.poll() is None
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    assert "SIGHUP: nothing to reload" in pathlib.Path(server.log.name).read_text(errors="replace")
