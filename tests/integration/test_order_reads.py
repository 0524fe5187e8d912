"""Orders can be read (issue 15, item 9): one order whole (lines and whether each allocates, its history with what
moved it, its confirmations) and a partner's orders listed by status, age and whether they hold stock, through the
engine, the command line and the API over real uvicorn, on both stores; and a store upgraded from 0007 lists the
orders it held."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import bootstrap, settings, views
from gateway.access import Tokens
from gateway.domain.errors import UnknownOrder
from gateway.domain.modes import Policy, StockMode
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import order_reads, queries
from gateway.service.order_reads import OrderFilter
from gateway.store.sql import SqlStore, head_revision
from tests.conftest import AppFactory, FakeClock, at
from tests.integration.test_platform_api import ENV, TOKEN_A, TOKEN_B, Live, serving, write_api_config
from tests.support import cli as in_process

pytestmark = pytest.mark.both_stores

S = OrderStatus
HOUR = 3_600 * 1_000_000
DAY = 24 * HOUR
T_INVENTORY = "2019-06-25T12:00:00Z"
NOT_YET = "closed line, not yet confirmed by the partner"


def show(app: bootstrap.App, partner: str, order_id: str) -> dict[str, Any]:
    found = order_reads.order(app.store, partner, app.settings.partner(partner).policy, order_id)
    return views.order(found)


def listed(app: bootstrap.App, partner: str, **wanted: Any) -> list[str]:
    found = order_reads.orders(
        app.store, partner, app.settings.partner(partner).policy, OrderFilter(**wanted), app.clock()
    )
    return [view.order_id for view in found.orders]


def moved(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(step["status"], step["by"]) for step in body["history"]]


# through the engine


def test_an_order_shows_each_status_it_reached_with_when_and_what_moved_it(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """Placed by a command, closed by an orders file (its ledger entry and source), and a status set again adds
    nothing: the history is the moves the engine made, oldest first."""
    app = make_app(acme={"stock_mode": "advanced"})
    app.commands.set_stock("acme", "EGGS", 10, None)
    app.commands.place("acme", "O1", [RequestedLine("EGGS", 4)])
    clock.advance(3_600)
    app.commands.set_status("acme", "O1", S.INVOICING)
    app.commands.set_status("acme", "O1", S.INVOICING)  # the same status again: no step
    clock.advance(3_600)
    closing = tmp_path / "closing.csv"
    closing.write_text("order_id,sku,quantity,status\nO1,EGGS,4,closed\n", encoding="utf-8")
    result = app.ingestor.ingest("acme", Kind.ORDERS, closing, source="drop:closing.csv")
    assert result.ledger_id is not None
    body = show(app, "acme", "O1")
    assert body["history"] == [
        {"status": "pending", "at": "2026-01-01T00:00:00Z", "by": "command:cli", "ledger_entry": None, "source": None},
        {
            "status": "invoicing",
            "at": "2026-01-01T01:00:00Z",
            "by": "command:cli",
            "ledger_entry": None,
            "source": None,
        },
        {
            "status": "closed",
            "at": "2026-01-01T02:00:00Z",
            "by": f"ledger:{result.ledger_id}",
            "ledger_entry": result.ledger_id,
            "source": "drop:closing.csv",
        },
    ]
    assert (body["status"], body["mode"], body["allocated"]) == ("closed", "advanced", 0)
    assert body["created_at"] == "2026-01-01T00:00:00Z"
    assert body["updated_at"] == "2026-01-01T02:00:00Z"
    [line] = body["lines"]
    assert (line["allocates"], line["units"]) == (False, 0)
    assert "only time_based mode allocates closed lines" in line["rule"]


def test_an_order_placed_by_a_file_straight_into_a_status_shows_both_steps_by_that_file(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """An orders file that places an order as confirmed: placed (pending) then moved, both by its ledger entry
    (a new order may start only as pending or confirmed: see test_edge_guards)."""
    app = make_app(acme={"stock_mode": "advanced"})
    app.commands.set_stock("acme", "EGGS", 10, None)
    new = tmp_path / "new.csv"
    new.write_text("order_id,sku,quantity,status\nO1,EGGS,2,confirmed\n", encoding="utf-8")
    entry = app.ingestor.ingest("acme", Kind.ORDERS, new).ledger_id
    assert moved(show(app, "acme", "O1")) == [("pending", f"ledger:{entry}"), ("confirmed", f"ledger:{entry}")]


def test_an_acknowledgements_file_that_closes_an_order_is_named_in_its_history(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A status-only acknowledgement moves the order: the step names the file's ledger entry and source."""
    app = make_app(acme={"stock_mode": "advanced"})
    app.commands.set_stock("acme", "EGGS", 10, None)
    app.commands.place("acme", "O1", [RequestedLine("EGGS", 2)])
    acks = tmp_path / "acks.csv"
    acks.write_text("order_id,status\nO1,closed\n", encoding="utf-8")
    entry = app.ingestor.ingest("acme", Kind.ACKNOWLEDGEMENTS, acks, source="drop:acks.csv").ledger_id
    body = show(app, "acme", "O1")
    assert moved(body) == [("pending", "command:cli"), ("closed", f"ledger:{entry}")]
    assert body["history"][-1]["source"] == "drop:acks.csv"


