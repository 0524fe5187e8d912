"""`make console-screenshots`: a PNG of each console page, taken by a headless Chromium from a real worker over a
store seeded as the console's browser test seeds it (an applied item, a rejected one, deliveries, a dead letter).

    python -m tests.support.console_screenshots var/console-screenshots

Writes login.png, overview.png, items.png, item-report.png, outbox.png and ats.png into the folder given.
"""

from __future__ import annotations

import base64
import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.logs import configure
from tests.support import browser as browser_support
from tests.support.console import CONSOLE_TOKEN, PARTNER, console_worker, seed
from tests.support.partner import running
from tests.support.worker import drop, stock_csv


def _shoot(browser: WebDriver, out: Path, name: str) -> Path:
    """The whole page in one picture, beyond the window's height (Chromium's DevTools capture)."""
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    width, _ = browser_support.WINDOW
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, 4000), "scale": 1}
    shot = browser.execute_cdp_cmd(  # type: ignore[attr-defined]  # Chrome's own driver has it
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = out / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def take(out: Path) -> list[Path]:
    """Every page's screenshot in `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="console-screenshots-") as temporary:
        folder = Path(temporary)
        with running(token="partner-s3cret") as partner:  # noqa: S106 - the fake partner's token
            seeded = seed(folder, partner)
        with console_worker(folder, seeded) as (worker, base), browser_support.chromium(folder) as browser:
            drop(seeded.drop, "levels-evening.csv", stock_csv({"BREAD": 4, "EGGS": 9}, "2026-01-02T18:00:00Z"))
            worker.wait_log("file_archived", timeout=15, file="levels-evening.csv")
            browser.get(base + "/console/login")
            taken.append(_shoot(browser, out, "login"))
            browser_support.log_in(browser, base, CONSOLE_TOKEN)
            taken.append(_shoot(browser, out, "overview"))
            browser.get(f"{base}/console/partners/{PARTNER}/items")
            taken.append(_shoot(browser, out, "items"))
            browser.find_element(By.CSS_SELECTOR, "details summary").click()  # the rejected item's report
            taken.append(_shoot(browser, out, "item-report"))
            browser.get(f"{base}/console/partners/{PARTNER}/outbox")
            taken.append(_shoot(browser, out, "outbox"))
            browser.get(f"{base}/console/partners/{PARTNER}/ats?sku=EGGS")
            taken.append(_shoot(browser, out, "ats"))
    return taken


def main(argv: list[str]) -> int:
    configure("json", None, "critical")  # the seeding's own log lines (a dead letter on purpose) are not news here
    why = browser_support.available()
    if why is not None:
        print(why, file=sys.stderr)
        return 2
    for path in take(Path(argv[1] if len(argv) > 1 else "var/console-screenshots")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
