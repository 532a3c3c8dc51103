"""Fuzzes every operation of /openapi.json with schemathesis (all checks) against a live
`lattice serve`: authenticated as a tenant with money, with a real instance, cluster,
namespace and token behind the path parameters. Exit status is schemathesis's.

    python3 tests/fuzz/run.py [--max-examples N]     (LATTICE_BIN picks the binary)
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import requests

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "blackbox"))
from conftest import Server  # noqa: E402


def main():
    examples = sys.argv[sys.argv.index("--max-examples") + 1] if "--max-examples" in sys.argv else "25"
    work = pathlib.Path(tempfile.mkdtemp(prefix="lattice-fuzz-"))
    # Limits off: the fuzzer is one client sending thousands of requests.
    server = Server(work / "data", ["--simulated-delay-scale", "0.05", "--rate-limit-per-token", "0",
                                    "--rate-limit-per-address", "0", "--sign-ins-per-minute", "0",
                                    "--webhook-allow-private"]).start()
    try:
        # As the admin, so the admin operations are exercised too (an admin has no quota).
        user = server.client()
        tenant = server.new_user()
        user.post(f"/admin/users/{user.namespace}/credit", {"amount": "1000000"})
        instance = user.create().json()["name"]
        user.wait_status(instance, "Running")
        # A spare token for the {id} routes: regenerating the fuzzer's own would lock it out.
        token_id = user.post("/tokens", {"name": "fuzz-target"}).json()["id"]
        spec = requests.get(server.url + "/openapi.json", timeout=10).json()
        fixed = {"cluster": "host-cluster", "name": instance, "namespace": tenant.namespace, "id": token_id,
                 "skuId": "66"}
        for path in spec["paths"].values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path" and parameter["name"] in fixed:
                        parameter["schema"] = {"type": "string", "enum": [fixed[parameter["name"]]]}
        # The fuzzer would reuse one Idempotency-Key for different bodies and rightly get 422
        # IdempotencyKeyReused; that contract is tested by the black-box suite instead.
        for path in spec["paths"].values():
            for operation in path.values():
                operation["parameters"] = [p for p in operation.get("parameters", [])
                                           if p["name"] != "Idempotency-Key"]
        # A body naming another namespace is a 403 by design: fuzz creates as the caller.
        create = spec["components"]["schemas"]["CreateInstance"]["properties"]
        create["namespace"] = {"type": "string", "enum": [user.namespace]}
        spec_file = work / "openapi.json"
        # The event stream never ends (test_events.py reads it). Whether a webhook's URL is
        # accepted depends on where its host resolves, which this offline machine cannot say
        # for the hosts the fuzzer makes up: its URL is one loopback address (allowed by the
        # flag above; nothing listens there, so deliveries fail and are retried), and
        # test_events.py checks the refusals. The operation stays in the document, or the
        # fuzzer rightly expects 405 for an undeclared POST.
        del spec["paths"]["/mdc/api/v1/events"]
        del spec["paths"]["/mdc/api/v1/admin/events"]
        hook = spec["components"]["schemas"]["CreateWebhook"]["properties"]
        hook["url"] = {"type": "string", "enum": ["http://127.0.0.1:9/lattice-fuzz"]}
        spec_file.write_text(json.dumps(spec))
        command = [
            "schemathesis", "--config-file", str(HERE / "schemathesis.toml"), "run", str(spec_file), "--url", server.url, "--checks", "all",
            "--max-examples", examples, "--seed", "1", "--phases", "examples,coverage,fuzzing",
            "-H", f"Authorization: bearer {user.token}", "--request-timeout", "10", "--no-color",
            "--generation-database", "none", "--report", "junit", "--report-dir", str(work / "report"),
        ]
        # Creating namespaces and coupons goes last, in a pass of its own: the fuzzer would make
        # ones named "0" or "1" (a whole number is read as its digits), and a "wrong-type" path
        # value such as 0 would then name them and rightly answer 200.
        creators = ["--include-path-regex", "^/mdc/api/v1/admin/(users|coupons)$"]
        started = time.time()
        first = subprocess.run(command + ["--exclude-path-regex", "^/mdc/api/v1/admin/(users|coupons)$"], cwd=work)
        second = subprocess.run(command[:-1] + [str(work / "report-creators")] + creators, cwd=work)
        print(f"schemathesis finished in {time.time() - started:.0f} s; report in {work / 'report'}")
        return first.returncode or second.returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
