"""The SSH and HTTP gateways with real clients: OpenSSH's `ssh` (with `sshpass` for
passwords and `ssh-keygen` for keys), `pexpect` for an interactive terminal, and plain
HTTP and WebSocket requests. On the simulated fleet here; into real Podman containers in
test_engine_gateways below when an engine is configured."""
import hashlib
import os
import random
import shutil
import socket
import subprocess
import time

import pytest
import requests

from conftest import BOOTSTRAP_TOKEN, wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("sshpass") and shutil.which("ssh-keygen")),
                                reason="needs openssh-client and sshpass")

SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "ConnectTimeout=10"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(width=20):
    """A run of ports nothing listens on, for --ssh-ports."""
    for _ in range(50):
        base = random.randrange(40000, 60000)
        try:
            for port in range(base, base + width):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return f"{base}-{base + width - 1}"
        except OSError:
            continue
    raise RuntimeError("no free port range")


def gateway_server(make_server, *extra):
    shared = free_port()
    server = make_server(args=("--simulated-delay-scale", "0.1", "--ssh-gateway-port", str(shared),
                               "--ssh-ports", free_port_range(), *extra))
    server.ssh_shared_port = shared
    return server


def ssh(port, login, command=None, password=None, key=None, extra=(), stdin=None, timeout=60):
    """Runs OpenSSH's client; returns the CompletedProcess."""
    args = ["ssh", *SSH_OPTIONS, "-p", str(port)]
    if key:
        args += ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                 "-o", "PreferredAuthentications=publickey"]
    else:
        args += ["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"]
    args += [*extra, f"{login}@127.0.0.1"]
    if command is not None:
        args.append(command)
    env = dict(os.environ)
    if password is not None:
        args = ["sshpass", "-e", *args]
        env["SSHPASS"] = password
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, input=stdin)


def running_instance(user, cluster="host-cluster", **kw):
    r = user.post(f"/clusters/{cluster}/instances", user.create_body(**kw))
    assert r.status_code == 200, r.text
    return user.wait_status(r.json()["name"], "Running", cluster=cluster, timeout=120)


def ssh_port(instance):
    addr = instance["servers"]["SSH"]["sshAddr"]
    assert addr.startswith("ssh -p") and addr.endswith(" root@localhost"), addr
    return int(addr.split()[1][2:])


