"""The `lattice` command line against a real `lattice serve`: stdout, stderr and exit codes."""
import json
import os
import stat
import subprocess

import pytest

from conftest import SMALL_CATALOG, lattice_binary, write_catalog


@pytest.fixture
def cli(server, tmp_path):
    user = server.new_user(balance="1000")
    config = tmp_path / "cli-config" / "config.json"

    def run(*args, env=None, input=None, check_exit=None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
        full_env.update({"LATTICE_CONFIG": str(config), "NO_COLOR": "1"})
        full_env.update(env or {})
        out = subprocess.run([lattice_binary(), *args], capture_output=True, text=True, env=full_env, input=input, timeout=120)
        if check_exit is not None:
            assert out.returncode == check_exit, (args, out.returncode, out.stdout, out.stderr)
        return out

    run.user = user
    run.server = server
    run.config = config
    return run


def login(cli):
    out = cli("login", "--url", cli.server.url, "--token", cli.user.token, check_exit=0)
    assert cli.user.namespace in out.stdout
    return out


def test_login_stores_a_private_profile(cli):
    login(cli)
    mode = stat.S_IMODE(os.stat(cli.config).st_mode)
    assert mode == 0o600
    saved = json.loads(cli.config.read_text())
    assert saved["current"] == "default"
    assert saved["profiles"]["default"] == {"url": cli.server.url, "namespace": cli.user.namespace, "token": cli.user.token}
    # a second, named profile through stdin
    admin = cli.server.client()
    out = cli("login", "--url", cli.server.url, "--token", "-", "--profile", "ops", input=admin.token + "\n", check_exit=0)
    assert "admin" in out.stdout
    assert json.loads(cli("balance", "-o", "json", "--profile", "ops", check_exit=0).stdout)["namespace"] == "admin"
    assert json.loads(cli("balance", "-o", "json", "--profile", "default", check_exit=0).stdout)["namespace"] == cli.user.namespace


def test_wrong_token_is_exit_1_with_the_servers_code(cli):
    out = cli("login", "--url", cli.server.url, "--token", "lat_wrong", check_exit=1)
    assert out.stderr.startswith("error: Unauthorized: ")
    out = cli("regions", env={"LATTICE_URL": cli.server.url, "LATTICE_TOKEN": "nope-nope-nope"}, check_exit=1)
    assert out.stderr.strip() == "error: Unauthorized: unknown or revoked token"
    assert out.stdout == ""


def test_usage_errors_are_exit_2(cli):
    assert cli("regions", check_exit=2).stderr.startswith("error: not logged in")
    assert "Unknown option" in cli("skus", "--bogus", check_exit=2).stderr
    login(cli)
    assert "--for" in cli("instances", "wait", "instance-00000000", "--for", "Sleeping", check_exit=2).stderr
    assert cli("orders", "--page", "0", check_exit=2).stderr.startswith("error: --page")
    assert cli("--help", check_exit=0).stdout.startswith("OVERVIEW")


def test_environment_overrides_the_profile(cli):
    login(cli)
    admin = cli.server.client()
    out = cli("balance", "-o", "json", env={"LATTICE_TOKEN": admin.token, "LATTICE_NAMESPACE": "admin"}, check_exit=0)
    assert json.loads(out.stdout)["namespace"] == "admin"


def test_catalog_verbs_in_table_and_json(cli):
    login(cli)
    table = cli("regions", check_exit=0).stdout.splitlines()
    assert table[0].split() == ["ID", "REGION", "CLUSTER", "REGISTRY"]
    assert "host-cluster" in table[1]
    regions = json.loads(cli("regions", "-o", "json", check_exit=0).stdout)
    assert regions[0]["clusterName"] == "host-cluster"
    skus = json.loads(cli("skus", "--region", "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa", "-o", "json", check_exit=0).stdout)
    assert {"2", "66"} <= {s["skusID"] for s in skus}
    lines = cli("skus", check_exit=0).stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "GPU", "GPUS"]
    # columns line up: every row's FREE column starts where the header's does
    column = lines[0].index("FREE")
    assert all(line[column - 2:column] == "  " for line in lines[1:])
    images = json.loads(cli("images", "-o", "json", check_exit=0).stdout)
    assert any(i["kind"] == "official" for i in images)
    wallet = json.loads(cli("balance", "-o", "json", check_exit=0).stdout)
    assert wallet == {"balance": "1000.00", "currency": "CNY", "namespace": cli.user.namespace}
    assert json.loads(cli("orders", "-o", "json", check_exit=0).stdout)["totalCount"] == 0
    assert json.loads(cli("bills", "-o", "json", check_exit=0).stdout)["nodes"] == []
    assert "\x1b[" not in cli("skus", check_exit=0).stdout, "no colour when not a TTY"


