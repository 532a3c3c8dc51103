"""SPEC §11 on Podman with the busybox test image: env and secretEnv inside the container,
the startup script's output in the logs, a shell-command image staying Running, the
stand-in JupyterLab started by Lattice and reached through the gateway only with the
token, a port served by busybox httpd reached through its URL, logs and metrics."""
import json
import os

import pytest
import requests

from conftest import wait_for
from test_engine import CLUSTER, IMAGE, SOCKET, container_of, engine_server, podman

SHELL_IMAGE = os.environ.get("LATTICE_TEST_SHELL_IMAGE")
JUPYTER_IMAGE = os.environ.get("LATTICE_TEST_JUPYTER_IMAGE")
pytestmark = pytest.mark.skipif(not (SOCKET and IMAGE and SHELL_IMAGE and JUPYTER_IMAGE),
                                reason="no container engine configured")

CATALOG = """
regions:
  - id: r-local
    name: workstation
    harborAddr: images.test.local
    clusters:
      - name: {cluster}
        driver: engine
        socket: {socket}
        gpuRequests: none
        nodes:
          - {{name: this-host, gpuModel: T4, gpuCount: 2, cpuCores: 2, memoryGiB: 4}}
gpuSkus:
  - {{id: "t4", name: T4, regionID: r-local, clusterName: {cluster}, gpuModel: T4, gpuCount: 1, cpuCores: 1, memoryGiB: 1, sellingType: 1, price: "1"}}
diskSkus:
  - {{id: "1", type: shared-filesystem, maxSizeGiB: 10, defaultSizeGiB: 1}}
images:
  - name: {image}
  - name: {shell}
  - name: {jupyter}
"""

SCRIPT = """echo "startup sees $MODE and ${#API_KEY} secret characters"
mkdir -p /www && echo "served by the instance" > /www/index.html
httpd -p 8000 -h /www
"""


def gateway(server, host, path, **headers):
    port = server.url.rsplit(":", 1)[1]
    return requests.get(f"http://127.0.0.1:{port}{path}", headers={"Host": f"{host}.localhost:{port}", **headers},
                        timeout=30, allow_redirects=False)


