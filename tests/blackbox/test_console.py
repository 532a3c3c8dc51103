"""The web console in a real browser (headless Chromium through chromedriver), plus its
CSRF, cookie and tenancy rules. Screenshots of every page, at desktop and phone width,
are saved under tests/artifacts/screenshots/."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import types

import pytest
import requests

from conftest import BOOTSTRAP_TOKEN

# In CI the browser tests can never be skipped: a missing selenium fails the collection.
if os.environ.get("CI"):
    import selenium  # noqa: F401
else:
    selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

SHOTS = pathlib.Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        options.binary_location = chromium
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def shoot(browser, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        browser.set_window_size(width, height)
        time.sleep(0.2)
        browser.save_screenshot(str(SHOTS / f"{name}-{label}.png"))
    browser.set_window_size(1280, 900)


def sign_in(browser, server, user):
    browser.get(server.url + "/console/login")
    browser.find_element(By.ID, "namespace").send_keys(user.namespace)
    browser.find_element(By.ID, "token").send_keys(user.token)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/console/instances"))


# Forms redirect and the page reloads under us: elements found a moment ago may be gone.
PATIENT = (NoSuchElementException, StaleElementReferenceException)


def wait_status(browser, name, status, timeout=30):
    WebDriverWait(browser, timeout, ignored_exceptions=PATIENT).until(
        lambda b: b.find_element(By.CSS_SELECTOR, f'[data-status-for="{name}"]').text == status)


def wait_gone(browser, name, timeout=30):
    """Deleted: the live refresh marks the row, or the page after the redirect no longer
    has it (teardown can finish before the page is rendered)."""
    def gone(b):
        rows = b.find_elements(By.CSS_SELECTOR, f'[data-status-for="{name}"]')
        return not rows or rows[0].text == "Deleted"
    WebDriverWait(browser, timeout, ignored_exceptions=PATIENT).until(gone)


def click_in_row(browser, name, xpath):
    """Clicks a button of an instance's row, once the page that has it is loaded."""
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(
        lambda b: b.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"]').find_element(By.XPATH, xpath).is_displayed())
    before = browser.current_url
    browser.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"]').find_element(By.XPATH, xpath).click()
    return before


def wait_for_redirect(browser, before):
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(
        lambda b: b.current_url != before and b.execute_script("return document.readyState") == "complete")


def accept_confirm(browser):
    WebDriverWait(browser, 5).until(lambda b: _alert(b))
    browser.switch_to.alert.accept()


def _alert(b):
    try:
        b.switch_to.alert
        return True
    except NoAlertPresentException:
        return False


def test_tokens_and_instances_in_the_browser(make_server, browser):
    server = make_server(args=("--simulated-delay-scale", "0.3"))
    user = server.new_user(balance="500")
    browser.get(server.url + "/console/login")
    shoot(browser, "login")
    sign_in(browser, server, user)

    # API Credentials: add a token (validity defaults to 3650 days), copy it, use it
    browser.find_element(By.LINK_TEXT, "API Credentials").click()
    assert browser.find_element(By.ID, "validity").get_attribute("value") == "3650"
    browser.find_element(By.ID, "token-name").send_keys("browser-token")
    browser.find_element(By.ID, "add-token").click()
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(lambda b: b.find_element(By.ID, "new-token"))
    secret = browser.find_element(By.ID, "new-token").get_attribute("value")
    assert secret.startswith("lat_")
    browser.find_element(By.ID, "copy-token").click()
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "copy-result").text == "Copied.")
    shoot(browser, "tokens")
    api = server.url + "/mdc/api/v1/regions"
    assert requests.get(api, headers={"Authorization": f"bearer {secret}"}).status_code == 200

    # regenerate it: the old secret fails at once, the new one works
    row = browser.find_element(By.XPATH, "//tr[td[text()='browser-token']]")
    row.find_element(By.XPATH, ".//button[text()='Regenerate']").click()
    accept_confirm(browser)
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(
        lambda b: b.find_element(By.ID, "new-token").get_attribute("value") != secret)
    fresh = browser.find_element(By.ID, "new-token").get_attribute("value")
    assert fresh.startswith("lat_") and fresh != secret
    assert requests.get(api, headers={"Authorization": f"bearer {secret}"}).status_code == 401
    assert requests.get(api, headers={"Authorization": f"bearer {fresh}"}).status_code == 200
    row = browser.find_element(By.XPATH, "//tr[td[text()='browser-token']]")
    row.find_element(By.XPATH, ".//button[text()='Delete']").click()
    accept_confirm(browser)
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(
        lambda b: "Token deleted." in b.find_element(By.CSS_SELECTOR, ".flash").text)
    assert requests.get(api, headers={"Authorization": f"bearer {fresh}"}).status_code == 401

    # instances: create one from the form and watch it reach Running without a reload
    browser.find_element(By.LINK_TEXT, "Instances").click()
    Select(browser.find_element(By.ID, "region")).select_by_visible_text("北京一区")
    Select(browser.find_element(By.ID, "sku")).select_by_value("66")
    assert browser.find_element(By.ID, "price").text == "2.50/h"
    browser.find_element(By.ID, "displayName").send_keys("from-the-browser")
    browser.find_element(By.ID, "create").click()
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(lambda b: "Creating" in b.find_element(By.CSS_SELECTOR, ".flash").text)
    flash = browser.find_element(By.CSS_SELECTOR, ".flash").text
    name = re.search(r"instance-[0-9a-f]{8}", flash).group(0)
    browser.execute_script("window.__noReload = 42")
    wait_status(browser, name, "Running")
    assert browser.execute_script("return window.__noReload") == 42, "the page reloaded"
    shoot(browser, "instances")

    # power off, on, delete
    before = click_in_row(browser, name, ".//button[@data-action='power_off']")
    wait_for_redirect(browser, before)
    wait_status(browser, name, "Stopped")
    before = click_in_row(browser, name, ".//button[text()='Power on']")
    wait_for_redirect(browser, before)
    wait_status(browser, name, "Running")
    before = click_in_row(browser, name, ".//button[text()='Delete']")
    accept_confirm(browser)
    wait_for_redirect(browser, before)
    wait_gone(browser, name)
    assert user.instance(name).status_code == 404

    browser.find_element(By.LINK_TEXT, "GPU catalog").click()
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(lambda b: b.find_element(By.XPATH, "//td[text()='66']"))
    shoot(browser, "catalog")

    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/console/login"))
    browser.get(server.url + "/console/instances")
    assert browser.current_url.endswith("/console/login")