def make_key(tmp_path, name, kind="ed25519"):
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def test_both_forms_run_commands_on_the_simulated_fleet(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    name, password = instance["name"], instance["servers"]["SSH"]["sshPassword"]
    port = ssh_port(instance)

    # The seed's form: the instance's own port, login root.
    out = ssh(port, "root", "echo hi", password=password)
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert ssh(port, "root", "exit 3", password=password).returncode == 3
    # The shared port: the login name picks the instance.
    out = ssh(server.ssh_shared_port, name, "hostname; nvidia-smi", password=password)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == name
    assert "4090" in out.stdout, out.stdout
    # env requests reach the session
    out = ssh(port, "root", "echo $LATTICE_TEST_VAR", password=password, extra=("-o", "SetEnv=LATTICE_TEST_VAR=passed"))
    assert out.stdout == "passed\n", out.stderr


def test_refusals_look_alike_and_keys_belong_to_a_namespace(make_server, tmp_path):
    server = gateway_server(make_server)
    alice, bob = server.new_user(), server.new_user()
    instance = running_instance(alice)
    name, port = instance["name"], ssh_port(instance)
    alice_key, bob_key = make_key(tmp_path, "alice"), make_key(tmp_path, "bob")

    r = alice.post("/ssh-keys", {"name": "laptop", "publicKey": (tmp_path / "alice.pub").read_text()})
    assert r.status_code == 200, r.text
    key = r.json()
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "alice.pub")], capture_output=True,
                                 text=True).stdout.split()[1]
    assert key["fingerprint"] == fingerprint and key["name"] == "laptop"
    assert [k["id"] for k in alice.get("/ssh-keys").json()["nodes"]] == [key["id"]]
    assert bob.get("/ssh-keys").json()["nodes"] == []
    assert bob.post("/ssh-keys", {"publicKey": (tmp_path / "bob.pub").read_text()}).status_code == 200
    # A second copy of one key in one namespace is refused; junk is a clear 400.
    r = alice.post("/ssh-keys", {"publicKey": (tmp_path / "alice.pub").read_text()})
    assert r.status_code == 409 and r.json()["code"] == "Conflict"
    r = alice.post("/ssh-keys", {"publicKey": "ssh-ed25519 not-a-key"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidField", r.text

    out = ssh(port, "root", "echo in", key=alice_key)
    assert (out.returncode, out.stdout) == (0, "in\n"), out.stderr
    out = ssh(server.ssh_shared_port, name, "echo in", key=alice_key)
    assert out.stdout == "in\n", out.stderr

    # Another tenant's key, a wrong password and an unknown instance: the same refusal.
    refusals = [
        ssh(port, "root", "true", key=bob_key),
        ssh(port, "root", "true", password="wrong-password"),
        ssh(server.ssh_shared_port, "instance-00000000", "true", password="wrong-password"),
        ssh(server.ssh_shared_port, "instance-00000000", "true", key=alice_key),
        ssh(port, "admin", "true", password=instance["servers"]["SSH"]["sshPassword"]),
    ]
    for out in refusals:
        # ssh exits 255; sshpass 5 when the password is asked for again.
        assert out.returncode in (5, 255), out
        assert "Permission denied" in out.stderr, out.stderr
        assert name not in out.stderr
    # Bob cannot remove Alice's key; once Alice removes it, it no longer opens anything.
    assert bob.delete(f"/ssh-keys/{key['id']}").status_code == 404
    assert alice.delete(f"/ssh-keys/{key['id']}").status_code == 200
    assert ssh(port, "root", "true", key=alice_key).returncode == 255


def test_a_stopped_instance_gets_one_line_after_authentication(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    name, password = instance["name"], instance["servers"]["SSH"]["sshPassword"]
    r = user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"gracePeriodSeconds": 1})
    assert r.status_code == 200, r.text
    stopped = user.wait_status(name, "Stopped")
    assert stopped["servers"]["SSH"]["sshAddr"] == ""
    out = ssh(server.ssh_shared_port, name, "echo hi", password=password)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == f"{name} is Stopped, not Running: power it on to open a session"


def test_an_interactive_shell_has_a_terminal_that_resizes(make_server):
    pexpect = pytest.importorskip("pexpect")
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    child = pexpect.spawn("sshpass", ["-e", "ssh", *SSH_OPTIONS, "-tt", "-p", str(ssh_port(instance)),
                                      "-o", "PubkeyAuthentication=no", "root@127.0.0.1"],
                          env={**os.environ, "SSHPASS": instance["servers"]["SSH"]["sshPassword"]},
                          dimensions=(24, 80), timeout=30, encoding="utf-8")
    child.expect(r"# ")
    child.sendline("stty size")
    child.expect(r"24 80")
    child.setwinsize(40, 100)
    time.sleep(0.5)
    child.sendline("stty size")
    child.expect(r"40 100")
    child.sendline("exit 5")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5


def host_key(port):
    out = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"], capture_output=True,
                         text=True, timeout=30)
    return " ".join(out.stdout.split()[1:3])


def test_the_host_key_survives_a_restart_and_is_printed(make_server, tmp_path):
    server = gateway_server(make_server)
    before = host_key(server.ssh_shared_port)
    assert before.startswith("ssh-ed25519 ")
    key_file = server.data_dir / "ssh_host_ed25519_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    (tmp_path / "scanned.pub").write_text(before + "\n")
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "scanned.pub")], capture_output=True,
                                 text=True).stdout.split()[1]
    def printed():
        server.drain_output()
        return any(fingerprint in line for line in server.stdout_lines)
    wait_for(printed, timeout=10, what=f"the fingerprint {fingerprint} on stdout")
    server.restart()
    assert host_key(server.ssh_shared_port) == before


