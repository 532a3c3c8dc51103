"""Issue 22: SSH passwords and Jupyter tokens are sealed in the database, and a server with
another key refuses to start instead of serving garbage."""
import base64
import os
import stat
import subprocess
import urllib.parse

from conftest import Client, lattice_binary, store_column


def secrets_of(user, name):
    servers = user.get(f"/clusters/host-cluster/instances/{name}").json()["servers"]
    password = servers["SSH"]["sshPassword"]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(servers["Jupyterlab"]).query)["token"][0]
    return password, token


def test_secrets_are_sealed_at_rest_and_another_key_is_refused(make_server):
    server = make_server()
    user = server.new_user()
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    password, token = secrets_of(user, name)
    assert len(password) >= 8 and len(token) >= 8
    server.stop()

    key_file = server.data_dir / "seal.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    docs = store_column(server, "SELECT doc FROM instances")
    assert len(docs) == 1
    assert password not in docs[0] and token not in docs[0], docs[0]
    assert docs[0].count('"sealed:v1:') == 2, docs[0]
    if "--database-url" not in server.args:
        for path in server.data_dir.glob("lattice.sqlite*"):
            raw = path.read_bytes()
            assert password.encode() not in raw and token.encode() not in raw, path

    other = base64.b64encode(os.urandom(32)).decode()
    refused = subprocess.run(
        [lattice_binary(), "serve", "--port", "0", "--data-dir", str(server.data_dir)] + server.args,
        env={**server.env, "LATTICE_SEAL_KEY": other}, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "sealed with key" in refused.stderr and "LATTICE_SEAL_KEY" in refused.stderr, refused.stderr

    server.start()
    assert secrets_of(Client(server.url, user.token, user.namespace), name) == (password, token)


def test_the_key_can_come_from_the_environment(make_server):
    key = base64.b64encode(os.urandom(32)).decode()
    server = make_server(env={"LATTICE_SEAL_KEY": key})
    user = server.new_user()
    name = user.create().json()["name"]
    password, _ = secrets_of(user, name)
    assert not (server.data_dir / "seal.key").exists()
    server.stop()
    assert password not in store_column(server, "SELECT doc FROM instances")[0]
    bad = subprocess.run(
        [lattice_binary(), "serve", "--port", "0", "--data-dir", str(server.data_dir)] + server.args,
        env={**server.env, "LATTICE_SEAL_KEY": "not-a-key"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "32 bytes" in bad.stderr, bad.stderr