def test_an_instance_people_work_in(make_server, tmp_path):
    catalog = CATALOG.format(socket=SOCKET, image=IMAGE, shell=SHELL_IMAGE, jupyter=JUPYTER_IMAGE,
                             cluster=CLUSTER)
    server = engine_server(make_server, tmp_path, "33100-33199", catalog=catalog)
    user = server.new_user(balance="100")
    body = user.create_body(sku="t4", size=1, image=JUPYTER_IMAGE)
    body.update(env={"MODE": "train"}, secretEnv={"API_KEY": "sk-0123456789"}, startupScript=SCRIPT,
                ports=[{"port": 8000, "name": "web"}])
    r = user.post(f"/clusters/{CLUSTER}/instances", body)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    inst = user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    uid, token = inst["uid"], inst["servers"]["Jupyterlab"].split("token=")[1]
    container = container_of(name)

    # env and secretEnv are the container's environment.
    assert podman("exec", container, "sh", "-c", "echo $MODE $API_KEY").stdout.strip() == "train sk-0123456789"

    # The startup script ran after the start; its output is in the instance's log.
    path = f"/clusters/{CLUSTER}/instances/{name}"
    wait_for(lambda: "startup sees train and 13 secret characters" in user.get(f"{path}/logs").text,
             timeout=60, what="the startup script's output in the logs")
    wait_for(lambda: "exited with status 0" in user.get(f"{path}/logs?tail=50").text, timeout=60)
    # Followed: the engine's log stream, demultiplexed, as it grows.
    podman("exec", container, "sh", "-c", "echo written later > /proc/1/fd/1")
    with requests.get(f"{user.url}/mdc/api/v1{path}/logs?follow=true&tail=5", headers=user.headers(), stream=True,
                      timeout=30) as r:
        assert r.status_code == 200
        seen = ""
        for chunk in r.iter_content(chunk_size=None):
            seen += chunk.decode(errors="replace")
            if "written later" in seen:
                break
    assert "written later" in seen and "\x01" not in seen, "no stream headers in the text"

    # Lattice started the stand-in JupyterLab (the image has `jupyter`, nothing served 8888);
    # an image without it says so.
    wait_for(lambda: user.instance(name, CLUSTER).json()["servers"]["apps"]["jupyterlab"] == "running",
             timeout=60, what="jupyterlab running")
    assert user.instance(name, CLUSTER).json()["servers"]["apps"]["tensorboard"] == "absent"
    assert gateway(server, uid, "/jupyter/").status_code == 401
    r = gateway(server, uid, "/jupyter/", Authorization=f"token {token}")
    assert r.status_code == 200 and "stand-in jupyter lab" in r.text, r.text
    assert "--ServerApp.base_url=/jupyter" in r.text and f"--ServerApp.token={token}" in r.text
    assert "--allow-root" in r.text and "--ServerApp.root_dir=/root/data" in r.text

    # The instance's own port, served by busybox httpd, through its URL and only with the token.
    url = user.instance(name, CLUSTER).json()["servers"]["ports"][0]["url"]
    assert url.startswith(f"http://{uid}-8000.localhost:")
    assert gateway(server, f"{uid}-8000", "/").status_code == 401
    r = gateway(server, f"{uid}-8000", "/", Cookie=f"lattice_port={token}")
    assert r.status_code == 200 and "served by the instance" in r.text

    # Metrics from the engine's stats.
    r = user.get(f"{path}/metrics")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["memoryUsedBytes"] > 0 and m["memoryLimitBytes"] == 1024 ** 3 and m["gpus"] == []

    # A snapshot keeps no secret, the tenant's included.
    r = user.post(f"{path}/power_off", {"gracePeriodSeconds": 2, "needSnapshot": True, "imageName": "ws", "tag": "v1"})
    assert r.status_code == 200, r.text
    user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=120)
    config = json.loads(podman("image", "inspect", f"images.test.local/{user.namespace}/ws:v1").stdout)[0]["Config"]
    assert "sk-0123456789" not in json.dumps(config)
    # Powered on again, the script runs again.
    assert user.post(f"{path}/power_on").status_code == 200
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    wait_for(lambda: user.get(f"{path}/logs?tail=200").text.count("startup sees train") >= 2, timeout=60,
             what="the script run at the second start")
    user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    user.wait_status(name, None, cluster=CLUSTER, timeout=120)


def test_a_shell_image_stays_running_and_a_failing_script_is_reported(make_server, tmp_path):
    catalog = CATALOG.format(socket=SOCKET, image=IMAGE, shell=SHELL_IMAGE, jupyter=JUPYTER_IMAGE,
                             cluster=CLUSTER)
    server = engine_server(make_server, tmp_path, "33200-33299", catalog=catalog)
    user = server.new_user(balance="100")
    body = user.create_body(sku="t4", size=1, image=SHELL_IMAGE)
    body["startupScript"] = "echo going wrong; exit 4"
    r = user.post(f"/clusters/{CLUSTER}/instances", body)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    user.wait_status(name, "Running", cluster=CLUSTER, timeout=120)
    path = f"/clusters/{CLUSTER}/instances/{name}"
    wait_for(lambda: "StartupScriptFailed" in user.instance(name, CLUSTER).json()["statusReason"], timeout=60,
             what="the failed script in statusReason")
    inst = user.instance(name, CLUSTER).json()
    assert "status 4" in inst["statusReason"]
    assert inst["servers"]["apps"] == {"jupyterlab": "absent", "tensorboard": "absent"}
    assert "going wrong" in user.get(f"{path}/logs").text
    # Still Running some seconds later: the shell did not end the workload.
    import time
    time.sleep(3)
    assert user.instance(name, CLUSTER).json()["status"] == "Running"
    # A stop ends the kept-alive workload promptly.
    assert user.post(f"{path}/power_off", {"gracePeriodSeconds": 10}).status_code == 200
    user.wait_status(name, "Stopped", cluster=CLUSTER, timeout=30)
    user.delete(f"/clusters/{CLUSTER}/instances?name={name}")
    user.wait_status(name, None, cluster=CLUSTER, timeout=120)