def test_instance_lifecycle(cli):
    login(cli)
    image = "images.neolink-ai.com/matrixdc/ubuntu:22.04-cuda12.1.0"
    out = cli("instances", "create", "--sku", "66", "--image", image, "--name", "cli-test", "--wait", check_exit=0)
    assert "Running" in out.stderr and "created instance-" in out.stderr
    assert out.stdout.startswith("ssh:        ssh -p")
    assert "jupyter:" in out.stdout
    listed = json.loads(cli("instances", "list", "-o", "json", check_exit=0).stdout)
    assert len(listed) == 1 and listed[0]["displayName"] == "cli-test"
    name = listed[0]["name"]
    table = cli("instances", "list", check_exit=0).stdout
    assert name in table and "Running" in table
    got = json.loads(cli("instances", "get", name, "-o", "json", check_exit=0).stdout)
    assert got["status"] == "Running"

    out = cli("instances", "stop", name, "--snapshot", "cli-snap:v1", "--wait", "-o", "json", check_exit=0)
    assert json.loads(out.stdout) == {"name": name, "status": "Stopped"}
    assert any(i["name"].endswith(f"/{cli.user.namespace}/cli-snap:v1") for i in json.loads(cli("images", "-o", "json", check_exit=0).stdout))
    out = cli("instances", "stop", name, check_exit=1)
    assert out.stderr.startswith("error: InvalidState: ")
    out = cli("instances", "start", name, "--wait", check_exit=0)
    assert "ssh:" in out.stdout
    out = cli("ssh", name, env={"PATH": "/nonexistent"}, check_exit=0)
    assert out.stdout.startswith("ssh -p") and "password: " in out.stdout
    out = cli("instances", "delete", name, "--wait", "-o", "json", check_exit=0)
    assert json.loads(out.stdout) == {"name": name, "status": "Deleted"}
    out = cli("instances", "get", name, check_exit=1)
    assert out.stderr.startswith("error: NotFound: ")


def test_unknown_instance_and_no_capacity(make_server, tmp_path):
    server = make_server(args=("--catalog", write_catalog(tmp_path, SMALL_CATALOG), "--simulated-delay-scale", "0.1"))
    user = server.new_user(balance="1000")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_")}
    env.update({"LATTICE_URL": server.url, "LATTICE_TOKEN": user.token, "LATTICE_CLUSTER": "small", "LATTICE_CONFIG": str(tmp_path / "c.json")})

    def run(*args):
        return subprocess.run([lattice_binary(), *args], capture_output=True, text=True, env=env, timeout=60)

    out = run("instances", "get", "instance-00000000")
    assert out.returncode == 1 and out.stderr.startswith("error: NotFound: ")
    for _ in range(2):
        assert run("instances", "create", "--sku", "t4x2", "--image", "images.test.local/matrixdc/ubuntu:22.04", "--name", "x").returncode == 0
    out = run("instances", "create", "--sku", "t4", "--image", "images.test.local/matrixdc/ubuntu:22.04", "--name", "x")
    assert out.returncode == 1 and out.stderr.startswith("error: InsufficientCapacity: ")


def test_tokens(cli):
    login(cli)
    out = cli("tokens", "create", "laptop", "--days", "30", "-o", "json", check_exit=0)
    made = json.loads(out.stdout)
    assert made["token"].startswith("lat_") and made["name"] == "laptop"
    listed = json.loads(cli("tokens", "list", "-o", "json", check_exit=0).stdout)
    assert "laptop" in [t["name"] for t in listed] and all(t.get("token") is None for t in listed)
    out = cli("tokens", "regenerate", made["id"], check_exit=0)
    assert "shown only now" in out.stdout
    new_secret = out.stdout.strip().splitlines()[-1]
    assert new_secret.startswith("lat_") and new_secret != made["token"]
    assert cli("regions", env={"LATTICE_TOKEN": made["token"]}, check_exit=1).stderr.startswith("error: Unauthorized")
    assert cli("regions", env={"LATTICE_TOKEN": new_secret}, check_exit=0)
    assert json.loads(cli("tokens", "delete", made["id"], "-o", "json", check_exit=0).stdout) == {"id": made["id"], "status": "deleted"}
    assert cli("tokens", "delete", made["id"], check_exit=1).stderr.startswith("error: NotFound")


@pytest.mark.parametrize("shell,marker", [("bash", "complete"), ("zsh", "#compdef"), ("fish", "complete -c 'lattice'")])
def test_completion_scripts(cli, shell, marker):
    out = cli("completion", shell, check_exit=0)
    assert marker in out.stdout and "instances" in out.stdout
    assert cli("completion", "tcsh", check_exit=2)


