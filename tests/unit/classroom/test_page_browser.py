"""The progress page in a real browser (Debian's headless Chromium, driven by Selenium):
two students' rows, a check turning from ✗ to ✓ without a reload, a stuck row
highlighted, a name with markup shown as text. A screenshot is written to
.state/screenshots/ (CI keeps it)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.unit.classroom.conftest import ClassServer
from tests.unit.conftest import SCREENSHOTS, needs_chromium

pytestmark = needs_chromium


def post(cs: ClassServer, student: str, checks: dict[str, bool], at: float | None = None) -> None:
    body = json.dumps({"student": student, "host": f"{student[:8].lower()}-laptop", "lab": "02", "checks": checks, "at": at or time.time()}).encode()
    req = urllib.request.Request(f"{cs.url}/classroom/progress", data=body, headers={"Authorization": f"Bearer {cs.token}", "Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback test server
        assert json.loads(resp.read())["stored"]


def wait_for(driver: Any, script: str, timeout: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


ROW = "return Array.from(document.querySelectorAll('#class tbody tr')).find(tr => tr.querySelector('td.student').textContent === arguments[0]) || null"


@pytest.mark.browser_size(1100, 560)
def test_the_page_follows_the_class_live(class_server: ClassServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    post(class_server, "Ann", {"namespaces_recorded": True, "cgroup_oom_kill": False})
    post(class_server, "Bob", {"namespaces_recorded": True, "cgroup_oom_kill": True})
    browser.get(f"{class_server.url}/?token={class_server.token}")
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "The class"
    wait_for(browser, "return document.getElementById('live').textContent === 'live'")
    names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#class tbody td.student")]
    assert names == ["Ann", "Bob"]
    browser.execute_script("window.labkitNoReload = 42")  # gone if the page reloads

    post(class_server, "Ann", {"namespaces_recorded": True, "cgroup_oom_kill": True})
    wait_for(browser, "const tr = (function(n){" + ROW.replace("return ", "return ", 1) + "})('Ann'); return tr && tr.querySelectorAll('.check.ok').length === 2")
    assert browser.execute_script("return window.labkitNoReload") == 42

    post(class_server, "Cleo", {"namespaces_recorded": False}, at=time.time() - 20 * 60)  # no change for 20 minutes
    post(class_server, "<b>Eve</b>", {"namespaces_recorded": False})
    wait_for(browser, "return document.querySelectorAll('#class tbody tr').length === 4")
    wait_for(browser, "const tr = (function(n){" + ROW + "})('Cleo'); return tr && tr.classList.contains('stuck')")
    eve = browser.execute_script(ROW, "<b>Eve</b>")
    assert eve is not None and browser.execute_script("return arguments[0].querySelector('b')", eve) is None  # text, not markup
    assert browser.execute_script(ROW, "Ann").get_attribute("class") in ("done", "done ")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "classroom-progress.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    print(f"screenshot: {shot}")
