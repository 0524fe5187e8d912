"""Ordinary partner mistakes refused at their row (issue 15, items 1, 4 and 6), through ingest, feeds and pickup.

A closing row for a mistyped order id places nothing (`unknown_order`); a stock level or confirmation stamped
more than `max_clock_skew` ahead of the gateway's clock is refused (`future_timestamp`) and never freezes its
SKU; a confirmation above the ordered quantity is refused (`confirmed_above_ordered`) unless the partner allows
it. Each refusal names its line (or item) and its reason, in the result, the ledger's report and the file's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap
from gateway.domain.errors import ConfirmedAboveOrdered
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import queries
from gateway.service.items import IngestResult
from gateway.store.port import LedgerRecord
from tests.conftest import FIXTURES, AppFactory, FakeClock, at
from tests.integration.helpers import ats, contents, messages, stock
from tests.support.partner import FakePartner

pytestmark = pytest.mark.both_stores

TOKEN_ENV = "GUARDS_TEST_PARTNER_TOKEN"  # noqa: S105 - the name of a variable, not a secret
NOW = "2026-01-01T00:00:00Z"  # the FakeClock's start: the gateway's clock in these tests


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(result: IngestResult) -> list[tuple[int | None, str | None]]:
    """(line or item, reason) of every refused row."""
    return [(p.line, p.reason) for p in result.refusals]


def ledger(app: bootstrap.App, partner: str = "p") -> list[LedgerRecord]:
    """The partner's ledger, oldest first."""
    with app.store.read() as tx:
        return list(reversed(tx.ledger.entries(tx.partners.id_of(partner))))


def orders_held(app: bootstrap.App, partner: str = "p") -> set[str]:
    with app.store.read() as tx:
        return {line.order_id for line in tx.orders.all_lines(tx.partners.id_of(partner))}


def inventory_at(app: bootstrap.App, sku: str, partner: str = "p") -> int | None:
    with app.store.read() as tx:
        return queries.ats(tx, partner, [sku])[0].as_of


# --- item 1: a row for an unknown order places it only as pending or confirmed ----------------------------------


@pytest.mark.parametrize("mode", ["advanced", "time_based"])
def test_a_closing_row_for_a_mistyped_order_creates_nothing_and_is_refused_unknown_order(
    make_app: AppFactory, tmp_path: Path, mode: str
) -> None:
    """`REAL-l` for `REAL-1`: the typo is refused at its line (unknown_order), the real order closes."""
    app = make_app(p={"stock_mode": mode})
    app.commands.set_stock("p", "A", 10, at("2019-06-25T12:00:00"))
    app.commands.place("p", "REAL-1", [RequestedLine("A", 5)])
    app.commands.set_status("p", "REAL-1", OrderStatus.INVOICING)
    typo = write(tmp_path, "ack.csv", "order_id,sku,quantity,status\nREAL-l,A,5,closed\n")

    result = app.ingestor.ingest("p", Kind.ORDERS, typo)

    assert (result.outcome, result.counts.applied, result.counts.refused) == ("applied", 0, 1)
    assert refused(result) == [(2, "unknown_order")]
    assert "order REAL-l is unknown" in result.refusals[0].message
    assert "not closed" in result.refusals[0].message
    assert orders_held(app) == {"REAL-1"}  # no phantom closed order, allocating for ever in time_based
    assert messages(app, "p", "order_closed") == []
    assert ats(app, "p", "A") == 5
    [*_, entry] = ledger(app)
    assert (entry.outcome, entry.rows_refused) == ("applied", 1)
    assert json.loads(entry.report or "{}")["refused"] == [
        {"line": 2, "column": None, "message": result.refusals[0].message, "reason": "unknown_order"}
    ]

    fixed = write(tmp_path, "ack-fixed.csv", "order_id,sku,quantity,status\nREAL-1,A,5,closed\n")
    assert app.ingestor.ingest("p", Kind.ORDERS, fixed).ok
    assert messages(app, "p", "order_closed") == ["REAL-1"]


