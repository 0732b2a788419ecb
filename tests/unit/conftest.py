"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.cache import manifest as cache_manifest
from labkit.cluster import inventory, runner
from labkit.cluster.config import load
from labkit.cluster.resolved import HostContext
from labkit.cluster.vagrant import SshEndpoint
from labkit.paths import MANIFEST

ROOT = Path(__file__).resolve().parents[1].parent


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The roles' templates as Ansible renders them for the default sandbox.yml (kubeadm
    configs, Istio values): rendered once for every test that reads them."""
    tmp = tmp_path_factory.mktemp("render")
    shutil.copy(ROOT / "sandbox.yml", tmp / "sandbox.yml")  # without a developer's sandbox.local.yml
    resolved = load(tmp / "sandbox.yml", HostContext()).to_dict()
    endpoints = {n["name"]: SshEndpoint("127.0.0.1", 22, "vagrant", "") for n in resolved["nodes"]}
    images = cache_manifest.image_refs(cache_manifest.load_manifest([MANIFEST]), resolved["versions"])
    inv = inventory.render(resolved, endpoints, vagrant=False, images=images)
    for group in inv["all"]["children"]["cluster"]["children"].values():
        for host in group["hosts"].values():
            host["ansible_connection"] = "local"
    inv["all"]["vars"]["ansible_python_interpreter"] = runner.ansible_tool("python")
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inv))
    out = tmp / "out"
    out.mkdir()
    proc = subprocess.run(
        [runner.ansible_tool("ansible-playbook"), "-i", str(tmp / "inventory.yml"), str(ROOT / "tests/unit/render/render.yml"), "-e", f"render_out={out}"],
        cwd=ROOT,
        env=runner.ansible_env(ROOT, tmp / "state"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {"resolved": resolved, "files": {p.name: p.read_text() for p in out.iterdir()}}


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="Debian's chromium and chromium-driver are not installed (`./kit test` installs them as root; scripts/host-packages.txt)"
)
SCREENSHOTS = Path(os.environ.get("LABKIT_SCREENSHOTS", ROOT / ".state/screenshots"))
# Headless, offline: every host name but loopback resolves to nothing, so a page can never
# reach past this machine (the network rule), whatever it links to.
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions", "--lang=en-US")
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Selenium through Debian's chromedriver
    (``browser_size`` marker: the window size)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    marker = request.node.get_closest_marker("browser_size")
    width, height = marker.args if marker else (1200, 800)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_ARGS, OFFLINE, f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
