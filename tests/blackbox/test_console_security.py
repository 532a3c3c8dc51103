"""The console's defences, without a browser: CSRF on every form post, the security
headers on every page, and the cookie attributes (SPEC §6 of docs/console.md)."""
import re
import types

import requests

from conftest import BOOTSTRAP_TOKEN

PAGES = ("/console/login", "/console/instances", "/console/tokens", "/console/catalog", "/console/billing",
         "/console/images", "/console/activity", "/console/ssh-keys")
ADMIN_PAGES = ("/console/admin/tenants", "/console/admin/instances", "/console/admin/nodes", "/console/admin/prices",
               "/console/admin/prices?sku=66", "/console/admin/tenants?namespace=admin")


def signed_in(server, user):
    s = requests.Session()
    s.get(server.url + "/console/login")
    csrf = s.cookies["lattice_csrf"]
    r = s.post(server.url + "/console/login", data={"csrf": csrf, "namespace": user.namespace, "token": user.token},
               allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/console/instances"
    assert "lattice_session" in s.cookies
    # The CSRF token is bound to the session: sign-in rotates it.
    assert s.cookies["lattice_csrf"] != csrf
    return s, s.cookies["lattice_csrf"]


def cookie_attributes(response, name):
    for header in response.raw.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            return [part.strip() for part in header.split(";")]
    raise AssertionError(f"no {name} cookie in {response.headers}")


def test_every_page_carries_the_security_headers_and_every_form_its_csrf_token(server):
    user = server.new_user()
    session, csrf = signed_in(server, user)
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    forms = 0
    for page in PAGES:
        r = session.get(server.url + page)
        assert r.status_code == 200, page
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert "script-src 'self';" in r.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in r.headers["Content-Security-Policy"]
        assert "<script>" not in r.text and " style=" not in r.text and " onclick=" not in r.text, page
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["Content-Type"].startswith("text/html")
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", r.text, re.S):
            forms += 1
            assert f'name="csrf" value="{csrf}"' in form, f"{page}: a form without the CSRF token: {form[:200]}"
    assert forms >= 6, "sign-out, create, power off, delete, add token, and the token's actions"


def test_every_form_post_without_the_csrf_token_is_refused_and_does_nothing(server):
    user = server.new_user()
    session, csrf = signed_in(server, user)
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    token_id = user.get("/tokens").json()["nodes"][0]["id"]
    posts = [
        ("/console/login", {"namespace": user.namespace, "token": user.token}),
        ("/console/instances", {"region": "", "sku": "66", "displayName": "x", "image": "", "size": "50"}),
        (f"/console/instances/host-cluster/{name}/power_off", {}),
        (f"/console/instances/host-cluster/{name}/delete", {}),
        ("/console/tokens", {"name": "sneaky", "validityDays": "1"}),
        (f"/console/tokens/{token_id}/regenerate", {}),
        (f"/console/tokens/{token_id}/delete", {}),
        ("/console/logout", {}),
    ]
    for path, form in posts:
        for bad in (None, "", "0" * 64, csrf[:-1] + ("0" if csrf[-1] != "0" else "1")):
            data = dict(form)
            if bad is not None:
                data["csrf"] = bad
            r = session.post(server.url + path, data=data, allow_redirects=False)
            assert r.status_code == 403, (path, bad, r.status_code)
            assert r.json()["code"] == "Forbidden"
        # the token in the form but no CSRF cookie: refused too (double submit)
        r = requests.post(server.url + path, data=dict(form, csrf=csrf),
                          cookies={"lattice_session": session.cookies["lattice_session"]}, allow_redirects=False)
        assert r.status_code == 403, path
    # nothing happened
    assert user.instance(name).json()["status"] == "Running"
    assert [t["name"] for t in user.get("/tokens").json()["nodes"]] == [user.get("/tokens").json()["nodes"][0]["name"]]
    assert user.get("/regions").status_code == 200, "the token was neither regenerated nor deleted"
    assert session.get(server.url + "/console/instances", allow_redirects=False).status_code == 200, "still signed in"
    # and with the token, the same post works
    r = session.post(server.url + f"/console/instances/host-cluster/{name}/power_off", data={"csrf": csrf},
                     allow_redirects=False)
    assert r.status_code == 303
    user.wait_status(name, "Stopped")


def test_cookie_attributes_over_http_and_behind_a_tls_proxy(server):
    user = server.new_user()
    for proto, secure in ((None, False), ("https", True)):
        headers = {"X-Forwarded-Proto": proto} if proto else {}
        # Cookies passed by hand: a client's jar would not send Secure ones over plain HTTP.
        r = requests.get(server.url + "/console/login", headers=headers)
        csrf = cookie_attributes(r, "lattice_csrf")
        assert {"HttpOnly", "SameSite=Strict", "Path=/console"} <= set(csrf)
        assert ("Secure" in csrf) == secure
        token = csrf[0].split("=", 1)[1]
        r = requests.post(server.url + "/console/login", headers=headers, allow_redirects=False,
                          cookies={"lattice_csrf": token},
                          data={"csrf": token, "namespace": user.namespace, "token": user.token})
        session = cookie_attributes(r, "lattice_session")
        assert {"HttpOnly", "SameSite=Strict", "Path=/console"} <= set(session)
        assert ("Secure" in session) == secure
        max_age = next(int(p.split("=")[1]) for p in session if p.startswith("Max-Age="))
        assert 0 < max_age <= 12 * 3600
        token = cookie_attributes(r, "lattice_csrf")[0].split("=", 1)[1]
        cookies = {"lattice_csrf": token, "lattice_session": session[0].split("=", 1)[1]}
        r = requests.post(server.url + "/console/logout", headers=headers, allow_redirects=False, cookies=cookies,
                          data={"csrf": token})
        assert r.status_code == 303
        assert "Max-Age=0" in cookie_attributes(r, "lattice_session")
        r = requests.get(server.url + "/console/instances", headers=headers, cookies=cookies, allow_redirects=False)
        assert r.headers["Location"] == "/console/login", "the session ended on the server, not only in the cookie"


def test_the_admin_bootstrap_token_signs_in_only_as_admin(server):
    s = requests.Session()
    s.get(server.url + "/console/login")
    r = s.post(server.url + "/console/login", allow_redirects=False,
               data={"csrf": s.cookies["lattice_csrf"], "namespace": "someone-else", "token": BOOTSTRAP_TOKEN})
    assert r.status_code == 303 and r.headers["Location"] == "/console/login?failed=1"
    assert "lattice_session" not in s.cookies


def test_csrf_is_bound_to_the_session_and_origin_is_checked(server):
    user = server.new_user()
    alice, alice_csrf = signed_in(server, user)
    bob, bob_csrf = signed_in(server, user)
    assert alice_csrf != bob_csrf
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    path = server.url + f"/console/instances/host-cluster/{name}/power_off"
    # another session's token, even with a matching cookie, is refused
    forged = {"lattice_session": alice.cookies["lattice_session"], "lattice_csrf": bob_csrf}
    r = requests.post(path, data={"csrf": bob_csrf}, cookies=forged, allow_redirects=False)
    assert r.status_code == 403
    # the right token from another origin is refused; from this one it works
    for origin in ("http://evil.example", "null", server.url + ".evil.example"):
        r = alice.post(path, data={"csrf": alice_csrf}, headers={"Origin": origin}, allow_redirects=False)
        assert r.status_code == 403, origin
    r = alice.post(path, data={"csrf": alice_csrf}, headers={"Referer": "http://evil.example/x"}, allow_redirects=False)
    assert r.status_code == 403
    assert user.instance(name).json()["status"] == "Running"
    r = alice.post(path, data={"csrf": alice_csrf}, headers={"Origin": server.url}, allow_redirects=False)
    assert r.status_code == 303
    user.wait_status(name, "Stopped")


def test_a_session_ends_with_its_token(server):
    user = server.new_user()
    made = user.post("/tokens", {"name": "console"}).json()
    for how in ("regenerate", "delete"):
        if how == "delete":
            made = user.post("/tokens", {"name": "console2"}).json()
        s = requests.Session()
        s.get(server.url + "/console/login")
        s.post(server.url + "/console/login", data={"csrf": s.cookies["lattice_csrf"], "token": made["token"]})
        assert s.get(server.url + "/console/instances", allow_redirects=False).status_code == 200
        if how == "regenerate":
            assert user.post(f"/tokens/{made['id']}/regenerate").status_code == 200
        else:
            assert user.delete(f"/tokens/{made['id']}").status_code == 200
        r = s.get(server.url + "/console/instances", allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/console/login", how


def test_a_refresh_after_a_form_post_does_not_repeat_it(server):
    user = server.new_user()
    session, csrf = signed_in(server, user)
    r = session.post(server.url + "/console/tokens", data={"csrf": csrf, "name": "once", "validityDays": "1"},
                     allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/console/tokens"
    page = session.get(server.url + "/console/tokens").text
    assert 'id="new-token"' in page, "the new secret is shown once, after the redirect"
    again = session.get(server.url + "/console/tokens").text
    assert 'id="new-token"' not in again, "and only once"
    assert [t["name"] for t in user.get("/tokens").json()["nodes"]].count("once") == 1


def test_billing_and_images_pages_and_the_statement_csv(server):
    user = server.new_user(balance="50")
    server.client().post(f"/admin/users/{user.namespace}/debit", {"amount": "1.25", "reason": "<b>support</b>"})
    session, csrf = signed_in(server, user)
    r = session.get(server.url + "/console/billing")
    assert r.status_code == 200 and "48.75 CNY" in r.text and "&lt;b&gt;support&lt;/b&gt;" in r.text
    assert "<b>support</b>" not in r.text
    month = re.search(r'name="month" type="month" value="([0-9-]+)"', r.text).group(1)
    csv = session.get(server.url + f"/console/billing.csv?month={month}")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in csv.headers["Content-Disposition"] and "<b>support</b>" in csv.text
    r = session.get(server.url + "/console/billing?month=2026-13")
    assert r.status_code == 400 and "month" in r.text and 'role="alert"' in r.text
    r = session.get(server.url + "/console/images")
    assert r.status_code == 200 and "images.neolink-ai.com/matrixdc" in r.text
    r = session.post(server.url + "/console/images/delete", data={"csrf": csrf, "name": "nope:1"},
                     allow_redirects=False)
    assert 400 <= r.status_code < 500 and 'role="alert"' in r.text and "nope:1" in r.text
    assert requests.get(server.url + "/console/billing", allow_redirects=False).status_code == 303


def test_the_login_page_shows_no_text_from_the_url(server):
    r = requests.get(server.url + "/console/login?error=Call+%2B1-555-SCAM+now&flash=Your+account+is+locked")
    assert r.status_code == 200 and "SCAM" not in r.text and "locked" not in r.text
    r = requests.get(server.url + "/console/login?failed=1")
    assert "Sign-in failed" in r.text


def test_admin_pages_need_an_admin_session_and_carry_the_same_defences(server):
    admin = types.SimpleNamespace(namespace="admin", token=BOOTSTRAP_TOKEN)
    session, csrf = signed_in(server, admin)
    for page in ADMIN_PAGES:
        r = session.get(server.url + page)
        assert r.status_code == 200, page
        assert r.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self';")
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", r.text, re.S):
            assert f'name="csrf" value="{csrf}"' in form, f"{page}: a form without the CSRF token: {form[:200]}"
    user = server.new_user(balance="10")
    tenant, tenant_csrf = signed_in(server, user)
    for page in ADMIN_PAGES:
        r = tenant.get(server.url + page)
        assert r.status_code == 403 and 'role="alert"' in r.text, page
    posts = [
        ("/console/admin/wallet/credit", {"namespace": user.namespace, "amount": "1000"}),
        ("/console/admin/wallet/debit", {"namespace": user.namespace, "amount": "5", "reason": "x"}),
        ("/console/admin/quota", {"namespace": user.namespace, "instances": "0"}),
        ("/console/admin/prices/66", {"price": "0.01"}),
        ("/console/admin/nodes/gpu-4090-00/drain", {}),
    ]
    for path, form in posts:
        r = tenant.post(server.url + path, data=dict(form, csrf=tenant_csrf), allow_redirects=False)
        assert r.status_code == 403, path
        r = session.post(server.url + path, data=form, allow_redirects=False)
        assert r.status_code == 403 and r.json()["code"] == "Forbidden", path
    assert user.get("/balance").json()["balance"] == "10.00"
    assert server.client().get("/admin/nodes").json()["nodes"][0]["health"] != "draining"
    # bad input from an admin: a 4xx page, the form kept, nothing changed
    for amount in ("-5", "abc", "1" * 40, "0"):
        r = session.post(server.url + "/console/admin/wallet/credit",
                         data={"csrf": csrf, "namespace": user.namespace, "amount": amount}, allow_redirects=False)
        assert 400 <= r.status_code < 500 and 'role="alert"' in r.text, amount
        assert f'value="{amount}"' in r.text
    r = session.post(server.url + "/console/admin/wallet/credit",
                     data={"csrf": csrf, "namespace": "no-such-tenant", "amount": "1"}, allow_redirects=False)
    assert r.status_code == 404
    r = session.post(server.url + "/console/admin/prices/no-such-sku", data={"csrf": csrf, "price": "1"},
                     allow_redirects=False)
    assert r.status_code == 404 and 'role="alert"' in r.text
    r = session.get(server.url + "/console/admin/instances?status=Sleeping")
    assert r.status_code == 400 and "status" in r.text
    assert user.get("/balance").json()["balance"] == "10.00"
