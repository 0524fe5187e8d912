"""Debian's headless Chromium driven by selenium through Debian's chromedriver, for the console's browser test and
`make console-screenshots`; and logging in to the console through its form.

    with chromium(tmp_path) as browser:
        log_in(browser, base, token)
        browser.get(base + "/console/")

The machine's network is closed: everything Chromium would fetch by itself (updates, sync, field trials) is off,
and its profile is a temporary folder of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.worker import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 900)


def available() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    return (
        f"missing {', '.join(missing)} (make test installs Debian's chromium and chromium-driver)" if missing else None
    )


@contextlib.contextmanager
def chromium(folder: Path | None = None) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a profile of its own in a temporary folder (under `folder` when given); quit after."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=folder))
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--metrics-recording-only",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(15)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def log_in(browser: webdriver.Chrome, base: str, token: str, page: str = "/console/") -> None:
    """Open `page`, be sent to the login form, give the token: waits until the browser is back on `page`."""
    browser.get(base + page)
    browser.find_element(By.ID, "token").send_keys(token)
    click_and_wait(browser, By.ID, "login")
    wait_until(
        lambda: browser.current_url == base + page and not browser.find_elements(By.ID, "token"),
        10,
        lambda: f"back on {page} after logging in (at {browser.current_url})",
    )


def click_and_wait(browser: webdriver.Chrome, by: str, value: str) -> None:
    """Click a link or a form's button, then wait until the page it leads to has replaced this one and loaded."""
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, value).click()
    WebDriverWait(browser, 10).until(lambda _: _replaced(old))
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")


def _replaced(element: WebElement) -> bool:
    """Whether `element` left the page: selenium's staleness_of, except that Chromium, asked while it swaps the
    document, may answer "Node with given id does not belong to the document" instead of a stale reference (seen
    once under load): that too says the old page is gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False
