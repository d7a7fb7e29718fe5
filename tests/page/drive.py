"""Drive fild's status page in Debian's headless Chromium with Selenium (tests/page.rs runs it).

Argument: one JSON object: url, user, password, shots (the test's own folder for
screenshots), members (the etcd member programs, in order), chatty (a program printing
markup and numbered lines), evil_port (a free port for a page of another origin).
Every check is an assertion; the screenshots' paths are printed.
"""

import base64
import http.server
import json
import os
import re
import sys
import threading
import time

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException,
                                        StaleElementReferenceException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

cfg = json.loads(sys.argv[1])
URL, SHOTS = cfg["url"], cfg["shots"]
AUTH = "Basic " + base64.b64encode(f"{cfg['user']}:{cfg['password']}".encode()).decode()
# Selenium Manager must not look for a driver or browser of its own.
os.environ["SE_OFFLINE"] = "true"


def browser(lang):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              f"--lang={lang}", "--window-size=1280,1000",
              f"--user-data-dir={SHOTS}/profile-{lang}"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": lang})
    d = webdriver.Chrome(options=o, service=Service("/usr/bin/chromedriver"))
    d.set_page_load_timeout(30)
    # The credentials a browser would have cached after its Basic prompt.
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": AUTH}})
    # Any alert() a program's text managed to run would set this.
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "window.__alerted = 0; window.alert = function () { window.__alerted++; };"})
    return d


def wait(what, f, timeout=30):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            v = f()
            if v:
                return v
        except StaleElementReferenceException:
            pass
        except Exception as e:  # noqa: BLE001 - shown if it never succeeds
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def shot(d, name):
    p = os.path.join(SHOTS, name)
    d.save_screenshot(p)
    print(f"screenshot: {p}", flush=True)


def row_state(d, name):
    for tr in d.find_elements(By.CSS_SELECTOR, "#programs tbody tr"):
        if tr.get_attribute("data-name") == name:
            return tr.find_element(By.CSS_SELECTOR, ".state").text
    return None


def press(d, name, op):
    def go():
        for tr in d.find_elements(By.CSS_SELECTOR, "#programs tbody tr"):
            if tr.get_attribute("data-name") == name:
                tr.find_element(By.CSS_SELECTOR, f"button[data-op={op}]").click()
                return True
        return False
    wait(f"the {op} button of {name}", go)


def message(d):
    m = d.find_element(By.ID, "msg")
    return m.get_attribute("class"), m.text


