"""Oversold SKUs (a stock level below the allocation) through the engine on a real store: marked in the ATS view,
counted by the store, and an `oversold` warning when an item or a command makes a SKU oversold, once per SKU."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import bootstrap
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.logs import configure
from gateway.service import queries, reads
from tests.conftest import AppFactory, FakeClock, at

pytestmark = pytest.mark.both_stores

Events = list[MutableMapping[str, Any]]


@pytest.fixture
def events() -> Iterator[Events]:
    """The structlog events of the test, every level."""
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def oversold_events(events: Events) -> list[tuple[str, str, int, int]]:
    return [(e["partner"], e["sku"], e["quantity"], e["allocated"]) for e in events if e["event"] == "oversold"]


def view(app: bootstrap.App, partner: str, sku: str) -> queries.AtsView:
    [found] = reads.ats(app.store, partner, [sku])
    return found


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_snapshot_below_the_allocation_makes_the_sku_oversold_and_says_so_once(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock, events: Events
) -> None:
    """Allocation 8, a snapshot brings the level to 5: the view marks it, the store counts it, one warning."""
    clock.set("2026-01-01T02:00:00Z")  # after the snapshot's as_of: not refused as in the future
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "W1", 10, at("2026-01-01T00:00:00Z"))
    app.commands.set_stock("p", "W2", 10, at("2026-01-01T00:00:00Z"))
    app.commands.place("p", "O1", [RequestedLine("W1", 8), RequestedLine("W2", 2)])
    assert oversold_events(events) == []
    snapshot = write(
        tmp_path, "stock.csv", "sku,quantity,as_of\nW1,5,2026-01-01T01:00:00Z\nW2,5,2026-01-01T01:00:00Z\n"
    )
    result = app.ingestor.ingest("p", Kind.STOCK, snapshot)
    assert result.outcome == "applied"
    one, two = view(app, "p", "W1"), view(app, "p", "W2")
    assert (one.stock, one.allocated, one.ats, one.oversold) == (5, 8, 0, True)
    assert (two.stock, two.allocated, two.ats, two.oversold) == (5, 2, 3, False)
    assert reads.oversold_counts(app.store, ["p"]) == {"p": 1}
    assert oversold_events(events) == [("p", "W1", 5, 8)]
    [warning] = [e for e in events if e["event"] == "oversold"]
    assert warning["log_level"] == "warning"
    # the event comes before the item's own line, which it belongs to
    names = [e["event"] for e in events]
    assert names.index("oversold") < names.index("file_applied")


def test_a_sku_oversold_already_is_not_announced_again(make_app: AppFactory, tmp_path: Path, events: Events) -> None:
    """Was oversold, still is (lower still): no new event; back above and below again: a new one."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "W1", 10, at("2026-01-01T00:00:00Z"))
    app.commands.place("p", "O1", [RequestedLine("W1", 8)])
    app.commands.set_stock("p", "W1", 5, at("2026-01-01T01:00:00Z"))
    app.commands.set_stock("p", "W1", 3, at("2026-01-01T02:00:00Z"))
    assert oversold_events(events) == [("p", "W1", 5, 8)]
    lower = write(tmp_path, "lower.csv", "sku,quantity,as_of\nW1,2,2026-01-01T03:00:00Z\n")
    app.ingestor.ingest("p", Kind.STOCK, lower)
    assert oversold_events(events) == [("p", "W1", 5, 8)]
    app.commands.set_stock("p", "W1", 9, at("2026-01-01T04:00:00Z"))
    app.commands.set_stock("p", "W1", 7, at("2026-01-01T05:00:00Z"))
    assert oversold_events(events) == [("p", "W1", 5, 8), ("p", "W1", 7, 8)]
    assert reads.oversold_counts(app.store, ["p"]) == {"p": 1}