def test_each_line_says_whether_and_why_it_allocates_under_time_based_rules(make_app: AppFactory) -> None:
    """The worked time_based sequence: closed and confirmed after the inventory timestamp, the line holds its
    confirmed quantity; once a snapshot stamped later comes, it holds nothing and says the snapshot includes it.
    Every confirmation received is listed, the one stamped earlier than the line's not in force."""
    app = make_app(acme={"stock_mode": "time_based"})
    app.commands.set_stock("acme", "EGGS", 10, at(T_INVENTORY))
    app.commands.place("acme", "O1", [RequestedLine("EGGS", 5)])
    app.commands.set_status("acme", "O1", S.CLOSED)
    [line] = show(app, "acme", "O1")["lines"]
    assert (line["allocates"], line["units"], line["rule"]) == (True, 5, NOT_YET)
    app.commands.confirm("acme", "O1", "EGGS", 4, at("2019-06-26T11:00:00Z"))
    app.commands.confirm("acme", "O1", "EGGS", 3, at("2019-06-26T10:00:00Z"))  # stamped earlier: kept, not in force
    body = show(app, "acme", "O1")
    [line] = body["lines"]
    assert (line["allocates"], line["units"], line["confirmed_quantity"]) == (True, 4, 4)
    assert line["inventory_at"] == T_INVENTORY
    assert "after the inventory timestamp" in line["rule"]
    assert [(c["confirmed_quantity"], c["in_force"]) for c in body["confirmations"]] == [(4, True), (3, False)]
    app.commands.set_stock("acme", "EGGS", 6, at("2019-06-26T12:00:00Z"))
    [line] = show(app, "acme", "O1")["lines"]
    assert (line["allocates"], line["units"]) == (False, 0)
    assert "the snapshot includes it" in line["rule"]


def test_an_unknown_order_is_refused_by_name(make_app: AppFactory) -> None:
    app = make_app(acme={"stock_mode": "advanced"})
    with pytest.raises(UnknownOrder, match="order NOPE is unknown"):
        show(app, "acme", "NOPE")


