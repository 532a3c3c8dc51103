"""Lattice behind Caddy (Debian's) holding the TLS certificate for `<public-host>` and
`*.<public-host>` from its internal CA (`tls internal`), as docs/operations.md ("TLS") sets it up: the API
and each instance's gateway name answer over https through the proxy, and the links
tenants are given say so."""
import shutil
import socket
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None or shutil.which("curl") is None,
                                reason="needs Debian's caddy and curl (scripts/test.sh installs them)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_caddy_with_its_internal_ca_fronts_the_api_and_the_gateway(make_server, tmp_path):
    https = free_port()
    # A public host of two labels: clients refuse a wildcard straight under one (`*.localhost`).
    public = "gpu.test"
    server = make_server(args=("--simulated-delay-scale", "0.1", "--public-scheme", "https",
                               "--public-gateway-port", str(https), "--public-host", public))
    upstream = server.url.removeprefix("http://")
    storage = tmp_path / "caddy"
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(f"""{{
    admin off
    http_port {free_port()}
    https_port {https}
    storage file_system {storage}
    local_certs
    skip_install_trust
}}
{public} {{
    tls internal
    reverse_proxy {upstream}
}}
*.{public} {{
    tls internal
    reverse_proxy {upstream} {{
        transport http {{
            keepalive off
        }}
    }}
}}
""")
    log = open(tmp_path / "caddy.log", "wb")
    proc = subprocess.Popen(["caddy", "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                            stdout=log, stderr=log, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    root = storage / "pki/authorities/local/root.crt"

    def curl(host, path, token=None):
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", str(root),
                "--resolve", f"{host}:{https}:127.0.0.1", f"https://{host}:{https}{path}"]
        if token:
            args += ["-H", f"Authorization: bearer {token}"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
        body, _, code = out.stdout.rpartition("\n")
        return int(code or 0), body, out.stderr

    try:
        user = server.new_user()
        deadline = time.time() + 30
        while time.time() < deadline:
            if root.exists() and curl(public, "/healthz")[0] == 200:
                break
            time.sleep(0.3)
        code, body, err = curl(public, "/healthz")
        assert code == 200 and '"ok"' in body, (code, body, err, (tmp_path / "caddy.log").read_text()[-2000:])
        assert curl(public, "/mdc/api/v1/regions", token=user.token)[0] == 200
        instance = user.wait_status(user.create().json()["name"], "Running")
        link = instance["servers"]["Jupyterlab"]
        host = f"{instance['uid']}.{public}"
        assert link.startswith(f"https://{host}:{https}/jupyter?token="), link
        # Through the proxy to the gateway, which knows the instance by the Host Caddy
        # passed on (the simulated fleet runs no Jupyter: the gateway's own page says so).
        # JupyterLab is behind the instance's token: the link sets the gateway's cookie
        # (303 to itself), and an Authorization header with the token passes at once.
        token = link.split("token=")[1]
        code, body, err = curl(host, link.split(f":{https}", 1)[1])
        assert code == 303, (code, body, err)
        code, body, err = curl(host, "/jupyter", token=token)
        assert code == 502 and instance["name"] in body, (code, body, err)
        # A second instance right after, through the same proxy: its own page, never the
        # first one's (the proxy opens a connection per request to the gateway).
        other = user.wait_status(user.create().json()["name"], "Running")
        other_token = other["servers"]["Jupyterlab"].split("token=")[1]
        code, body, err = curl(f"{other['uid']}.{public}", "/jupyter", token=other_token)
        assert code == 502 and other["name"] in body and instance["name"] not in body, (code, body, err)
        assert curl(public, "/mdc/api/v1/regions", token=user.token)[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
