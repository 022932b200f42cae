"""Headless Chromium for the browser tests: Debian's ``chromium`` and
``chromium-driver`` driven by Selenium, never downloading anything.

``browser`` is a pytest fixture (import it into a test module): a fresh
profile in ``tmp_path``, quit in the finaliser so no chromedriver or Chromium
process, thread or socket outlives the test. ``wait_for`` waits on the page
with a deadline (WebDriverWait), never a sleep.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

CHROMIUM = os.environ.get("LIVEUPLOAD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LIVEUPLOAD_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 20.0

CHROMIUM_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1000,800",
)


def missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[test])"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) or shutil.which(path)):
            return f"{path} is missing: apt-get install chromium chromium-driver"
    return None


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    reason = missing()
    if reason:  # a failure, not a skip: the README's test command installs them
        pytest.fail(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager never downloads
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT, what: str = "") -> Any:
    """``condition(driver)`` once truthy, within ``timeout`` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        condition, message=f"timed out waiting for {what or condition}"
    )


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def texts(driver: Any, selector: str) -> list[str]:
    """The text of every element matching ``selector`` (read in one script call,
    so a re-render between elements cannot make one stale)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)", selector
    )


def connected(driver: Any) -> bool:
    return bool(driver.execute_script(
        "var r = document.querySelector('[data-phx-main]');"
        "return !!r && r.classList.contains('phx-connected');"
    ))
