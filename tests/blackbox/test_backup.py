"""`lattice db backup` while serving and `lattice db restore` into an empty data
directory (docs/operations.md, "Backups and upgrades"), and data directories written by
earlier releases, which a new server opens and upgrades with nothing lost."""
import os
import pathlib
import shutil
import sqlite3
import subprocess
import threading

import pytest

from conftest import ON_POSTGRES, ROOT, Server, lattice_binary

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's own backup; PostgreSQL's is pg_dump")

FIXTURES = ROOT / "tests/blackbox/fixtures/datadirs"


def db(*args):
    return subprocess.run([lattice_binary(), "db", *args], capture_output=True, text=True, timeout=120)


def test_a_backup_taken_while_serving_restores_into_a_server_that_has_everything(make_server, tmp_path):
    server = make_server()
    alice = server.new_user(balance="100")
    name = alice.create().json()["name"]
    alice.wait_status(name, "Running")
    # Writes keep landing while the backup runs: it is one consistent moment all the same.
    stop = threading.Event()

    def keep_writing():
        while not stop.is_set():
            alice.post("/tokens", {"name": "busy"})

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        out = db("backup", "--data-dir", str(server.data_dir), str(tmp_path / "backup.sqlite"))
    finally:
        stop.set()
        writer.join()
    assert out.returncode == 0, out.stderr
    assert "backed up" in out.stdout
    check = sqlite3.connect(tmp_path / "backup.sqlite").execute("PRAGMA integrity_check").fetchone()
    assert check == ("ok",)
    # A backup never overwrites.
    again = db("backup", "--data-dir", str(server.data_dir), str(tmp_path / "backup.sqlite"))
    assert again.returncode == 1 and "never overwrites" in again.stderr
    balance = alice.get("/balance").json()["balance"]
    server.stop()

    restored = tmp_path / "restored"
    out = db("restore", "--data-dir", str(restored), str(tmp_path / "backup.sqlite"))
    assert out.returncode == 0, out.stderr
    assert "seal.key" in out.stdout, "it says the key must be put back"
    assert (os.stat(restored / "lattice.sqlite").st_mode & 0o777) == 0o600
    # Over an installation: refused, and nothing touched.
    out = db("restore", "--data-dir", str(restored), str(tmp_path / "backup.sqlite"))
    assert out.returncode == 1 and "empty data directory" in out.stderr
    not_lattice = tmp_path / "other.sqlite"
    sqlite3.connect(not_lattice).execute("CREATE TABLE t (x)").connection.commit()
    out = db("restore", "--data-dir", str(tmp_path / "elsewhere"), str(not_lattice))
    assert out.returncode == 1 and "not a Lattice database" in out.stderr

    shutil.copy(server.data_dir / "seal.key", restored / "seal.key")
    # The simulated fleet stands in for the hosts, which a restore finds as they are: its
    # state is not the database's, so it comes along as the hosts would.
    for state in server.data_dir.glob("fleet-*"):
        shutil.copy(state, restored / state.name)
    again = Server(restored, ["--simulated-delay-scale", "0.1"])
    again.start()
    try:
        user = again.client(alice.token, alice.namespace)
        assert user.get("/balance").json()["balance"] == balance
        assert user.wait_status(name, "Running")["name"] == name
    finally:
        again.stop()


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*")) if FIXTURES.exists() else [])
def test_a_data_directory_of_an_earlier_release_upgrades_with_everything_in_it(fixture, tmp_path):
    """Each fixture is a data directory an earlier commit wrote (its README says which and
    what it holds): the new server migrates it and answers for all of it."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / fixture, data)
    os.chmod(data, 0o700)
    facts = dict(line.split("=", 1) for line in (data / "FACTS").read_text().split() if "=" in line)
    server = Server(data, ["--simulated-delay-scale", "0.1"])
    server.start()
    try:
        user = server.client(facts["token"], facts["namespace"])
        # The instance has been billed since the fixture was written: less, never more.
        balance = float(user.get("/balance").json()["balance"])
        assert 0 < balance <= float(facts["balance"])
        instance = user.wait_status(facts["instance"], facts["status"])
        assert instance["servers"]["SSH"]["sshPassword"] == facts["password"], "sealed secrets still open"
        assert len(user.get("/orders").json()["nodes"]) >= 1
        # The new schema's tables are there and in use.
        assert user.post("/tokens", {"name": "after-upgrade"}).status_code == 200
        assert any(e["action"] == "token.create" for e in user.get("/audit").json()["nodes"])
    finally:
        server.stop()
    # Secrets written in the clear by a release before sealing are sealed now.
    docs = [row[0] for row in sqlite3.connect(data / "lattice.sqlite").execute("SELECT doc FROM instances")]
    assert docs and not any(facts["password"] in doc for doc in docs)
