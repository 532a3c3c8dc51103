"""SPEC §13: the event stream (Server-Sent Events with Last-Event-ID) and signed
webhooks, against a real server with a real HTTP receiver on loopback."""
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from conftest import wait_for


class Stream:
    """Reads `GET /events` on a thread: each message's id and parsed data, in order."""

    def __init__(self, user, last_event_id=None, path="/events"):
        headers = user.headers()
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(user.url + "/mdc/api/v1" + path, headers=headers, stream=True, timeout=60)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.events = []
        self.comments = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        wait_for(lambda: self.comments, timeout=10, what="the stream's first comment")

    def _read(self):
        event_id, data = None, []
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    event = json.loads("\n".join(data))
                    assert event["id"] == event_id
                    self.events.append(event)
                    event_id, data = None, []
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, AttributeError):
            pass

    def statuses(self, name):
        return [e["data"]["status"] for e in self.events if e["type"] == "instance.status" and e["instance"] == name]

    def close(self):
        # `response.close()` from another thread waits for the reader's next line (a
        # heartbeat, up to 15 s away): shut the socket down under it instead.
        try:
            self.response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        self.thread.join(timeout=5)


def create(user, sku="66"):
    r = user.create(sku=sku)
    assert r.status_code == 200, r.text
    return r.json()["name"]