def test_output_is_escaped(make_server, browser):
    server = make_server()
    user = server.new_user(balance="100")
    assert user.create(display_name="<script>alert(1)</script>").status_code == 200
    sign_in(browser, server, user)
    assert "<script>alert(1)</script>" in browser.find_element(By.TAG_NAME, "tbody").text
    assert not _alert(browser)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in requests.get(
        server.url + "/console/instances", cookies=browser_cookies(browser)).text


def browser_cookies(browser):
    return {c["name"]: c["value"] for c in browser.get_cookies()}


def test_csrf_cookies_and_tenancy(make_server, browser):
    server = make_server()
    alice = server.new_user(balance="100")
    bob = server.new_user(balance="100")
    name = alice.create().json()["name"]
    alice.wait_status(name, "Running")

    sign_in(browser, server, bob)
    cookies = browser_cookies(browser)
    assert set(cookies) >= {"lattice_session", "lattice_csrf"}
    for cookie in browser.get_cookies():
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    # a form posted without the CSRF token is rejected
    r = requests.post(server.url + "/console/tokens", data={"name": "sneaky"}, cookies=cookies, allow_redirects=False)
    assert r.status_code == 403
    r = requests.post(server.url + "/console/tokens", data={"name": "sneaky", "csrf": "0" * 64}, cookies=cookies, allow_redirects=False)
    assert r.status_code == 403
    assert "sneaky" not in [t["name"] for t in bob.get("/tokens").json()["nodes"]]
    # with it, bob still cannot act on alice's instance
    r = requests.post(f"{server.url}/console/instances/host-cluster/{name}/power_off",
                      data={"csrf": cookies["lattice_csrf"]}, cookies=cookies, allow_redirects=False)
    assert r.status_code == 404 and "NotFound" in r.text and 'role="alert"' in r.text
    assert alice.instance(name).json()["status"] == "Running"
    assert name not in browser.page_source
    # Secure cookies behind a TLS proxy
    r = requests.get(server.url + "/console/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in r.headers["Set-Cookie"]
    # a wrong token does not sign in
    browser.get(server.url + "/console/login")
    browser.find_element(By.ID, "namespace").send_keys(alice.namespace)
    browser.find_element(By.ID, "token").send_keys(bob.token)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(lambda b: "Sign-in failed" in b.find_element(By.CSS_SELECTOR, ".error").text)


def test_ssh_keys_in_the_browser(make_server, browser, tmp_path):
    server = make_server()
    user = server.new_user(balance="100")
    other = server.new_user(balance="100")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", str(tmp_path / "k")],
                   check=True)
    line = (tmp_path / "k.pub").read_text().strip()
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True,
                                 text=True).stdout.split()[1]
    sign_in(browser, server, user)
    browser.get(server.url + "/console/ssh-keys")
    browser.find_element(By.ID, "public-key").send_keys(line)
    before = browser.current_url
    browser.find_element(By.ID, "add-key").click()
    wait_for_redirect(browser, before)
    assert fingerprint in browser.find_element(By.CSS_SELECTOR, ".flash").text
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-key]")
    assert "me@laptop" in row.text and fingerprint in row.text
    assert [k["fingerprint"] for k in user.get("/ssh-keys").json()["nodes"]] == [fingerprint]
    assert other.get("/ssh-keys").json()["nodes"] == []
    shoot(browser, "ssh-keys")
    # junk is refused with the API's message
    browser.find_element(By.ID, "public-key").send_keys("not a key")
    before = browser.current_url
    browser.find_element(By.ID, "add-key").click()
    wait_for_redirect(browser, before)
    assert "publicKey" in browser.find_element(By.CSS_SELECTOR, ".error").text
    # remove it
    browser.find_element(By.CSS_SELECTOR, "tr[data-key] button").click()
    accept_confirm(browser)
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(
        lambda b: not b.find_elements(By.CSS_SELECTOR, "tr[data-key]"))
    assert user.get("/ssh-keys").json()["nodes"] == []