@pytest.fixture
def advanced(make_app: AppFactory, clock: FakeClock) -> bootstrap.App:
    """bolt (advanced): orders in every status, each reaching it a day after the one before."""
    app = make_app(bolt={"stock_mode": "advanced"})
    app.commands.set_stock("bolt", "EGGS", 100, None)
    for order_id, status in (
        ("A-INV", S.INVOICING),
        ("B-PEN", S.PENDING),
        ("C-INV", S.INVOICING),
        ("D-CLO", S.CLOSED),
        ("E-CAN", S.CANCELLED),
        ("F-INV", S.INVOICING),
    ):
        app.commands.place("bolt", order_id, [RequestedLine("EGGS", 1)])
        if status != S.PENDING:
            app.commands.set_status("bolt", order_id, status)
        clock.advance(86_400)
    return app


def test_orders_are_listed_by_status_longest_in_it_first(advanced: bootstrap.App) -> None:
    """`--status` (repeatable) selects, the oldest status first; without it, every order."""
    assert listed(advanced, "bolt", statuses=[S.INVOICING]) == ["A-INV", "C-INV", "F-INV"]
    assert listed(advanced, "bolt", statuses=[S.PENDING, S.CLOSED]) == ["B-PEN", "D-CLO"]
    assert listed(advanced, "bolt") == ["A-INV", "B-PEN", "C-INV", "D-CLO", "E-CAN", "F-INV"]


def test_the_invoicing_orders_still_waiting_for_their_acknowledgement_are_those_older_than_asked(
    advanced: bootstrap.App, clock: FakeClock
) -> None:
    """`--older-than`: in their status for longer than that, counted from when they reached it, not when placed."""
    assert listed(advanced, "bolt", statuses=[S.INVOICING], older_than=3 * DAY + HOUR) == ["A-INV", "C-INV"]
    assert listed(advanced, "bolt", statuses=[S.INVOICING], older_than=6 * DAY + HOUR) == []
    advanced.commands.set_status("bolt", "A-INV", S.CLOSED)  # acknowledged: no longer waiting
    assert listed(advanced, "bolt", statuses=[S.INVOICING], older_than=HOUR) == ["C-INV", "F-INV"]
    assert listed(advanced, "bolt", statuses=[S.CLOSED], older_than=HOUR) == ["D-CLO"]  # A-INV: closed just now


def test_a_listing_stops_at_its_limit_and_says_there_is_more(advanced: bootstrap.App) -> None:
    policy = advanced.settings.partner("bolt").policy
    found = order_reads.orders(advanced.store, "bolt", policy, OrderFilter(limit=2), advanced.clock())
    assert ([v.order_id for v in found.orders], found.more) == (["A-INV", "B-PEN"], True)
    found = order_reads.orders(advanced.store, "bolt", policy, OrderFilter(limit=6), advanced.clock())
    assert found.more is False


def test_in_advanced_mode_the_allocating_orders_are_the_open_ones(advanced: bootstrap.App) -> None:
    assert listed(advanced, "bolt", allocating=True) == ["A-INV", "B-PEN", "C-INV", "F-INV"]
    assert listed(advanced, "bolt", statuses=[S.CLOSED], allocating=True) == []