def test_a_client_sees_its_instance_live_and_another_namespace_sees_nothing(make_server):
    server = make_server()
    alice, bob = server.new_user(), server.new_user()
    mine, theirs = Stream(alice), Stream(bob)
    name = create(alice)
    alice.wait_status(name, "Running")
    assert alice.post(f"/clusters/host-cluster/instances/{name}/power_off", {}).status_code == 200
    wait_for(lambda: mine.statuses(name)[-1:] == ["Stopped"], timeout=30, what="Stopped on the stream")
    assert mine.statuses(name) == ["Creating", "Running", "Stopping", "Stopped"]
    created = [e for e in mine.events if e["type"] == "instance.created"]
    assert len(created) == 1 and created[0]["instance"] == name and created[0]["data"]["cluster"] == "host-cluster"
    stopping = [e for e in mine.events if e["type"] == "instance.status" and e["data"]["status"] == "Stopping"][0]
    assert stopping["data"]["previous"] == "Running" and "reason" in stopping["data"]
    ids = [int(e["id"]) for e in mine.events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(set(e) >= {"id", "time", "type", "data"} and e["time"].endswith("Z") for e in mine.events)

    r = alice.delete("/clusters/host-cluster/instances", params={"name": name})
    assert r.status_code == 200, r.text
    wait_for(lambda: any(e["type"] == "instance.deleted" for e in mine.events), timeout=30, what="instance.deleted")
    time.sleep(0.5)
    assert theirs.events == [], "bob's stream tells nothing of alice's instance"
    mine.close()
    theirs.close()


def test_last_event_id_resumes_after_a_kill_9_and_misses_nothing(make_server):
    server = make_server()
    user = server.new_user()
    first = Stream(user)
    name = create(user)
    user.wait_status(name, "Running")
    wait_for(lambda: "Running" in first.statuses(name), timeout=30, what="Running on the stream")
    seen = first.events[-1]["id"]
    first.close()

    # While nobody listens: a power_off, then the server dies mid-stop or after.
    assert user.post(f"/clusters/host-cluster/instances/{name}/power_off", {}).status_code == 200
    user.wait_status(name, "Stopped")
    server.kill9()
    server.start()
    user.url = server.url
    resumed = Stream(user, last_event_id=seen)
    wait_for(lambda: resumed.statuses(name)[-1:] == ["Stopped"], timeout=30, what="the missed events")
    assert resumed.statuses(name) == ["Stopping", "Stopped"]
    assert int(resumed.events[0]["id"]) == int(seen) + 1
    # And it goes on live after the replay.
    assert user.post(f"/clusters/host-cluster/instances/{name}/power_on", {}).status_code == 200
    wait_for(lambda: resumed.statuses(name)[-1:] == ["Running"], timeout=30, what="live events after the replay")
    resumed.close()


def test_a_bad_last_event_id_is_a_json_error(server):
    user = server.new_user()
    r = requests.get(user.url + "/mdc/api/v1/events", headers=user.headers(extra={"Last-Event-ID": "yesterday"}),
                     timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "InvalidField" and "Last-Event-ID" in r.json()["message"]
    r = requests.get(user.url + "/mdc/api/v1/events", timeout=10)
    assert r.status_code == 401 and "code" in r.json()
    # An id past the newest (another store's) goes on from now.
    ahead = Stream(user, last_event_id=10**12)
    name = create(user)
    wait_for(lambda: any(e["instance"] == name for e in ahead.events), timeout=10, what="events after a far id")
    assert ahead.events[0]["id"] == "1"
    ahead.close()


class Receiver:
    """A webhook receiver on loopback that answers 500 to the first `fail` deliveries."""

    def __init__(self, fail=0):
        self.received = []
        self.fail = fail
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(500)
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks/lattice"

    def close(self):
        self.httpd.shutdown()


def verify(secret, headers, body):
    fields = dict(part.split("=", 1) for part in headers["Lattice-Signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "signature does not verify"
    assert abs(int(fields["t"]) - time.time()) < 300


def test_a_webhook_is_signed_retried_after_500s_and_in_order(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--webhook-allow-private"))
    user = server.new_user()
    receiver = Receiver(fail=2)
    r = user.post("/webhooks", {"url": receiver.url, "events": ["instance.status", "instance.deleted"]})
    assert r.status_code == 200, r.text
    hook = r.json()
    assert hook["id"] and hook["url"] == receiver.url and hook["secret"]
    assert hook["events"] == ["instance.status", "instance.deleted"]

    listed = user.get("/webhooks").json()
    assert listed["totalCount"] == 1 and "secret" not in listed["nodes"][0], "the secret is shown once"
    assert "secret" not in user.get(f"/webhooks/{hook['id']}").json()

    name = create(user)
    user.wait_status(name, "Running")

    def statuses():
        seen = []
        for headers, body in receiver.received:
            event = json.loads(body)
            if event["type"] == "instance.status" and event["instance"] == name:
                seen.append(event["data"]["status"])
        return seen

    wait_for(lambda: statuses()[-1:] == ["Running"], timeout=30, what="Running delivered")
    for headers, body in receiver.received:
        verify(hook["secret"], headers, body)
        assert headers["Content-Type"] == "application/json"
    # The first delivery was answered 500 twice and came again; order kept per instance.
    assert statuses() == ["Creating", "Creating", "Creating", "Running"]
    first = json.loads(receiver.received[0][1])
    assert all(json.loads(b)["id"] == first["id"] for _, b in receiver.received[:3])

    deliveries = user.get(f"/webhooks/{hook['id']}/deliveries").json()
    assert deliveries["totalCount"] == 2
    creating = [d for d in deliveries["nodes"] if d["eventId"] == first["id"]][0]
    assert creating["status"] == "delivered" and creating["attempts"] == 3 and creating["responseStatus"] == 204

    other = server.new_user()
    assert other.get(f"/webhooks/{hook['id']}").status_code == 404
    assert other.delete(f"/webhooks/{hook['id']}").status_code == 404
    assert user.delete(f"/webhooks/{hook['id']}").status_code == 200
    assert user.get(f"/webhooks/{hook['id']}").status_code == 404
    receiver.close()


def test_loopback_and_private_webhooks_are_refused_without_the_flag(server):
    user = server.new_user()
    for url in ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.0.0.1/x", "http://[::1]/x",
                "http://169.254.169.254/latest/meta-data"]:
        r = user.post("/webhooks", {"url": url, "events": ["instance.status"]})
        assert r.status_code == 400, (url, r.text)
        assert r.json()["code"] == "InvalidField" and "--webhook-allow-private" in r.json()["message"], r.text
    for body in [{"events": ["instance.status"]}, {"url": "ftp://example.com/"},
                 {"url": "https://example.com/", "events": ["nope"]}, {"url": "https://example.com/", "events": []}]:
        r = user.post("/webhooks", body)
        assert r.status_code == 400 and r.json()["code"] in ("InvalidField", "MissingField"), (body, r.text)
    assert user.get("/webhooks").json()["totalCount"] == 0


def test_money_alerts_are_events_told_once(make_server):
    """billing.low_balance once the wallet holds less than an hour of its running instances,
    and budget.threshold once for each percentage the month's spend reaches."""
    server = make_server(args=("--simulated-delay-scale", "0.1", "--charge-period-seconds", "1",
                               "--meter-interval-seconds", "0.2"))
    user = server.new_user(balance="2.501")
    r = user.put("/budget", {"monthlyLimit": "0.01", "alertAt": [1, 50], "action": "notify"})
    assert r.status_code == 200, r.text
    stream = Stream(user)
    name = create(user)
    user.wait_status(name, "Running")

    def of(kind):
        return [e for e in stream.events if e["type"] == kind]

    wait_for(lambda: len(of("budget.threshold")) == 2, timeout=60, what="both budget thresholds")
    wait_for(lambda: of("billing.low_balance"), timeout=30, what="billing.low_balance")
    time.sleep(2)  # more charges: nothing told twice
    assert [e["data"]["percent"] for e in of("budget.threshold")] == [1, 50]
    assert of("budget.threshold")[1]["data"]["monthlyLimit"] == "0.01"
    assert "instance" not in of("budget.threshold")[0]
    low = of("billing.low_balance")
    assert len(low) == 1 and low[0]["data"]["hourly"] == "2.50"
    stream.close()


def test_admins_see_node_events_and_tenants_may_not(make_server):
    server = make_server(args=("--simulated-delay-scale", "0.1", "--meter-interval-seconds", "0.2"))
    admin = server.client()
    tenant = server.new_user()
    r = requests.get(tenant.url + "/mdc/api/v1/admin/events", headers=tenant.headers(), timeout=10)
    assert r.status_code == 403 and "code" in r.json()
    time.sleep(1)  # the first look at the fleet: every node healthy, nothing told
    stream = Stream(admin, path="/admin/events")
    node = admin.get("/admin/nodes").json()["nodes"][0]["name"]
    assert admin.post(f"/admin/nodes/{node}/drain").status_code == 200
    wait_for(lambda: [e["type"] for e in stream.events] == ["node.drained"], timeout=20, what="node.drained")
    assert stream.events[0]["data"]["node"] == node and stream.events[0]["data"]["previous"] == "healthy"
    assert admin.post(f"/admin/nodes/{node}/undrain").status_code == 200
    wait_for(lambda: [e["type"] for e in stream.events][-1:] == ["node.healthy"], timeout=20, what="node.healthy")
    listed = admin.get("/admin/events", params={"follow": "false"}).json()["events"]
    assert [e["type"] for e in listed] == ["node.drained", "node.healthy"]
    assert all(e["type"].startswith("instance.") for e in tenant.get("/events", params={"follow": "false"}).json()["events"])
    stream.close()