def test_billing_and_images_in_the_browser(make_server, browser):
    server = make_server()
    user = server.new_user(balance="80")
    server.client().post(f"/admin/users/{user.namespace}/debit", {"amount": "5", "reason": "支持服务 (support)"})
    sign_in(browser, server, user)
    browser.find_element(By.LINK_TEXT, "Billing").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/console/billing"))
    assert "75.00 CNY" in browser.find_element(By.ID, "balance").text
    assert "支持服务" in browser.find_element(By.ID, "adjustments").text
    assert browser.find_element(By.ID, "csv").get_attribute("href").startswith(server.url + "/console/billing.csv")
    # The budget (SPEC §12): a bad limit keeps the form and says why; a good one is saved.
    assert "No budget" in browser.find_element(By.ID, "budget-heading").find_element(By.XPATH, "..").text
    limit = browser.find_element(By.ID, "monthly-limit")
    limit.clear()
    limit.send_keys("lots")
    browser.find_element(By.XPATH, "//button[text()='Save budget']").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "[role=alert]"))
    assert "monthlyLimit" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert browser.find_element(By.ID, "monthly-limit").get_attribute("value") == "lots"
    limit = browser.find_element(By.ID, "monthly-limit")
    limit.clear()
    limit.send_keys("50")
    alerts = browser.find_element(By.ID, "alert-at")
    alerts.clear()
    alerts.send_keys("75, 100")
    Select(browser.find_element(By.ID, "budget-action")).select_by_value("block")
    browser.find_element(By.XPATH, "//button[text()='Save budget']").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "budget"))
    assert "50" in browser.find_element(By.ID, "budget").text and "block" in browser.find_element(By.ID, "budget").text
    assert browser.find_element(By.ID, "budget-spent").text == "5.00"
    saved = user.get("/budget").json()
    assert (saved["monthlyLimit"], saved["alertAt"], saved["action"]) == ("50.00", [75, 100], "block"), saved
    shoot(browser, "billing")
    browser.find_element(By.LINK_TEXT, "Images").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/console/images"))
    assert "official" in browser.find_element(By.ID, "images").text
    shoot(browser, "images")