def test_many_rows_moving_one_sku_give_one_event_with_its_last_numbers(
    make_app: AppFactory, tmp_path: Path, events: Events
) -> None:
    """Simple mode, no pending allocation: three confirmations of 4 on a level of 6 in one orders file take it to
    2, -2 (oversold), -6: one event for the item, with the level it ends at."""
    app = make_app(p={"stock_mode": "simple", "pending_allocation": False})
    app.commands.set_stock("p", "W1", 6, None)
    for order_id in ("O1", "O2", "O3"):
        app.commands.place("p", order_id, [RequestedLine("W1", 4)])
    moves = write(
        tmp_path,
        "orders.csv",
        "order_id,sku,quantity,status\n" + "".join(f"{order_id},W1,4,confirmed\n" for order_id in ("O1", "O2", "O3")),
    )
    result = app.ingestor.ingest("p", Kind.ORDERS, moves)
    assert (result.outcome, result.counts.applied) == ("applied", 3)
    assert oversold_events(events) == [("p", "W1", -6, 0)]
    assert view(app, "p", "W1").oversold


def test_a_confirmation_that_raises_the_allocation_above_the_level_is_announced(
    make_app: AppFactory, events: Events
) -> None:
    """time_based: a closed line the snapshot includes allocates nothing; confirmed again after it, it allocates
    its 8 again on a level of 5: oversold, announced by the command."""
    app = make_app(p={"stock_mode": "time_based"})
    c = app.commands
    c.set_stock("p", "W1", 10, at("2026-01-01T00:00:00Z"))
    c.place("p", "O1", [RequestedLine("W1", 8)])
    c.set_status("p", "O1", OrderStatus.CLOSED)
    c.confirm("p", "O1", "W1", 8, at("2026-01-01T01:00:00Z"))
    c.set_stock("p", "W1", 5, at("2026-01-01T02:00:00Z"))
    assert (view(app, "p", "W1").allocated, oversold_events(events)) == (0, [])
    c.confirm("p", "O1", "W1", 8, at("2026-01-01T03:00:00Z"))
    assert (view(app, "p", "W1").allocated, view(app, "p", "W1").oversold) == (8, True)
    [warning] = [e for e in events if e["event"] == "oversold"]
    assert (warning["partner"], warning["sku"], warning["quantity"], warning["allocated"]) == ("p", "W1", 5, 8)
    assert warning["order_id"] == "O1"  # the command's context


def test_a_refused_item_announces_nothing(make_app: AppFactory, tmp_path: Path, events: Events) -> None:
    """A file refused whole rolls back: no SKU became oversold, no event."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "W1", 10, at("2026-01-01T00:00:00Z"))
    app.commands.place("p", "O1", [RequestedLine("W1", 8)])
    bad = write(tmp_path, "bad.csv", "sku,quantity,as_of\nW1,5,2026-01-01T01:00:00Z\nW2,lots,2026-01-01T01:00:00Z\n")
    assert app.ingestor.ingest("p", Kind.STOCK, bad).outcome == "rejected"
    assert oversold_events(events) == []
    assert not view(app, "p", "W1").oversold


def test_the_store_counts_oversold_skus_per_partner(make_app: AppFactory) -> None:
    """count_oversold counts the partner's SKUs below their allocation, none of another partner's."""
    app = make_app(p={"stock_mode": "advanced"}, q={"stock_mode": "advanced"})
    for partner in ("p", "q"):
        for sku in ("A", "B", "C"):
            app.commands.set_stock(partner, sku, 10, at("2026-01-01T00:00:00Z"))
        app.commands.place(partner, "O1", [RequestedLine("A", 6), RequestedLine("B", 6), RequestedLine("C", 6)])
    for sku in ("A", "B"):
        app.commands.set_stock("p", sku, 1, at("2026-01-01T01:00:00Z"))
    app.commands.set_stock("p", "C", 6, at("2026-01-01T01:00:00Z"))  # equal: not oversold
    assert reads.oversold_counts(app.store, ["p", "q"]) == {"p": 2, "q": 0}
    assert [v.sku for v in reads.ats(app.store, "p") if v.oversold] == ["A", "B"]
