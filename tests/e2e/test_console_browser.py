"""The operator console in a real browser: Debian's headless Chromium (selenium, chromedriver) against a real
worker (`gateway run` with the platform API) over a store seeded with an applied item, a rejected one with a
hostile file name, a delivery and a dead letter (tests.support.console). It logs in through the form, reads each
page's values, searches, asks for an explanation, and retries the dead letter through its button: the page says it
is queued again, and so does the store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.domain.messages import OutboxState
from gateway.store.sql import SqlStore
from tests.support import browser as browser_support
from tests.support.console import APPLIED_RUN, CONSOLE_TOKEN, HOSTILE, PARTNER, Seeded, console_worker, seed
from tests.support.partner import running
from tests.support.worker import WorkerProcess, drop, stock_csv


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    why = browser_support.available()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with browser_support.chromium(tmp_path) as found:
        yield found


click = browser_support.click_and_wait


def text(browser: WebDriver, selector: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, selector).text)


def no_alert(browser: WebDriver) -> None:
    """No script of a page ran (a hostile file name's onerror would raise an alert)."""
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is the check


def state_of(seeded: Seeded, message_id: int) -> OutboxState:
    store = SqlStore.open(seeded.store_url)
    try:
        with store.read() as tx:
            [row] = [r for r in tx.outbox.rows(tx.partners.id_of(PARTNER), state=None) if r.id == message_id]
        return row.state
    finally:
        store.close()


def test_an_operator_logs_in_reads_every_page_and_retries_a_dead_letter_in_a_real_browser(
    browser: WebDriver, tmp_path: Path
) -> None:
    """Login form -> overview (the source's last poll, the dead letter count, the chart) -> items (escaped hostile
    name, search by run_id) -> ATS explained -> outbox: the dead letter's 400 and answer, Retry -> queued again."""
    with running(token="partner-s3cret") as partner:  # noqa: S106 - the fake partner's token
        seeded = seed(tmp_path, partner)
    with console_worker(tmp_path, seeded) as (worker, base):
        drop(seeded.drop, "fresh.csv", stock_csv({"BREAD": 4}, "2026-01-02T08:00:00Z"))
        worker.wait_log("file_archived", timeout=15, file="fresh.csv")
        check_pages(browser, worker, base, seeded)


def check_pages(browser: WebDriver, worker: WorkerProcess, base: str, seeded: Seeded) -> None:
    browser_support.log_in(browser, base, CONSOLE_TOKEN)

    # overview: the worker's own source state, the outbox, the chart
    source = text(browser, f"#partner-{PARTNER} table.sources tr:nth-child(2)")
    assert source.startswith("drop folder"), source
    assert "not polled" not in source
    assert "never" not in source
    assert "Dead letters: 1" in text(browser, f"#partner-{PARTNER} .outbox-summary")
    chart = browser.find_element(By.ID, f"chart-{PARTNER}")
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.items")) == 24
    assert "items received (3)" in text(browser, ".legend")  # two seeded, one dropped now

    # items: the rejected one's hostile name as text, the search by run_id
    click(browser, By.LINK_TEXT, "items")
    files = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.file")]
    assert files == ["drop:fresh.csv", HOSTILE, "levels-good.csv"], files
    outcomes = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.outcome")]
    assert outcomes == ["applied", "rejected", "applied"]
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    no_alert(browser)
    browser.find_element(By.ID, "q").send_keys(APPLIED_RUN)
    click(browser, By.ID, "search")
    assert [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.file")] == ["levels-good.csv"]

    # ATS explained
    click(browser, By.LINK_TEXT, "ATS")
    browser.find_element(By.ID, "sku").send_keys("BREAD")
    click(browser, By.ID, "explain")
    assert (text(browser, "#stock"), text(browser, "#ats")) == ("4", "4")

    # outbox: the dead letter, retried through its button
    click(browser, By.LINK_TEXT, "outbox")
    row = f"#dead-{seeded.dead_id}"
    assert text(browser, f"{row} td.status") == "400"
    assert "unknown sku DEAD-1" in text(browser, f"{row} td.answer")
    assert state_of(seeded, seeded.dead_id) == OutboxState.DEAD
    click(browser, By.ID, f"retry-{seeded.dead_id}")
    assert text(browser, "#notice") == "Queued again: 1."
    assert browser.find_elements(By.ID, "no-dead-letters")
    pending = text(browser, "table.states tr.state-pending")
    assert pending.startswith("ats pending"), pending
    assert state_of(seeded, seeded.dead_id) == OutboxState.PENDING
    assert worker.events("outbox_retry", partner=PARTNER, revived=1)
    assert worker.events("console_login", holder="operator")
    assert CONSOLE_TOKEN not in worker.stdout_path.read_text(encoding="utf-8") + worker.stderr()