def test_admin_pages_in_the_browser(make_server, browser):
    """An operator's day in the console: a tenant's wallet and quota, every tenant's
    instances (powered off from here, its SSH and Jupyter links gone without a reload),
    a node drained and back, a price changed; refused input keeps the form filled in."""
    server = make_server(args=("--simulated-delay-scale", "0.3"))
    tenant = server.new_user(balance="100")
    name = tenant.create(display_name="训练任务 (training)").json()["name"]
    tenant.wait_status(name, "Running")
    admin = server.client()
    sign_in(browser, server, types.SimpleNamespace(namespace="admin", token=BOOTSTRAP_TOKEN))

    # Tenants: credit with a reason, a refused debit keeps what was typed, a quota
    browser.find_element(By.LINK_TEXT, "Tenants").click()
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-tenant="{tenant.namespace}"]')
    assert "100.00 CNY" in row.text
    row.find_element(By.LINK_TEXT, "Manage").click()
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(lambda b: b.find_element(By.ID, "quota-form"))
    assert browser.find_element(By.ID, "money-namespace").get_attribute("value") == tenant.namespace
    browser.find_element(By.ID, "amount").send_keys("12.50")
    browser.find_element(By.ID, "reason").send_keys("故障退款 refund for the outage")
    before = browser.current_url
    browser.find_element(By.ID, "credit").click()
    wait_for_redirect(browser, before)
    assert "Credited 12.50 CNY" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    browser.find_element(By.ID, "amount").send_keys("-3")
    before = browser.current_url
    browser.find_element(By.ID, "debit").click()
    wait_for_redirect(browser, before)
    assert "amount" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert browser.find_element(By.ID, "amount").get_attribute("value") == "-3"
    shoot(browser, "admin-tenants")
    balance = next(u for u in admin.get("/admin/users?pageSize=100").json()["nodes"]
                   if u["namespace"] == tenant.namespace)["balance"]
    assert balance == "112.50", "the refused debit changed nothing"
    assert any(b.get("reason", "").startswith("故障退款") for b in tenant.get("/bills").json()["nodes"])

    # All instances: the tenant's, powered off by the admin, audited as the admin
    browser.get(server.url + f"/console/admin/instances?namespace={tenant.namespace}")
    assert "训练任务" in browser.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"]').text
    ssh = browser.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"] code[data-for="{name}"]')
    assert ssh.is_displayed()
    shoot(browser, "admin-instances")
    before = click_in_row(browser, name, ".//button[@data-action='power_off']")
    wait_for_redirect(browser, before)
    browser.execute_script("window.__noReload = 7")
    wait_status(browser, name, "Stopped")
    assert browser.execute_script("return window.__noReload") == 7, "the page reloaded"
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"]')
    assert not row.find_element(By.CSS_SELECTOR, f'code[data-for="{name}"]').is_displayed()
    assert not row.find_element(By.CSS_SELECTOR, f'a[data-for="{name}"]').is_displayed()
    assert tenant.instance(name).json()["status"] == "Stopped"
    entries = tenant.get("/audit").json()["nodes"]
    assert any(e["action"] == "instance.power_off" and e["actor"] == "admin" for e in entries), entries

    # Nodes: drain one and bring it back
    browser.find_element(By.LINK_TEXT, "Nodes").click()
    node = browser.find_elements(By.CSS_SELECTOR, "tr[data-node]")[0].get_attribute("data-node")
    before = browser.current_url
    browser.find_element(By.CSS_SELECTOR, f'tr[data-node="{node}"] button').click()
    accept_confirm(browser)
    wait_for_redirect(browser, before)
    assert f"{node} is draining." in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert next(n for n in admin.get("/admin/nodes").json()["nodes"] if n["name"] == node)["health"] == "draining"
    shoot(browser, "admin-nodes")
    before = browser.current_url
    browser.find_element(By.CSS_SELECTOR, f'tr[data-node="{node}"] button').click()
    wait_for_redirect(browser, before)
    assert f"{node} is healthy." in browser.find_element(By.CSS_SELECTOR, ".flash").text

    # Prices: garbage refused with the form kept, then a new price with its history
    browser.find_element(By.LINK_TEXT, "Prices").click()
    browser.find_element(By.CSS_SELECTOR, 'tr[data-sku="66"]').find_element(By.LINK_TEXT, "Change").click()
    WebDriverWait(browser, 10, ignored_exceptions=PATIENT).until(lambda b: b.find_element(By.ID, "price-form"))
    browser.find_element(By.ID, "new-price").send_keys("two euros")
    before = browser.current_url
    browser.find_element(By.ID, "change-price").click()
    wait_for_redirect(browser, before)
    assert "price" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert browser.find_element(By.ID, "new-price").get_attribute("value") == "two euros"
    browser.find_element(By.ID, "new-price").clear()
    browser.find_element(By.ID, "new-price").send_keys("3.00")
    before = browser.current_url
    browser.find_element(By.ID, "change-price").click()
    wait_for_redirect(browser, before)
    assert "SKU 66 now costs 3.00 CNY" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert "admin" in browser.find_element(By.ID, "history").text
    assert next(s for s in admin.get("/skus/computings").json() if s["skusID"] == "66")["price"] in (3, 3.0)
    shoot(browser, "admin-prices")

    # a tenant's session gets no admin page
    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    sign_in(browser, server, tenant)
    assert not browser.find_elements(By.LINK_TEXT, "Tenants")
    browser.get(server.url + "/console/admin/tenants")
    assert "admin" in browser.find_element(By.CSS_SELECTOR, ".error").text


