"""The engine's oversold Watch (gateway/service/oversold.py): a SKU is reported when it was not oversold at the
start of an item and is at its end, once, with its last level and allocation; the log caps its events."""

from __future__ import annotations

import structlog

from gateway import logs
from gateway.service import oversold
from gateway.service.oversold import Oversold, OversoldReport, Watch
from gateway.store.records import StockRecord


def row(sku: str, quantity: int, allocated: int) -> StockRecord:
    return StockRecord(sku=sku, quantity=quantity, allocated=allocated)


def test_a_sku_that_goes_below_its_allocation_is_reported_with_its_last_numbers() -> None:
    """Read at 10/8, written at 5/8 then 3/8: one entry, 3/8."""
    watch = Watch()
    watch.seen([row("A", 10, 8)])
    watch.saved([row("A", 5, 8)])
    watch.seen([row("A", 5, 8)])
    watch.saved([row("A", 3, 8)])
    assert watch.report() == OversoldReport((Oversold("A", 3, 8),), 0)


def test_a_sku_oversold_at_the_start_or_back_above_at_the_end_is_not_reported() -> None:
    """Oversold when first read: never reported; below then above again within the item: not reported."""
    watch = Watch()
    watch.seen([row("A", 5, 8), row("B", 10, 8)])
    watch.saved([row("A", 4, 8), row("B", 5, 8)])
    watch.seen([row("A", 4, 8), row("B", 5, 8)])
    watch.saved([row("A", 9, 8), row("B", 9, 8)])
    watch.seen([row("A", 9, 8)])
    watch.saved([row("A", 1, 8)])  # A was oversold at the start: still not news
    assert watch.report() == OversoldReport()
    assert not watch.report()


def test_a_set_based_merge_adds_its_skus_and_counts_the_ones_it_did_not_list() -> None:
    watch = Watch()
    watch.merged([("B", 1, 2), ("A", 0, 4)], count=5)
    assert watch.report() == OversoldReport((Oversold("A", 0, 4), Oversold("B", 1, 2)), 3)


def test_the_log_gives_one_warning_per_sku_then_counts_the_rest() -> None:
    """The first LOGGED SKUs each get an `oversold` warning; the rest (and the unlisted) one `oversold_unlisted`."""
    logs.configure("json", None, "debug")
    skus = tuple(Oversold(f"S{n:04d}", 0, 1) for n in range(oversold.LOGGED + 3))
    with structlog.testing.capture_logs() as events:
        oversold.log_oversold(OversoldReport(skus, unlisted=2), structlog.get_logger().bind(partner="p"))
    warnings = [e for e in events if e["event"] == "oversold"]
    assert len(warnings) == oversold.LOGGED
    assert {name: value for name, value in warnings[0].items() if name != "hint"} == {
        "event": "oversold",
        "log_level": "warning",
        "partner": "p",
        "sku": "S0000",
        "quantity": 0,
        "allocated": 1,
    }
    assert [(e["event"], e["skus"]) for e in events if e["event"] == "oversold_unlisted"] == [("oversold_unlisted", 5)]