def test_the_closed_lines_never_confirmed_that_still_hold_stock_in_time_based_mode(make_app: AppFactory) -> None:
    """`--status closed --allocating`: closed orders with a line unconfirmed, or confirmed after its SKU's inventory
    timestamp; not one whose snapshot includes it, nor cancelled or open ones. Every SKU's allocation is the sum of
    the units of the lines listed as allocating."""
    app = make_app(acme={"stock_mode": "time_based"})
    for sku in ("EGGS", "MILK"):
        app.commands.set_stock("acme", sku, 100, at(T_INVENTORY))
    orders = {
        "C-NEVER": ([("EGGS", 5)], S.CLOSED, None),
        "C-AFTER": ([("EGGS", 2)], S.CLOSED, "2019-06-26T00:00:00Z"),
        "C-BEFORE": ([("EGGS", 3)], S.CLOSED, "2019-06-24T00:00:00Z"),
        "C-MIXED": ([("EGGS", 1), ("MILK", 7)], S.CLOSED, None),
        "X-CAN": ([("EGGS", 4)], S.CANCELLED, None),
        "P-OPEN": ([("MILK", 6)], S.INVOICING, None),
    }
    for order_id, (lines, status, confirmed_at) in orders.items():
        app.commands.place("acme", order_id, [RequestedLine(sku, quantity) for sku, quantity in lines])
        app.commands.set_status("acme", order_id, status)
        if confirmed_at is not None:
            for sku, quantity in lines:
                app.commands.confirm("acme", order_id, sku, quantity, at(confirmed_at))
    app.commands.confirm("acme", "C-MIXED", "EGGS", 1, at("2019-06-24T00:00:00Z"))  # this line is in the snapshot
    assert sorted(listed(app, "acme", statuses=[S.CLOSED], allocating=True)) == ["C-AFTER", "C-MIXED", "C-NEVER"]
    assert sorted(listed(app, "acme", allocating=True)) == ["C-AFTER", "C-MIXED", "C-NEVER", "P-OPEN"]
    policy = app.settings.partner("acme").policy
    every = order_reads.orders(app.store, "acme", policy, OrderFilter(allocating=True), app.clock()).orders
    held: dict[str, int] = defaultdict(int)
    for view in every:
        for line in view.lines:
            held[line.sku] += line.units
    with app.store.read() as tx:
        cached = {v.sku: v.allocated for v in queries.ats(tx, "acme", ["EGGS", "MILK"])}
    assert cached == held == {"EGGS": 7, "MILK": 13}
    [mixed] = [view for view in every if view.order_id == "C-MIXED"]
    assert [(line.sku, line.allocates) for line in mixed.lines] == [("EGGS", False), ("MILK", True)]


def test_with_pending_allocation_off_no_order_allocates_in_simple_mode(make_app: AppFactory) -> None:
    app = make_app(shop={"stock_mode": "simple", "pending_allocation": False})
    app.commands.set_stock("shop", "EGGS", 10, None)
    app.commands.place("shop", "O1", [RequestedLine("EGGS", 2)])
    assert listed(app, "shop") == ["O1"]
    assert listed(app, "shop", allocating=True) == []
    [line] = show(app, "shop", "O1")["lines"]
    assert (line["allocates"], line["rule"]) == (False, "pending line, pending_allocation off")


# a store made by an older release


def test_a_store_upgraded_from_0007_lists_its_orders_with_their_status_since_then_by_nothing_known(
    store_url: str,
) -> None:
    """Orders placed before the histories start with the status they had, at the instant they reached it, moved
    by nothing known; a move after the upgrade follows it."""
    old = SqlStore.open(store_url, migrate=False)
    old.migrate("0007")
    with old.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO partners (id, name, stock_mode, pending_allocation, created_at) "
            "VALUES (1, 'p', 'advanced', true, 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO stock (partner_id, sku, quantity, allocated, updated_at) VALUES (1, 'A', 10, 3, 0)"
        )
        for order_id, status, moved_at in (("O1", "invoicing", 2_000_000), ("O2", "closed", 1_000_000)):
            connection.exec_driver_sql(
                "INSERT INTO orders (partner_id, order_id, status, created_at, updated_at) "
                f"VALUES (1, '{order_id}', '{status}', 0, {moved_at})"
            )
            connection.exec_driver_sql(
                f"INSERT INTO order_lines (partner_id, order_id, sku, quantity) VALUES (1, '{order_id}', 'A', 3)"
            )
    old.close()
    store = SqlStore.open(store_url)
    try:
        assert store.revision() == head_revision()
        policy = Policy(StockMode.ADVANCED)
        found = order_reads.orders(store, "p", policy, OrderFilter(), now=10_000_000)
        assert [(v.order_id, v.status, v.allocated) for v in found.orders] == [
            ("O2", S.CLOSED, 0),
            ("O1", S.INVOICING, 3),
        ]
        waiting = order_reads.orders(store, "p", policy, OrderFilter(statuses=[S.INVOICING]), now=10_000_000)
        assert [v.order_id for v in waiting.orders] == ["O1"]
        body = views.order(order_reads.order(store, "p", policy, "O1"))
        assert body["history"] == [
            {"status": "invoicing", "at": "1970-01-01T00:00:02Z", "by": None, "ledger_entry": None, "source": None}
        ]
    finally:
        store.close()