def test_an_instance_page_with_env_ports_logs_and_metrics(make_server, browser):
    server = make_server()
    user = server.new_user()
    sign_in(browser, server, user)
    # The create form takes a template, environment, secret environment, ports and a script.
    Select(browser.find_element(By.ID, "template")).select_by_index(1)
    browser.find_element(By.ID, "env").send_keys("MODE=console\nEPOCHS=2")
    browser.find_element(By.ID, "secretEnv").send_keys("API_KEY=never-shown-123")
    browser.find_element(By.ID, "ports").send_keys("8000:api, 7860:ui:public")
    browser.find_element(By.ID, "startupScript").send_keys("echo console script $MODE")
    browser.find_element(By.ID, "displayName").send_keys("workspace")
    browser.find_element(By.ID, "create").click()
    WebDriverWait(browser, 10).until(lambda b: "Creating instance-" in b.page_source)
    name = re.search(r"Creating (instance-[0-9a-f]{8})", browser.page_source).group(1)
    wait_status(browser, name, "Running")
    browser.find_element(By.LINK_TEXT, "workspace").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith(f"/console/instances/host-cluster/{name}"))
    page = browser.page_source
    assert "MODE=console" in page and "API_KEY" in page and "never-shown-123" not in page
    ports = browser.find_elements(By.CSS_SELECTOR, "a[href*='-8000.'], a[href*='-7860.']")
    assert len(ports) == 2
    WebDriverWait(browser, 15).until(lambda b: "console script console" in b.find_element(By.ID, "logs").text)
    WebDriverWait(browser, 15).until(lambda b: "CPU" in b.find_element(By.ID, "metrics-now").text)
    # The chart is drawn by the page itself: some pixels are no longer blank.
    drawn = browser.execute_script(
        "var c = document.getElementById('metrics-chart'); var d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; var n = 0;"
        "for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;")
    assert drawn > 100
    shoot(browser, "instance")
    # Another tenant's instance page is not found.
    other = server.new_user()
    r = requests.get(server.url + f"/console/instances/host-cluster/{name}/logs.txt",
                     cookies=browser_cookies(browser))
    assert r.status_code == 200 and "console script" in r.text
    browser.delete_all_cookies()
    sign_in(browser, server, other)
    browser.get(server.url + f"/console/instances/host-cluster/{name}")
    assert "not found" in browser.page_source.lower() or "NotFound" in browser.page_source


def terminal_text(browser):
    """What the web terminal shows, read from xterm.js itself."""
    return browser.execute_script(
        "var t = window.latticeTerminal; if (!t) return ''; t.selectAll(); var s = t.getSelection();"
        " t.clearSelection(); return s;")


