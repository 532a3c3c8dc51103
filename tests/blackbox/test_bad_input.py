"""Bad input always gets a 4xx JSON error naming the field; the server keeps serving."""
import copy

import pytest
import requests

REQUIRED = [
    ("Cost",), ("Cost", "CostType"), ("Cost", "DiskSKUID"), ("Cost", "GPUSKUID"),
    ("VolumeMount",), ("namespace",), ("displayName",), ("image",),
]


def post_raw(user, path, data, content_type="application/json"):
    return requests.post(user.url + "/mdc/api/v1" + path, data=data,
                         headers=user.headers(extra={"Content-Type": content_type}), timeout=30)


def assert_json_error(r, status, field=None):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"][:1].isupper()
    if field:
        assert field in body["message"], body


@pytest.mark.parametrize("path", REQUIRED, ids=lambda p: ".".join(p))
def test_each_required_field_missing(server, path):
    user = server.new_user()
    body = user.create_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    r = user.post("/clusters/host-cluster/instances", body)
    assert_json_error(r, 400, ".".join(path))


def test_malformed_json_and_wrong_types(server):
    user = server.new_user()
    path = "/clusters/host-cluster/instances"
    for raw in ("{", "not json", "[1,2", '{"Cost": }', "\x00\x01"):
        assert_json_error(post_raw(user, path, raw), 400)
    assert_json_error(post_raw(user, path, "[]"), 400, "body")
    cases = [
        (("Cost",), "free", "Cost"),
        (("Cost", "CostType"), {"x": 1}, "Cost.CostType"),
        (("Cost", "CostType"), "7", "Cost.CostType"),
        (("Cost", "GPUSKUID"), [66], "Cost.GPUSKUID"),
        (("Cost", "DiskSKUID"), True, "Cost.DiskSKUID"),
        (("VolumeMount",), "big", "VolumeMount"),
        (("VolumeMount", 0, "Size"), "fifty", "VolumeMount[0].Size"),
        (("VolumeMount", 0, "Size"), 1.5, "VolumeMount[0].Size"),
        (("VolumeMount", 0, "Size"), -5, "VolumeMount[0].Size"),
        (("VolumeMount", 0, "Size"), 100000, "VolumeMount[0].Size"),
        (("VolumeMount", 0, "PathInContainer"), "relative/path", "PathInContainer"),
        (("VolumeMount", 0, "Type"), "tape", "VolumeMount[0].Type"),
        (("namespace",), 12.5, "namespace"),
        (("displayName",), ["a"], "displayName"),
        (("image",), {"name": "x"}, "image"),
        (("image",), "", "image"),
    ]
    for path_keys, value, field in cases:
        body = user.create_body()
        target = body
        for key in path_keys[:-1]:
            target = target[key]
        target[path_keys[-1]] = value
        assert_json_error(user.post(path, body), 400, field)
    assert user.get("/regions").status_code == 200


def test_unknown_references_are_422_or_404(server):
    user = server.new_user()
    assert_json_error(user.create(sku="9999"), 422, "Cost.GPUSKUID")
    body = user.create_body()
    body["Cost"]["DiskSKUID"] = "42"
    assert_json_error(user.post("/clusters/host-cluster/instances", body), 422, "Cost.DiskSKUID")
    assert_json_error(user.create(image="docker.io/library/evil:latest"), 422, "image")
    body = user.create_body()
    body["Region"] = "atlantis"
    assert_json_error(user.post("/clusters/host-cluster/instances", body), 422, "Region")
    body = user.create_body()
    body["Cost"]["CouponID"] = "FREE100"
    assert_json_error(user.post("/clusters/host-cluster/instances", body), 422, "Cost.CouponID")
    assert_json_error(user.create(cluster="no-such-cluster"), 404, "no-such-cluster")
    assert_json_error(user.get("/skus/computings?region_id=nowhere"), 404, "region_id")
    assert_json_error(user.get("/no/such/route"), 404)


def test_region_may_be_empty_a_name_or_an_id(server):
    user = server.new_user()
    for region in ("", "北京一区", "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa"):
        body = user.create_body()
        body["Region"] = region
        r = user.post("/clusters/host-cluster/instances", body)
        assert r.status_code == 200, (region, r.text)


def test_power_off_body_errors(server):
    user = server.new_user()
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    path = f"/clusters/host-cluster/instances/{name}/power_off"
    assert_json_error(post_raw(user, path, "{oops"), 400)
    assert_json_error(user.post(path, {"gracePeriodSeconds": "soon"}), 400, "gracePeriodSeconds")
    assert_json_error(user.post(path, {"gracePeriodSeconds": -1}), 400, "gracePeriodSeconds")
    assert_json_error(user.post(path, {"needSnapshot": 3}), 400, "needSnapshot")
    assert_json_error(user.post(path, {"needSnapshot": True}), 400, "imageName")
    assert_json_error(user.post(path, {"needSnapshot": True, "imageName": "Bad Name"}), 400, "imageName")
    assert_json_error(user.post(path, {"needSnapshot": True, "imageName": "ok", "tag": "bad tag!"}), 400, "tag")
    assert user.instance(name).json()["status"] == "Running"


def test_two_mebibyte_body_is_413_and_server_keeps_serving(server):
    user = server.new_user()
    body = user.create_body()
    body["description"] = "x" * (2 * 1024 * 1024)
    import json
    r = post_raw(user, "/clusters/host-cluster/instances", json.dumps(body))
    assert_json_error(r, 413)
    assert user.get("/regions").status_code == 200
    assert user.create().status_code == 200


def test_delete_without_name_is_400(server):
    user = server.new_user()
    assert_json_error(user.delete("/clusters/host-cluster/instances"), 400, "name")


def test_no_bad_input_gives_5xx(server):
    """A small fuzz over the create body: every answer is a 2xx or a 4xx JSON error."""
    import random
    user = server.new_user()
    rng = random.Random(7)
    values = [None, 0, -1, 1.5, "", "x", "1", True, [], {}, [{}], "9" * 40, "\u0000", "../../etc"]
    base = user.create_body()
    keys = [("Cost", "CostType"), ("Cost", "GPUSKUID"), ("Cost", "DiskSKUID"), ("Cost", "CostTime"), ("Cost", "CouponID"),
            ("VolumeMount",), ("namespace",), ("displayName",), ("image",), ("Region",), ("Cost",)]
    for _ in range(150):
        body = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(keys)
            target = body
            for key in path[:-1]:
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                target = target[key]
            target[path[-1]] = rng.choice(values)
        r = user.post("/clusters/host-cluster/instances", body)
        assert r.status_code < 500, (body, r.text)
        if r.status_code >= 400:
            assert set(r.json()) == {"code", "message"}