def test_sdk_example_program_runs(server):
    import pathlib
    user = server.new_user(balance="100")
    example = pathlib.Path(lattice_binary()).parent / "lattice-sdk-example"
    env = dict(os.environ, LATTICE_URL=server.url, LATTICE_TOKEN=user.token)
    out = subprocess.run([str(example)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "cheapest free SKU: 66" in out.stdout and "ssh: ssh -p" in out.stdout and "deleted instance-" in out.stdout


def test_the_config_file_follows_home_and_xdg_config_home_and_is_private_from_the_start(server, tmp_path):
    user = server.new_user()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_") and k != "XDG_CONFIG_HOME"}
    home = tmp_path / "home"
    home.mkdir()
    env = {**base, "HOME": str(home)}
    out = subprocess.run([lattice_binary(), "login", "--url", server.url, "--token", user.token], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    config = home / ".config" / "lattice" / "config.json"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(config.parent).st_mode) == 0o700
    xdg = tmp_path / "xdg"
    out = subprocess.run([lattice_binary(), "login", "--url", server.url, "--token", user.token], capture_output=True,
                         text=True, env={**env, "XDG_CONFIG_HOME": str(xdg)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(os.stat(xdg / "lattice" / "config.json").st_mode) == 0o600
    # the file is never readable by others, not even for an instant: the directory is 0700
    # and the file is opened 0600, so a wide umask changes nothing
    out = subprocess.run(["sh", "-c", f'umask 000; exec "{lattice_binary()}" login --url {server.url} --token {user.token}'],
                         capture_output=True, text=True, env={**env, "HOME": str(tmp_path / "home2")}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "home2" / ".config" / "lattice" / "config.json").st_mode) == 0o600


def test_the_operator_verbs_and_acting_in_a_tenants_namespace(cli):
    """`lattice admin users|instances|credit|debit|coupons`, `--namespace` on the instance verbs
    with an admin token, and `lattice instances renew`."""
    server, tenant = cli.server, cli.user
    admin = {"LATTICE_URL": server.url, "LATTICE_TOKEN": server.client().token}
    name = tenant.create().json()["name"]
    tenant.wait_status(name, "Running")
    out = cli("admin", "users", "-o", "json", env=admin, check_exit=0)
    users = {u["namespace"]: u for u in json.loads(out.stdout)["nodes"]}
    assert users[tenant.namespace]["instances"] == 1 and users[tenant.namespace]["gpusInUse"] == 1
    out = cli("admin", "instances", "--of", tenant.namespace, "--status", "Running", env=admin, check_exit=0)
    assert name in out.stdout and tenant.namespace in out.stdout
    out = cli("admin", "debit", tenant.namespace, "10.50", "--reason", "support hours", env=admin, check_exit=0)
    assert "989.50" in out.stdout
    out = cli("admin", "credit", tenant.namespace, "0.50", "--reason", "goodwill", env=admin, check_exit=0)
    assert "990.00" in out.stdout
    out = cli("admin", "debit", tenant.namespace, "5", env=admin)
    assert out.returncode == 2 and "--reason" in out.stderr
    out = cli("admin", "debit", tenant.namespace, "5000", "--reason", "too much", env=admin)
    assert out.returncode == 1 and "InsufficientBalance" in out.stderr
    out = cli("admin", "coupons", "create", "--kind", "amount", "--value", "5", "--id", "WELCOME5", env=admin,
              check_exit=0)
    assert "WELCOME5" in out.stdout and "active" in out.stdout
    out = cli("admin", "coupons", "disable", "WELCOME5", env=admin, check_exit=0)
    assert "disabled" in out.stdout
    assert "disabled" in cli("admin", "coupons", "list", env=admin, check_exit=0).stdout
    r = tenant.post("/clusters/host-cluster/instances", tenant.create_body() | {
        "Cost": {"CostType": "1", "CouponID": "WELCOME5", "DiskSKUID": "1", "GPUSKUID": "66", "CostTime": ""}})
    assert r.status_code == 422 and r.json()["code"] == "CouponDisabled"
    # The admin stops the tenant's instance by naming its namespace.
    out = cli("instances", "stop", name, "--namespace", tenant.namespace, "--wait", env=admin, check_exit=0)
    assert tenant.instance(name).json()["status"] == "Stopped"
    out = cli("instances", "list", "--namespace", "no-such-ns", env=admin)
    assert out.returncode == 1 and "NotFound" in out.stderr
    # renew extends a prepaid term.
    prepaid = tenant.create(sku="101", cost_type="4", cost_time="1D").json()
    out = cli("instances", "renew", prepaid["name"], "--cost-time", "1D", "--namespace", tenant.namespace,
              "-o", "json", env=admin, check_exit=0)
    assert json.loads(out.stdout)["ScheduleStopTimestamp"] > prepaid["ScheduleStopTimestamp"]
    help_text = cli("admin", "--help", check_exit=0).stdout
    assert all(verb in help_text for verb in ["users", "instances", "credit", "debit", "coupons"])


def test_bills_month_prints_the_statement_as_a_table_json_and_csv(cli):
    server, tenant = cli.server, cli.user
    server.client().post(f"/admin/users/{tenant.namespace}/debit", {"amount": "2.50", "reason": "support"})
    login(cli)
    out = cli("bills", "--month", "now", check_exit=0)
    assert "adjustment 2.50: support" in out.stdout and "closing 997.50" in out.stdout
    statement = json.loads(cli("bills", "--month", "now", "-o", "json", check_exit=0).stdout)
    assert statement["totals"]["closingBalance"] == "997.50"
    csv = cli("bills", "--month", statement["month"], "--csv", check_exit=0).stdout
    assert csv.startswith("date,kind,instance") and "support" in csv
    out = cli("bills", "--month", "2026-13")
    assert out.returncode == 1 and "month" in out.stderr
    assert cli("bills", "--csv").returncode == 2