def terminal_socket(server, name, cookies, csrf, origin=True, cluster="host-cluster"):
    """Opens the terminal's WebSocket as a script would; answers the first text message."""
    import websocket
    url = server.url.replace("http://", "ws://") + f"/console/instances/{cluster}/{name}/terminal/socket?csrf={csrf}"
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    ws = websocket.create_connection(url, header=headers, origin=server.url if origin else None,
                                     suppress_origin=not origin, timeout=10)
    try:
        while True:
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return json.loads(data)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return None
    finally:
        ws.close()


def test_the_web_terminal_runs_a_shell_in_the_instance(make_server, browser):
    server = make_server()
    user = server.new_user()
    name = user.create().json()["name"]
    user.wait_status(name, "Running")
    sign_in(browser, server, user)
    browser.get(server.url + f"/console/instances/host-cluster/{name}")
    browser.find_element(By.ID, "open-terminal").click()
    WebDriverWait(browser, 15).until(lambda b: b.find_element(By.ID, "terminal-status").text == "Connected.")
    # xterm.js takes keys through its hidden textarea, as from a keyboard.
    WebDriverWait(browser, 15).until(lambda b: "#" in terminal_text(b) or "$" in terminal_text(b))
    browser.find_element(By.CSS_SELECTOR, "#terminal textarea").send_keys("echo $HOME\n")
    WebDriverWait(browser, 15).until(lambda b: "\n/root" in terminal_text(b))
    assert "echo $HOME" in terminal_text(browser)
    shoot(browser, "terminal")
    browser.find_element(By.CSS_SELECTOR, "#terminal textarea").send_keys("exit\n")
    WebDriverWait(browser, 15).until(lambda b: "exit status 0" in b.find_element(By.ID, "terminal-status").text)

    # The socket is behind the session and its CSRF rules: the token of this session,
    # from this server's page (Origin), and only for the namespace's own instances.
    cookies = browser_cookies(browser)
    csrf = cookies["lattice_csrf"]
    assert terminal_socket(server, name, cookies, "0" * 64)["code"] == "Forbidden"
    assert terminal_socket(server, name, cookies, csrf, origin=False)["code"] == "Forbidden"
    assert terminal_socket(server, name, {}, csrf)["code"] == "Unauthorized"
    assert terminal_socket(server, "instance-00000000", cookies, csrf)["code"] == "NotFound"
    assert terminal_socket(server, name, cookies, csrf, cluster="nowhere")["code"] == "NotFound"
    other = server.new_user()
    browser.delete_all_cookies()
    sign_in(browser, server, other)
    theirs = browser_cookies(browser)
    assert terminal_socket(server, name, theirs, theirs["lattice_csrf"])["code"] == "NotFound"
    # A terminal to a Stopped instance is refused in words.
    assert user.post(f"/clusters/host-cluster/instances/{name}/power_off", {}).status_code == 200
    user.wait_status(name, "Stopped")
    refused = terminal_socket(server, name, cookies, csrf)
    assert refused["code"] == "InvalidState" and "Stopped" in refused["message"]


def test_live_status_comes_from_the_event_stream_not_polling(make_server, browser):
    server = make_server(args=("--simulated-delay-scale", "0.3"))
    user = server.new_user(balance="500")
    r = user.create()
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    user.wait_status(name, "Running")
    sign_in(browser, server, user)
    browser.execute_script("window.__noReload = 42")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-events") == "/console/events"
    # Let the page's stream connect (it reads the statuses once when it opens).
    time.sleep(1)
    assert user.post(f"/clusters/host-cluster/instances/{name}/power_off", {}).status_code == 200
    wait_status(browser, name, "Stopped")
    assert user.delete("/clusters/host-cluster/instances", params={"name": name}).status_code == 200
    wait_gone(browser, name)
    assert browser.execute_script("return window.__noReload") == 42, "the page reloaded"
    routes = [e.get("route") for e in json.loads("[" + ",".join(
        line for line in pathlib.Path(server.log.name).read_text().splitlines() if line.startswith("{")) + "]")]
    assert routes.count("/console/events") >= 1
    assert routes.count("/console/instances.json") <= 2, "the statuses were polled, not streamed"