@pytest.mark.parametrize(
    ("status", "placed"),
    [("pending", True), ("confirmed", True), ("invoicing", False), ("closed", False), ("cancelled", False)],
)
def test_an_unknown_order_is_placed_only_by_pending_or_confirmed_rows(
    make_app: AppFactory, tmp_path: Path, status: str, placed: bool
) -> None:
    """pending and confirmed place a new order; invoicing, closed, cancelled refuse all its rows, nothing kept."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 10, None)
    app.commands.set_stock("p", "B", 10, None)
    path = write(tmp_path, "o.csv", f"order_id,sku,quantity,status\nN1,A,2,{status}\nN1,B,1,{status}\n")
    before = contents(app)

    result = app.ingestor.ingest("p", Kind.ORDERS, path)

    if placed:
        assert (result.ok, orders_held(app), ats(app, "p", "A")) == (True, {"N1"}, 8)
    else:
        assert refused(result) == [(2, "unknown_order"), (3, "unknown_order")]
        assert contents(app) == before  # nothing placed, nothing queued


# --- item 4: the future is refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["advanced", "time_based"])  # advanced: the bulk loader on PostgreSQL
def test_a_stock_row_dated_2030_is_refused_and_a_later_file_updates_that_sku_normally(
    make_app: AppFactory, tmp_path: Path, mode: str
) -> None:
    """The 2030 row is refused at its line (future_timestamp); the SKU is not frozen: the next file applies."""
    app = make_app(p={"stock_mode": mode})
    first = write(
        tmp_path,
        "s1.csv",
        "sku,quantity,as_of\nA,10,2025-12-31T00:00:00Z\nB,7,2025-12-31T00:00:00Z\nC,3,2030-01-01T00:00:00Z\n",
    )

    result = app.ingestor.ingest("p", Kind.STOCK, first)

    assert (result.outcome, result.counts.applied, result.counts.refused) == ("applied", 2, 1)
    assert refused(result) == [(4, "future_timestamp")]
    message = result.refusals[0].message
    assert "as_of 2030-01-01T00:00:00Z is in the future" in message
    assert "max_clock_skew (300 s)" in message
    assert f"gateway's clock ({NOW})" in message
    assert (stock(app, "p", "A"), stock(app, "p", "B"), inventory_at(app, "C")) == (10, 7, None)
    assert not result.ok
    [entry] = ledger(app)
    [listed] = json.loads(entry.report or "{}")["refused"]
    assert (listed["line"], listed["reason"]) == (4, "future_timestamp")

    later = write(tmp_path, "s2.csv", "sku,quantity,as_of\nC,4,2025-12-31T12:00:00Z\n")
    again = app.ingestor.ingest("p", Kind.STOCK, later)
    assert (again.ok, again.counts.applied, again.counts.skipped) == (True, 1, 0)
    assert (stock(app, "p", "C"), ats(app, "p", "C")) == (4, 4)
    assert inventory_at(app, "C") == at("2025-12-31T12:00:00Z")


def test_a_row_exactly_max_clock_skew_ahead_is_taken_and_one_microsecond_more_is_not(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """The partner's own `max_clock_skew` (here 60 s) is the bound, inclusive."""
    app = make_app(p={"stock_mode": "advanced", "max_clock_skew": 60})
    path = write(
        tmp_path,
        "s.csv",
        "sku,quantity,as_of\nA,1,2026-01-01T00:01:00Z\nB,1,2026-01-01T00:01:00.000001Z\n",
    )
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert refused(result) == [(3, "future_timestamp")]
    assert "max_clock_skew (60 s)" in result.refusals[0].message
    assert (stock(app, "p", "A"), inventory_at(app, "B")) == (1, None)


def test_max_clock_skew_zero_refuses_anything_after_the_clock(make_app: AppFactory, tmp_path: Path) -> None:
    """Zero: the gateway's own clock is the bound."""
    app = make_app(p={"stock_mode": "advanced", "max_clock_skew": 0})
    path = write(tmp_path, "s.csv", f"sku,quantity,as_of\nA,1,{NOW}\nB,1,2026-01-01T00:00:01Z\n")
    assert refused(app.ingestor.ingest("p", Kind.STOCK, path)) == [(3, "future_timestamp")]