def test_repeated_failures_from_one_address_are_slowed_down(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    port = ssh_port(instance)
    # Each ssh run makes one password attempt (NumberOfPasswordPrompts=1); the first
    # three failures are answered at once, later ones wait 0.5 s, 1 s, 2 s, ...
    times = []
    for _ in range(6):
        started = time.monotonic()
        out = ssh(port, "root", "true", password="wrong", extra=("-o", "NumberOfPasswordPrompts=1"))
        times.append(time.monotonic() - started)
        assert out.returncode in (5, 255)
    assert sum(times[4:]) >= 1.5, times
    # The right password still works (and clears the address's record).
    assert ssh(port, "root", "true", password=instance["servers"]["SSH"]["sshPassword"]).returncode == 0


def test_the_shared_form_can_be_the_one_shown(make_server):
    server = gateway_server(make_server, "--ssh-gateway-shared-form")
    user = server.new_user()
    instance = running_instance(user)
    name = instance["name"]
    assert instance["servers"]["SSH"]["sshAddr"] == f"ssh -p{server.ssh_shared_port} {name}@localhost"
    out = ssh(server.ssh_shared_port, name, "echo shared", password=instance["servers"]["SSH"]["sshPassword"])
    assert out.stdout == "shared\n", out.stderr


def test_lattice_ssh_uses_the_gateway(make_server, tmp_path):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    from conftest import lattice_binary
    env = {**os.environ, "LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_NAMESPACE": user.namespace,
           "HOME": str(tmp_path), "LATTICE_CONFIG": str(tmp_path / "config.json")}
    out = subprocess.run([lattice_binary(), "ssh", instance["name"], "--", "echo", "via", "cli"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.stdout.strip() == "via cli", out.stderr
    key = make_key(tmp_path, "cli")
    out = subprocess.run([lattice_binary(), "ssh-keys", "add", str(key) + ".pub", "--name", "cli-key"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and "cli-key" in out.stdout, out.stderr
    listed = subprocess.run([lattice_binary(), "ssh-keys", "list", "--output", "json"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert '"cli-key"' in listed.stdout, listed.stderr
    out = subprocess.run([lattice_binary(), "ssh", instance["name"], "--identity", str(key), "--", "hostname"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == instance["name"], out.stderr


def gateway_get(server, uid, path, headers=None, host=None, **kw):
    port = server.url.rsplit(":", 1)[1]
    sent = {"Host": f"{host or uid}.localhost:{port}"}
    sent.update(headers or {})
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=sent, timeout=30, **kw)


def test_the_http_gateway_shares_the_api_port_and_names_what_it_cannot_reach(make_server):
    server = gateway_server(make_server)
    user = server.new_user()
    instance = running_instance(user)
    port = server.url.rsplit(":", 1)[1]
    uid, token = instance["uid"], instance["servers"]["Jupyterlab"].split("token=")[1]
    assert instance["servers"]["Jupyterlab"] == f"http://{uid}.localhost:{port}/jupyter?token={token}"
    assert instance["servers"]["Tensorboard"] == f"http://{uid}.localhost:{port}/monitor?token={token}"
    # Tensorboard has no sign-in: the gateway asks for the instance's token, then keeps it in a cookie.
    r = gateway_get(server, uid, "/monitor/")
    assert r.status_code == 401 and "token" in r.text
    assert gateway_get(server, uid, "/monitor/?token=wrong").status_code == 401
    r = gateway_get(server, uid, f"/monitor/?x=1&token={token}", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/monitor/?x=1"
    cookie = r.headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in r.headers["Set-Cookie"] and cookie == f"lattice_monitor={token}"
    port_text = server.url.rsplit(":", 1)[1]
    r = requests.get(f"http://127.0.0.1:{port_text}/monitor/", timeout=30,
                     headers={"Host": f"{uid}.localhost:{port_text}", "Cookie": cookie})
    assert r.status_code == 502 and "port 6006" in r.text, "let through to Tensorboard's port"
    # JupyterLab too is behind the token (Jupyter reads it as well, so its link keeps it).
    r = gateway_get(server, uid, "/jupyter")
    assert r.status_code == 401 and "token" in r.text
    r = gateway_get(server, uid, f"/jupyter?token={token}", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == f"/jupyter?token={token}"
    assert r.headers["Set-Cookie"].startswith(f"lattice_jupyter={token}; Path=/jupyter")
    # Nothing listens inside a simulated workload: a page that says so, not a hang.
    r = gateway_get(server, uid, "/jupyter", headers={"Cookie": f"lattice_jupyter={token}"})
    assert r.status_code == 502 and "port 8888" in r.text and r.headers["Content-Type"].startswith("text/html")
    r = gateway_get(server, uid, "/jupyter/api", headers={"Authorization": f"token {token}"})
    assert r.status_code == 502
    assert gateway_get(server, uid, "/elsewhere").status_code == 404
    # A port the instance does not publish is not served; <uid>-<port> names the instance's ports.
    r = gateway_get(server, uid, "/", host=f"{uid}-8000")
    assert r.status_code == 404 and "does not publish port 8000" in r.text
    assert gateway_get(server, "00000000-0000-4000-8000-000000000000", "/jupyter").status_code == 404
    # The API on the same port is untouched.
    assert user.get("/balance").status_code == 200
    name = instance["name"]
    assert user.post(f"/clusters/host-cluster/instances/{name}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
    user.wait_status(name, "Stopped")
    r = gateway_get(server, uid, "/jupyter/lab", headers={"Authorization": f"token {token}"})
    assert r.status_code == 503 and f"{name} is Stopped" in r.text, r.text
    assert token not in r.text


# --- into real containers ---------------------------------------------------------

SOCKET = os.environ.get("LATTICE_TEST_ENGINE_SOCKET")
IMAGE = os.environ.get("LATTICE_TEST_IMAGE")
# The engine test's catalog: one host on the test's Podman socket.
from test_engine import CATALOG as ENGINE_CATALOG  # noqa: E402


def websocket_echo(port, host, path, message):
    """A WebSocket round trip over a raw socket: the handshake, one masked text frame out,
    the echoed frame back."""
    import base64
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert b"Sec-WebSocket-Accept: " + expected in head, head
        payload = message.encode()
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        reply = b""
        while len(reply) < 2 + len(payload):
            chunk = s.recv(4096)
            assert chunk, reply
            reply += chunk
        assert reply[0] == 0x81 and reply[1] == len(payload), reply
        return reply[2:2 + len(payload)].decode()


@pytest.mark.skipif(not (SOCKET and IMAGE and shutil.which("podman")), reason="no container engine configured")
def test_gateways_reach_into_a_real_container(make_server, tmp_path):
    import uuid
    cluster = "gw-" + uuid.uuid4().hex[:6]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(ENGINE_CATALOG.format(cluster=cluster, socket=SOCKET, image=IMAGE))
    server = gateway_server(make_server, "--catalog", str(catalog))
    user = server.new_user(balance="100")
    instance = running_instance(user, cluster=cluster, sku="t4", size=1, image=IMAGE)
    name, uid = instance["name"], instance["uid"]
    password = instance["servers"]["SSH"]["sshPassword"]
    port = ssh_port(instance)
    container = subprocess.run(["podman", "ps", "--filter", f"label=lattice.instance={name}", "--format",
                                "{{.Names}}"], capture_output=True, text=True).stdout.split()[0]
    # No port of the container is published on the host.
    inspect = subprocess.run(["podman", "inspect", "--format", "{{json .HostConfig.PortBindings}}", container],
                             capture_output=True, text=True).stdout.strip()
    import json
    bindings = json.loads(inspect) or {}
    assert all(not binding for binding in bindings.values()), bindings

    # exec with output, errors and the exit status carried back; stdin and its end pass in.
    out = ssh(port, "root", "echo hi; hostname; echo oops >&2", password=password)
    assert out.stdout == f"hi\n{name}\n" and out.stderr == "oops\n", out
    assert ssh(port, "root", "exit 3", password=password).returncode == 3
    assert ssh(server.ssh_shared_port, name, "cat", password=password, stdin="piped in\n").stdout == "piped in\n"

    # An interactive shell with a terminal that sees a resize.
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn("sshpass", ["-e", "ssh", *SSH_OPTIONS, "-tt", "-p", str(port), "-o",
                                      "PubkeyAuthentication=no", "root@127.0.0.1"],
                          env={**os.environ, "SSHPASS": password}, dimensions=(24, 80), timeout=30, encoding="utf-8")
    child.expect(r"# ")
    child.sendline("stty size")
    child.expect(r"24 80")
    child.setwinsize(50, 132)
    time.sleep(0.5)
    child.sendline("stty size")
    child.expect(r"50 132")
    child.sendline("exit 7")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 7

    # A client that vanishes mid-session leaves no shell behind in the container.
    def shells():
        listing = subprocess.run(["podman", "exec", container, "sh", "-c",
                                  "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null; echo; done"],
                                 capture_output=True, text=True).stdout
        return [line for line in listing.splitlines() if line.replace("\0", " ").strip() == "/bin/sh -l"]
    child = pexpect.spawn("sshpass", ["-e", "ssh", *SSH_OPTIONS, "-tt", "-p", str(port), "-o",
                                      "PubkeyAuthentication=no", "root@127.0.0.1"],
                          env={**os.environ, "SSHPASS": password}, timeout=30, encoding="utf-8")
    child.expect(r"# ")
    assert len(shells()) == 1
    child.kill(9)
    wait_for(lambda: not shells(), timeout=20, what="the abandoned shell to be hung up")

    # busybox httpd inside the container, a 20 MB file, and the WebSocket echo server.
    setup = ("mkdir -p /www/jupyter /www/monitor && echo 'hello from the container' > /www/jupyter/index.html"
             " && dd if=/dev/urandom of=/www/jupyter/big.bin bs=1M count=20 2>/dev/null"
             " && sha1sum /www/jupyter/big.bin && echo '*.cgi:/bin/sh' > /www/httpd.conf"
             " && printf 'echo Content-Type: text/plain; echo; head -c $CONTENT_LENGTH | sha1sum\\n'"
             " > /www/jupyter/upload.cgi && httpd -p 8888 -h /www -c /www/httpd.conf"
             " && cat > /ws.sh && chmod +x /ws.sh && (nc -ll -p 6006 -e /ws.sh >/dev/null 2>&1 &)")
    ws_script = open(os.path.join(os.path.dirname(__file__), "fixtures", "ws-echo.sh")).read()
    out = ssh(port, "root", setup, password=password, stdin=ws_script)
    assert out.returncode == 0, out.stderr
    big_sha1 = out.stdout.split()[0]

    # ssh -L reaches busybox httpd inside the container.
    local = free_port()
    forward = subprocess.Popen(["sshpass", "-e", "ssh", *SSH_OPTIONS, "-N", "-o", "PubkeyAuthentication=no",
                                "-L", f"{local}:localhost:8888", "-p", str(port), "root@127.0.0.1"],
                               env={**os.environ, "SSHPASS": password})
    try:
        page = wait_for(lambda: _try_get(f"http://127.0.0.1:{local}/jupyter/index.html"), timeout=30)
        assert page == "hello from the container\n"
    finally:
        forward.terminate()
        forward.wait(timeout=10)
    # Only the instance's own ports: another host is refused.
    out = ssh(port, "root", None, password=password, extra=("-W", "example.com:80"))
    assert out.returncode != 0

    # The HTTP gateway: a page, a large streamed response, a WebSocket echo (JupyterLab's
    # paths behind the instance's token).
    token = instance["servers"]["Jupyterlab"].split("token=")[1]
    signed = {"Authorization": f"token {token}"}
    r = gateway_get(server, uid, "/jupyter/index.html", headers=signed)
    assert r.status_code == 200 and r.text == "hello from the container\n"
    r = gateway_get(server, uid, "/jupyter/big.bin", headers=signed, stream=True)
    digest, size = hashlib.sha1(), 0
    for chunk in r.iter_content(1 << 16):
        digest.update(chunk)
        size += len(chunk)
    assert (size, digest.hexdigest()) == (20 << 20, big_sha1)
    # A large upload streams through to a CGI script that hashes what it received.
    upload = os.urandom(16 << 20)
    port_text = server.url.rsplit(":", 1)[1]
    r = requests.post(f"http://127.0.0.1:{port_text}/jupyter/upload.cgi?token={token}", data=upload, timeout=120,
                      headers={"Host": f"{uid}.localhost:{port_text}", "Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.text.split()[0] == hashlib.sha1(upload).hexdigest(), r.text[:200]
    api_port = int(server.url.rsplit(":", 1)[1])
    assert websocket_echo(api_port, f"{uid}.localhost:{api_port}", f"/monitor/ws?token={token}",
                          "hello gateway") == "hello gateway"

    # Stopped: a page saying so.
    assert user.post(f"/clusters/{cluster}/instances/{name}/power_off", {"gracePeriodSeconds": 1}).status_code == 200
    user.wait_status(name, "Stopped", cluster=cluster, timeout=120)
    r = gateway_get(server, uid, "/jupyter/index.html", headers=signed)
    assert r.status_code == 503 and "Stopped" in r.text
    user.delete(f"/clusters/{cluster}/instances/{name}")


def _try_get(url):
    try:
        r = requests.get(url, timeout=5)
        return r.text if r.status_code == 200 else None
    except requests.RequestException:
        return None
