"""The guide site, built in strict mode and opened in a real browser (Debian's headless
Chromium, driven by Selenium): a lab's English page with its checks, the switch to its
Chinese page, and a search. Screenshots go to .state/screenshots/ (CI keeps them)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from labkit.docs import site
from tests.unit.conftest import SCREENSHOTS, needs_chromium


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> site.Site:
    return site.build(tmp_path_factory.mktemp("docs"))


def test_the_site_builds_strict_with_every_lab_in_both_languages(built: site.Site) -> None:
    for lab in site.discover():
        english = (built.out / "labs" / f"{lab.path.name}.html").read_text()
        chinese = (built.out / "zh/labs" / f"{lab.path.name}.html").read_text()
        for cid in lab.checks:
            assert cid in english and cid in chinese  # each check listed beside the steps, in both
        assert "检查项" in chinese and "Checks" in english
    assert (built.out / "search/search_index.json").exists() and (built.out / "zh/index.html").exists()


@pytest.fixture
def served(built: site.Site) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with site.serving(built, "127.0.0.1", port) as url:
        yield url


@needs_chromium
def test_a_lab_page_switches_language_and_the_site_searches(served: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, poll_frequency=0.2)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{served}/labs/02-containers.html")
    assert "Containers" in browser.find_element(By.CSS_SELECTOR, "article h1").text
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "button.md-code__button[data-md-type=copy]"))  # copy buttons on the commands
    browser.save_screenshot(str(SCREENSHOTS / "site-lab02-en.png"))

    switch = browser.find_element(By.CSS_SELECTOR, 'a.md-select__link[hreflang="zh"]')
    browser.execute_script("arguments[0].click()", switch)  # the language menu opens on hover
    wait.until(ec.url_contains("/zh/labs/02-containers.html"))
    title = browser.find_element(By.CSS_SELECTOR, "article h1").text
    assert "实验 02" in title, title
    assert "检查项" in browser.find_element(By.CSS_SELECTOR, "article").text
    browser.save_screenshot(str(SCREENSHOTS / "site-lab02-zh.png"))

    browser.get(f"{served}/index.html")
    query = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    query.click()
    query.send_keys("cgroup")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    results = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    assert "cgroup" in results.lower()
    browser.save_screenshot(str(SCREENSHOTS / "site-search.png"))