def test_with_absent_zero_a_refused_row_is_not_zeroed_and_omitted_skus_go_to_zero_as_of_an_accepted_instant(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """The refused SKU keeps its level; the others the file omits are zeroed as of the latest row kept."""
    app = make_app(p={"stock_mode": "advanced", "absent": "zero"})
    start = "sku,quantity,as_of\nA,5,2025-01-01T00:00:00Z\nB,5,2025-01-01T00:00:00Z\nC,5,2025-01-01T00:00:00Z\n"
    assert app.ingestor.ingest("p", Kind.STOCK, write(tmp_path, "s0.csv", start)).ok
    path = write(tmp_path, "s1.csv", "sku,quantity,as_of\nA,6,2025-06-01T00:00:00Z\nB,9,2031-01-01T00:00:00Z\n")

    result = app.ingestor.ingest("p", Kind.STOCK, path)

    assert refused(result) == [(3, "future_timestamp")]
    assert (stock(app, "p", "A"), stock(app, "p", "B"), stock(app, "p", "C")) == (6, 5, 0)
    assert inventory_at(app, "B") == at("2025-01-01T00:00:00Z")
    assert inventory_at(app, "C") == at("2025-06-01T00:00:00Z")  # not 2031: C stays open to later files
    clock.set("2025-07-01T00:00:00Z")
    later = app.ingestor.ingest("p", Kind.STOCK, write(tmp_path, "s2.csv", "sku,quantity\nC,2\nA,6\nB,5\n"))
    assert (later.ok, stock(app, "p", "C")) == (True, 2)


def test_a_file_whose_own_as_of_is_in_the_future_is_refused_whole(make_app: AppFactory, tmp_path: Path) -> None:
    """`--as-of` 2030: rejected (reason future_timestamp), nothing applied, the reason in the ledger's report."""
    app = make_app(p={"stock_mode": "advanced"})
    path = write(tmp_path, "s.csv", "sku,quantity\nA,10\n")
    before = contents(app)

    result = app.ingestor.ingest("p", Kind.STOCK, path, as_of=at("2030-01-01T00:00:00Z"))

    assert (result.outcome, result.reason) == ("rejected", "future_timestamp")
    [problem] = result.problems
    assert problem.describe().startswith("file: [future_timestamp] the file's as_of 2030-01-01T00:00:00Z")
    assert contents(app) == before
    [entry] = ledger(app)
    report = json.loads(entry.report or "{}")
    assert (entry.outcome, report["reason"], report["problems"][0]["reason"]) == (
        "rejected",
        "future_timestamp",
        "future_timestamp",
    )
    assert app.ingestor.ingest("p", Kind.STOCK, path, as_of=at("2025-12-31T00:00:00Z")).ok


def test_refused_future_rows_are_forgotten_when_a_later_row_rejects_the_file(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A malformed row refuses the whole file: its report lists the problem only, no row refusals."""
    app = make_app(p={"stock_mode": "advanced"})
    path = write(tmp_path, "s.csv", "sku,quantity,as_of\nA,1,2030-01-01T00:00:00Z\nB,x,2025-01-01T00:00:00Z\n")
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert (result.outcome, result.refusals, result.counts.refused) == ("rejected", [], 0)
    assert [p.line for p in result.problems] == [3]


@pytest.mark.parametrize("mode", ["advanced", "time_based"])
def test_a_confirmation_dated_in_the_future_is_refused_at_its_line(
    make_app: AppFactory, tmp_path: Path, mode: str
) -> None:
    """confirmed_at 2030: refused (future_timestamp); the other confirmation applies."""
    app = make_app(p={"stock_mode": mode})
    app.commands.set_stock("p", "A", 10, at("2019-06-25T12:00:00"))
    app.commands.place("p", "O1", [RequestedLine("A", 5)])
    app.commands.place("p", "O2", [RequestedLine("A", 2)])
    path = write(
        tmp_path,
        "c.csv",
        "order_id,sku,confirmed_quantity,confirmed_at\nO1,A,4,2030-01-01T00:00:00Z\nO2,A,1,2019-06-26T11:00:00Z\n",
    )
    result = app.ingestor.ingest("p", Kind.CONFIRMATIONS, path)
    assert (result.counts.applied, refused(result)) == (1, [(2, "future_timestamp")])
    assert "confirmed_at 2030-01-01T00:00:00Z is in the future" in result.refusals[0].message
    with app.store.read() as tx:
        confirmed = {line.order_id: line.confirmed_quantity for line in tx.orders.all_lines(tx.partners.id_of("p"))}
    assert confirmed == {"O1": None, "O2": 1}


# --- item 6: a confirmation above the ordered quantity ----------------------------------------------------------


def test_confirming_50_on_a_5_unit_line_is_refused_unless_the_partner_allows_it(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """Refused (confirmed_above_ordered) by default; with allow_over_confirmation, it allocates 50."""
    app = make_app(
        p={"stock_mode": "time_based"},
        lax={"stock_mode": "time_based", "allow_over_confirmation": True},
    )
    path = write(tmp_path, "c.csv", "order_id,sku,confirmed_quantity,confirmed_at\nO1,A,50,2019-06-26T11:00:00Z\n")
    for partner in ("p", "lax"):
        app.commands.set_stock(partner, "A", 60, at("2019-06-25T12:00:00"))
        app.commands.place(partner, "O1", [RequestedLine("A", 5)])

    result = app.ingestor.ingest("p", Kind.CONFIRMATIONS, path)
    assert refused(result) == [(2, "confirmed_above_ordered")]
    assert result.refusals[0].message == (
        "order O1, SKU A: confirmed quantity 50 is above the 5 ordered "
        "(allow_over_confirmation = true accepts it for this partner)"
    )
    assert ats(app, "p", "A") == 55

    allowed = app.ingestor.ingest("lax", Kind.CONFIRMATIONS, path)
    assert (allowed.ok, allowed.counts.applied) == (True, 1)
    assert ats(app, "lax", "A") == 10  # 60 - 50: the partner said so


def test_a_confirmation_equal_to_or_below_the_ordered_quantity_applies(make_app: AppFactory, tmp_path: Path) -> None:
    """The bound is the line's ordered quantity (its lines merged), inclusive."""
    app = make_app(p={"stock_mode": "time_based"})
    app.commands.set_stock("p", "A", 10, at("2019-06-25T12:00:00"))
    app.commands.place("p", "O1", [RequestedLine("A", 2), RequestedLine("A", 3)])
    path = write(
        tmp_path,
        "c.csv",
        "order_id,sku,confirmed_quantity,confirmed_at\nO1,A,5,2019-06-26T11:00:00Z\nO1,A,6,2019-06-26T12:00:00Z\n",
    )
    result = app.ingestor.ingest("p", Kind.CONFIRMATIONS, path)
    assert (result.counts.applied, refused(result)) == (1, [(3, "confirmed_above_ordered")])


def test_the_confirm_command_refuses_above_the_ordered_quantity_too(make_app: AppFactory) -> None:
    """`gateway order confirm` and the platform API's confirmations go through the same rule."""
    app = make_app(p={"stock_mode": "time_based"}, lax={"stock_mode": "time_based", "allow_over_confirmation": True})
    for partner in ("p", "lax"):
        app.commands.set_stock(partner, "A", 10, at("2019-06-25T12:00:00"))
        app.commands.place(partner, "O1", [RequestedLine("A", 5)])
    with pytest.raises(ConfirmedAboveOrdered) as raised:
        app.commands.confirm("p", "O1", "A", 6, at("2019-06-26T11:00:00"))
    assert raised.value.code == "confirmed_above_ordered"
    app.commands.confirm("lax", "O1", "A", 6, at("2019-06-26T11:00:00"))
    assert ats(app, "lax", "A") == 4


def test_the_refused_fixtures_are_refused_at_their_lines_with_their_reasons(make_app: AppFactory) -> None:
    """fixtures/*/refused_*.csv: each applies, but for the rows the rules refuse."""
    app = make_app(p={"stock_mode": "time_based"})
    assert app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv").ok
    assert app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good.csv").ok
    expected = [
        (Kind.CONFIRMATIONS, "refused_above_ordered.csv", [(2, "confirmed_above_ordered")]),
        (Kind.CONFIRMATIONS, "refused_future_confirmed_at.csv", [(3, "future_timestamp")]),
        (Kind.STOCK, "refused_future_as_of.csv", [(3, "future_timestamp")]),
        (Kind.ORDERS, "refused_unknown_order.csv", [(4, "unknown_order")]),
    ]
    for kind, name, reasons in expected:
        result = app.ingestor.ingest("p", kind, FIXTURES / kind.value / name)
        assert (result.outcome, refused(result)) == ("applied", reasons), name
        assert result.counts.applied >= 1, name
    assert orders_held(app) == {"O-1001", "O-1002"}


# --- the same through feeds and pickup --------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePartner]:
    monkeypatch.setenv(TOKEN_ENV, "partner-token")
    with FakePartner() as running:
        yield running


def api_partner(partner: FakePartner, stock_mode: str = "advanced", **options: Any) -> dict[str, Any]:
    api = {"base_url": partner.url, "token_env": TOKEN_ENV, "page_limit": 100, "failed": "api-failed"}
    return {"stock_mode": stock_mode, "api": api, **options}


def test_a_stock_page_item_from_the_future_is_refused_at_its_item_and_the_cursor_moves_on(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """Feed pages share the stock applier: item 2 of the page refused, the others applied."""
    fake.add_items(
        "stock",
        [
            {"sku": "A", "quantity": 1, "as_of": "2025-12-31T00:00:00Z"},
            {"sku": "B", "quantity": 2, "as_of": "2030-01-01T00:00:00Z"},
            {"sku": "C", "quantity": 3},
        ],
    )
    app = make_app(p=api_partner(fake))

    report = app.feeds.poll("p", "stock")

    [page] = report.pages
    assert (page.result.outcome, page.result.counts.applied, page.result.counts.refused) == ("applied", 2, 1)
    assert [(p.line, p.unit, p.reason) for p in page.result.refusals] == [(2, "item", "future_timestamp")]
    assert report.cursor == "3"
    assert (stock(app, "p", "A"), stock(app, "p", "C"), inventory_at(app, "B")) == (1, 3, None)
    [entry] = ledger(app)
    [listed] = json.loads(entry.report or "{}")["refused"]
    assert (listed["item"], listed["reason"]) == (2, "future_timestamp")


def test_an_acknowledgement_page_refuses_future_and_above_ordered_confirmations_alone(
    make_app: AppFactory, fake: FakePartner
) -> None:
    """Each confirmation of a page is refused alone, with its reason; the status move applies."""
    app = make_app(p=api_partner(fake, "time_based"))
    app.commands.set_stock("p", "A", 10, at("2019-06-25T12:00:00"))
    app.commands.place("p", "O1", [RequestedLine("A", 5)])
    fake.add_items(
        "acknowledgements",
        [
            {"order_id": "O1", "sku": "A", "confirmed_quantity": 4, "confirmed_at": "2030-01-01T00:00:00Z"},
            {"order_id": "O1", "sku": "A", "confirmed_quantity": 50, "confirmed_at": "2019-06-26T11:00:00Z"},
            {"order_id": "O1", "status": "closed"},
        ],
    )
    [page] = app.feeds.poll("p", "acknowledgements").pages
    assert [(p.line, p.reason) for p in page.result.refusals] == [
        (1, "future_timestamp"),
        (2, "confirmed_above_ordered"),
    ]
    assert page.result.counts.applied == 1
    assert ats(app, "p", "A") == 5  # closed, not confirmed: the line still allocates its ordered 5


def test_a_picked_up_file_with_a_future_row_is_archived_with_the_reason_in_its_report(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """From a drop folder: applied but for the refused row, archived with `NAME.error.json` naming the reason."""
    drop = tmp_path / "drop"
    drop.mkdir()
    app = make_app(p={"stock_mode": "advanced", "sources": [{"type": "folder", "kind": "stock", "path": str(drop)}]})
    write(drop, "levels.csv", "sku,quantity,as_of\nA,1,2025-12-31T00:00:00Z\nB,2,2030-01-01T00:00:00Z\n")

    [picked] = app.pickup.poll("p", app.settings.partner("p").sources[0])

    assert (picked.outcome, picked.refused) == ("applied", 1)
    report = json.loads((drop / "archive" / "levels.csv.error.json").read_text(encoding="utf-8"))
    assert [(p["line"], p["reason"]) for p in report["refused"]] == [(3, "future_timestamp")]
