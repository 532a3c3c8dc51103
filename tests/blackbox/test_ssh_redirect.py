"""One SSH listener for the whole port range (`--ssh-gateway-redirect-port`): nftables in a
network namespace made here redirects the range to the gateway, which tells the instance by
each connection's original destination port (SO_ORIGINAL_DST). The seed's
`ssh -p<port> root@<host>` keeps working, with no listener per instance."""
import os
import shutil
import subprocess
import uuid

import pytest
import requests

from conftest import BOOTSTRAP_TOKEN, Server, wait_for
from test_gateways import SSH_OPTIONS, ssh_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft") and shutil.which("sshpass")),
    reason="needs root, iproute2, nftables and sshpass")


def run(*args):
    subprocess.run(args, check=True, capture_output=True, text=True)


@pytest.fixture
def host():
    """A namespace `lat-XXXX` with a veth pair: 10.77.N.1 here, 10.77.N.2 there."""
    name = "lat-" + uuid.uuid4().hex[:8]
    n = int(name[4:6], 16)
    outside, inside = f"vo{name[4:12]}", f"vi{name[4:12]}"
    run("ip", "netns", "add", name)
    try:
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        run("ip", "link", "set", inside, "netns", name)
        run("ip", "addr", "add", f"10.77.{n}.1/24", "dev", outside)
        run("ip", "link", "set", outside, "up")
        run("ip", "netns", "exec", name, "ip", "addr", "add", f"10.77.{n}.2/24", "dev", inside)
        run("ip", "netns", "exec", name, "ip", "link", "set", inside, "up")
        run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, f"10.77.{n}.2"
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_one_listener_serves_every_instance_port_behind_a_firewall_redirect(tmp_path, host):
    namespace, address = host
    # The operator's firewall, as docs/access.md shows it: the range to the gateway's port.
    rules = tmp_path / "lattice.nft"
    rules.write_text("table ip lattice {\n  chain prerouting {\n    type nat hook prerouting priority dstnat;\n"
                     "    tcp dport 41000-41099 redirect to :2299\n  }\n}\n")
    run("ip", "netns", "exec", namespace, "nft", "-f", str(rules))
    # The namespace is the server's own, so a fixed API port is free; a kernel-chosen one
    # could fall in the redirected range (it did once in CI) and reach the SSH gateway.
    server = Server(tmp_path / "data", ["--host", "0.0.0.0", "--port", "8080", "--simulated-delay-scale", "0.1",
                                        "--ssh-ports", "41000-41099", "--ssh-gateway-port", "2222",
                                        "--ssh-gateway-redirect-port", "2299"])
    server.wrapper = ["ip", "netns", "exec", namespace]
    server.start()
    try:
        server.url = server.url.replace("0.0.0.0", address)
        user = server.new_user()
        instances = []
        for _ in range(2):
            r = user.create()
            assert r.status_code == 200, r.text
            instances.append(user.wait_status(r.json()["name"], "Running", timeout=60))
        ports = [ssh_port(i) for i in instances]
        assert all(41000 <= p <= 41099 for p in ports) and len(set(ports)) == 2
        for instance, port in zip(instances, ports):
            env = {**os.environ, "SSHPASS": instance["servers"]["SSH"]["sshPassword"]}
            out = subprocess.run(["sshpass", "-e", "ssh", *SSH_OPTIONS, "-p", str(port), "-o",
                                  "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                                  f"root@{address}", "hostname"], capture_output=True, text=True, timeout=60, env=env)
            assert out.returncode == 0 and out.stdout.strip() == instance["name"], out.stderr
        # Another instance's password does not open this one: the original port decides.
        env = {**os.environ, "SSHPASS": instances[1]["servers"]["SSH"]["sshPassword"]}
        out = subprocess.run(["sshpass", "-e", "ssh", *SSH_OPTIONS, "-p", str(ports[0]), "-o",
                              "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
                              "-o", "NumberOfPasswordPrompts=1", f"root@{address}", "hostname"],
                             capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode != 0
        # Each port still shows its instance's own host key.
        keys = {subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(p), address], capture_output=True,
                               text=True, timeout=30).stdout.split()[-1] for p in ports}
        assert len(keys) == 2
        # ...with no listener per instance: the gateway holds the shared and the redirect port.
        listening = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Htln"], capture_output=True,
                                   text=True).stdout
        assert not any(f":{p} " in listening for p in ports), listening
        assert ":2299 " in listening
        ready = requests.get(server.url + "/readyz", timeout=5).json()["sshListeners"]
        assert ready["budget"] == 0 and ready["listening"] == 0
    finally:
        server.stop()
