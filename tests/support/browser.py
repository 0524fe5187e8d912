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
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

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
    """Open `page`, be sent to the login form, give the token: back on `page`."""
    browser.get(base + page)
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    browser.find_element(By.ID, "login").click()
    if not browser.current_url.startswith(base + page.split("?", 1)[0]):
        raise AssertionError(
            f"not back on {page} after logging in: {browser.current_url}\n{browser.page_source[:2000]}"
        )