def test_a_move_an_older_release_made_without_a_step_ends_the_history_with_the_status_the_order_has(
    make_app: AppFactory,
) -> None:
    """During a roll-out an older worker moves orders without keeping a step: the history ends with the status the
    order has, since it reached it, moved by nothing known."""
    app = make_app(acme={"stock_mode": "advanced"})
    app.commands.set_stock("acme", "EGGS", 10, None)
    app.commands.place("acme", "O1", [RequestedLine("EGGS", 1)])
    with app.store.write() as tx:  # what an older release does: the status, and nothing of the history
        tx.connection.exec_driver_sql(
            "UPDATE orders SET status = 'invoicing', updated_at = 5000000 WHERE order_id = 'O1'"
        )
    body = show(app, "acme", "O1")
    assert moved(body) == [("pending", "command:cli"), ("invoicing", None)]
    assert body["history"][-1]["at"] == "1970-01-01T00:00:05Z"


# the command line and the API, over one store


class Both:
    """The command line (in-process) and the API (real uvicorn) over one store."""

    def __init__(self, config: Path, live: Live) -> None:
        self.config = config
        self.live = live

    def cli(self, *args: str, expect: int = 0) -> str:
        done = in_process.run(["--config", str(self.config), "--log-level", "warning", *args])
        assert done.returncode == expect, (done.stdout, done.stderr)
        return done.stdout if expect == 0 else done.stderr

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    def get(self, path: str, token: str = TOKEN_A, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.live.base}/{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def api(self, path: str, **params: Any) -> Any:
        answer = self.get(path, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def both(tmp_path: Path, store_url: str) -> Iterator[Both]:
    """acme (time based): a snapshot from a file; O1 placed on the command line and closed, O2 placed on the API and
    moved to invoicing there, O3 placed on the command line and cancelled."""
    config = write_api_config(tmp_path, store_url=store_url)
    app = bootstrap.build(settings.load(config, environ={}))
    try:
        with serving(app, Tokens.from_settings(app.settings, environ=ENV)) as live:
            found = Both(config, live)
            stock = tmp_path / "levels.csv"
            stock.write_text(f"sku,quantity,as_of\nEGGS,30,{T_INVENTORY}\n", encoding="utf-8")
            found.cli("ingest", "--partner", "acme", "--kind", "stock", str(stock))
            found.cli("order", "place", "--partner", "acme", "--order-id", "O1", "--line", "EGGS:5")
            found.cli("order", "set-status", "--partner", "acme", "--order-id", "O1", "--status", "closed")
            headers = {"Authorization": f"Bearer {TOKEN_A}", "Idempotency-Key": "O2"}
            body = {"order_id": "O2", "lines": [{"sku": "EGGS", "quantity": 3}]}
            assert httpx.post(f"{live.base}/orders", json=body, headers=headers, timeout=10).status_code == 201
            moving = httpx.post(
                f"{live.base}/orders/O2/status", json={"status": "invoicing"}, headers=headers, timeout=10
            )
            assert moving.status_code == 200, moving.text
            found.cli("order", "place", "--partner", "acme", "--order-id", "O3", "--line", "EGGS:1")
            found.cli("order", "set-status", "--partner", "acme", "--order-id", "O3", "--status", "cancelled")
            yield found
    finally:
        app.close()


def test_an_order_reads_the_same_from_the_cli_and_the_api_with_what_moved_it(both: Both) -> None:
    """`gateway order show --json` and `GET orders/{id}`: one shape, the history naming the CLI and the API."""
    o2 = both.api("orders/O2")
    assert both.cli_json("order", "show", "--partner", "acme", "--order-id", "O2") == o2
    assert moved(o2) == [("pending", "command:api"), ("invoicing", "command:api")]
    o1 = both.cli_json("order", "show", "--partner", "acme", "--order-id", "O1")
    assert o1 == both.api("orders/O1")
    assert moved(o1) == [("pending", "command:cli"), ("closed", "command:cli")]
    [line] = o1["lines"]
    assert (line["allocates"], line["units"], line["rule"]) == (True, 5, NOT_YET)


def test_a_listing_reads_the_same_from_the_cli_and_the_api(both: Both) -> None:
    """`gateway order list --json` and `GET orders`, with and without filters."""
    assert [o["order_id"] for o in both.api("orders")] == ["O1", "O2", "O3"]
    assert both.cli_json("order", "list", "--partner", "acme") == both.api("orders")
    closed = both.cli_json("order", "list", "--partner", "acme", "--status", "closed", "--allocating")
    assert closed == both.api("orders", status="closed", allocating="true")
    assert [o["order_id"] for o in closed] == ["O1"]
    two = both.cli_json("order", "list", "--partner", "acme", "--status", "invoicing", "--status", "cancelled")
    assert two == both.api("orders", status=["invoicing", "cancelled"])
    assert [o["order_id"] for o in two] == ["O2", "O3"]
    # placed moments ago on the real clock: none has been in its status for a day
    assert both.cli_json("order", "list", "--partner", "acme", "--older-than", "1d") == []
    assert both.api("orders", older_than="1d") == []
    assert [o["order_id"] for o in both.api("orders", limit=1)] == ["O1"]


def test_the_cli_prints_an_order_and_a_listing_for_people(both: Both) -> None:
    shown = both.cli("order", "show", "--partner", "acme", "--order-id", "O1")
    assert "order O1 of acme (time_based mode): closed" in shown
    assert "allocates 5 unit(s): closed line, not yet confirmed by the partner" in shown
    assert "closed     by command:cli" in shown
    assert "no confirmation received" in shown
    listing = both.cli("order", "list", "--partner", "acme", "--status", "closed", "--allocating")
    assert listing.splitlines()[1].split()[:2] == ["O1", "closed"]
    assert "    EGGS: allocates 5 unit(s): closed line, not yet confirmed by the partner" in listing
    more = both.cli("order", "list", "--partner", "acme", "--limit", "2")
    assert more.splitlines()[-1] == "(the first 2 shown; --limit to see more)"
    assert both.cli("order", "list", "--partner", "acme", "--older-than", "1d") == "no order matches\n"


def test_the_cli_refuses_an_unknown_order_and_a_duration_it_cannot_read(both: Both) -> None:
    """An unknown order: exit 1 naming it; a malformed duration or status: a usage error, exit 2."""
    assert "gateway: refused: order NOPE is unknown" in both.cli(
        "order", "show", "--partner", "acme", "--order-id", "NOPE", expect=1
    )
    assert "is not a duration" in both.cli("order", "list", "--partner", "acme", "--older-than", "3 days", expect=2)
    both.cli("order", "list", "--partner", "acme", "--status", "shipped", expect=2)


def test_the_api_answers_an_unknown_order_and_a_malformed_query_as_problem_details(both: Both) -> None:
    """404 for an order the gateway does not hold, 422 for a duration or status it cannot read, 403 for another
    partner's token."""
    missing = both.get("orders/NOPE")
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    assert missing.json()["code"] == "unknown_order"
    assert both.get("orders", older_than="3 days").status_code == 422
    assert both.get("orders", status="shipped").status_code == 422
    assert both.get("orders/O1", token=TOKEN_B).status_code == 403
    assert both.get("orders", token=TOKEN_B).status_code == 403