d = browser("en-US")
try:
    d.get(URL)
    # Every program, and the etcd table with its three members, healthy.
    names = set(cfg["members"]) | {cfg["chatty"]}
    wait("every program's row", lambda: names <= {
        tr.get_attribute("data-name") for tr in d.find_elements(By.CSS_SELECTOR, "#programs tbody tr")})
    assert d.find_element(By.TAG_NAME, "h2").text == "Programs"
    wait("three healthy members", lambda: len(d.find_elements(By.CSS_SELECTOR, "#members tbody tr")) == 3
         and d.find_element(By.ID, "verdict").get_attribute("data-verdict") == "healthy")
    leaders = [tr for tr in d.find_elements(By.CSS_SELECTOR, "#members tbody tr")
               if tr.find_elements(By.TAG_NAME, "td")[3].text == "yes"]
    assert len(leaders) == 1, "one leader in the table"
    shot(d, "page-en.png")

    # The chatty program's markup shows as text; nothing of it runs or becomes an element.
    d.find_element(By.CSS_SELECTOR, f"#logprog option[value='{cfg['chatty']}']").click()
    log = d.find_element(By.ID, "log")
    wait("the markup as text", lambda: "<img src=x onerror=alert(1)>" in log.text)
    assert "<script>alert(2)</script>" in log.text
    assert d.execute_script("return document.querySelectorAll('img, #log *').length") == 0
    assert d.execute_script("return window.__alerted") == 0
    try:
        d.switch_to.alert
        raise AssertionError("an alert is open")
    except NoAlertPresentException:
        pass

    # Follow: a line printed after the pane opened appears in it.
    def last_line():
        n = re.findall(r"line-(\d+)", log.text)
        return int(n[-1]) if n else 0
    first = wait("a numbered line", last_line)
    wait("a later line, followed", lambda: last_line() >= first + 2, timeout=20)
    print(f"followed: line-{first} then line-{last_line()}", flush=True)

    # Stop the first member: it stops. Stop the second: the quorum guard refuses, it runs on.
    m1, m2 = cfg["members"][0], cfg["members"][1]
    press(d, m1, "stop")
    wait(f"{m1} STOPPED", lambda: row_state(d, m1) == "STOPPED", timeout=40)
    wait("the stop's message", lambda: message(d)[0] == "ok" and m1 in message(d)[1])

    def member_health(program):
        for tr in d.find_elements(By.CSS_SELECTOR, "#members tbody tr"):
            td = tr.find_elements(By.TAG_NAME, "td")
            if td[1].text == program:
                return td[2].text
        return None
    # The etcd table follows within seconds (the action nudges fild's periodic view).
    wait(f"{m1}'s member unhealthy in the etcd table", lambda: member_health(m1) == "no", timeout=15)
    assert d.find_element(By.ID, "verdict").get_attribute("data-verdict") == "degraded"
    press(d, m2, "stop")
    wait("the guard's refusal", lambda: message(d)[0] == "err" and "quorum" in message(d)[1].lower())
    refusal = message(d)[1]
    print(f"refusal shown: {refusal.splitlines()[0]}", flush=True)
    time.sleep(2.5)  # a refresh or two
    assert row_state(d, m2) == "RUNNING", row_state(d, m2)
    shot(d, "page-guard-refusal.png")
    press(d, m1, "start")
    wait(f"{m1} RUNNING again", lambda: row_state(d, m1) == "RUNNING", timeout=60)
    wait(f"{m1}'s member healthy again", lambda: member_health(m1) == "yes", timeout=30)

    # A phone's viewport: nothing wider than the screen.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    d.refresh()
    wait("the rows at 390 px", lambda: row_state(d, cfg["chatty"]) == "RUNNING")
    d.find_element(By.CSS_SELECTOR, f"#logprog option[value='{cfg['chatty']}']").click()
    wait("the log at 390 px", lambda: "line-" in d.find_element(By.ID, "log").text)
    widths = d.execute_script(
        "return [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert widths[2] == 390 and max(widths[:2]) <= widths[2], f"horizontal scroll at 390 px: {widths}"
    shot(d, "page-phone.png")
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # A page of another origin, with the browser's cached credentials, tries to stop a
    # program: by a form (no JSON type) and by fetch (JSON needs a preflight fild refuses).
    target = f"{URL}v1/processes/stop"
    evil = f"""<!DOCTYPE html><html><body>
<form id=f method=POST action="{target}" enctype="text/plain" target=sink>
<input name='{{"names":["{cfg["chatty"]}"],"x":"' value='"}}'></form>
<iframe name=sink></iframe>
<script>
window.result = "pending";
fetch("{target}", {{method: "POST", headers: {{"Content-Type": "application/json"}},
  body: JSON.stringify({{names: ["{cfg["chatty"]}"]}})}})
  .then(r => window.result = "answered " + r.status, e => window.result = "blocked");
document.getElementById("f").submit();
</script></body></html>""".encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", cfg["evil_port"]), Evil)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    d.get(f"http://127.0.0.1:{cfg['evil_port']}/")
    wait("the other origin's fetch to end", lambda: d.execute_script("return window.result") != "pending")
    print(f"other origin's fetch: {d.execute_script('return window.result')}", flush=True)
    assert d.execute_script("return window.result") == "blocked"
    time.sleep(2)
    srv.shutdown()
    d.get(URL)
    wait("the rows again", lambda: row_state(d, cfg["chatty"]) is not None)
    assert row_state(d, cfg["chatty"]) == "RUNNING", "the other origin stopped a program"
finally:
    d.quit()

# A browser that asks for Chinese gets Chinese; the switch gives English back and sticks.
d = browser("zh-CN")
try:
    d.get(URL)
    wait("the Chinese headings", lambda: d.find_element(By.TAG_NAME, "h2").text == "程序")
    wait("the Chinese verdict", lambda: d.find_element(By.ID, "verdict").text == "健康")
    assert d.execute_script("return document.documentElement.lang") == "zh-CN"
    assert "停止" in [b.text for b in d.find_elements(By.CSS_SELECTOR, "button[data-op=stop]")]
    wait("the backups in Chinese", lambda: "本机: 目录" in d.find_element(By.ID, "backups").text)
    shot(d, "page-zh.png")
    d.find_element(By.CSS_SELECTOR, "#lang option[value=en]").click()
    wait("English after the switch", lambda: d.find_element(By.TAG_NAME, "h2").text == "Programs")
    d.refresh()
    wait("English kept", lambda: d.find_element(By.TAG_NAME, "h2").text == "Programs")
finally:
    d.quit()
print("page: all checks passed", flush=True)
