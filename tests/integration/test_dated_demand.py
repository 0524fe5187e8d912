"""Dated demand in placements (docs/rules.md, "Dated supply and dated demand", rules 2 and 3): a line is demand on
its collection's pickup date, else on the order's `wanted_on`, else today, and a placement that meets a date fits
each line to the ATP on its date, on both stores. Today is the injected clock's date (2026-12-05).
"""

from __future__ import annotations

import random
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from gateway.domain.days import CollectionDates
from gateway.domain.errors import InsufficientStock, Refusal
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import reads
from gateway.store import schema
from tests.conftest import FakeClock, write_config
from tests.integration.test_dated_supply import API, TOKEN  # the brand's API and its token
from tests.support import cli as in_process

with warnings.catch_warnings():  # starlette's TestClient names anyio.abc.BlockingPortal, an alias anyio deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.both_stores

TODAY = date(2026, 12, 5)
THE_15TH = date(2026, 12, 15)


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[bootstrap.App]:
    """An advanced-mode brand (its open lines allocate until it closes them) and its API, on 2026-12-05 09:00 UTC."""
    clock.set("2026-12-05T09:00:00Z")
    path = write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}, store_url)
    path.write_text(path.read_text(encoding="utf-8") + API, encoding="utf-8")
    built = bootstrap.build(settings.load(path, environ={}), clock=clock)
    yield built
    built.close()


def supply(app: bootstrap.App, tmp_path: Path, sku: str, on_hand: int, *receipts: tuple[date, int]) -> None:
    """A stock snapshot giving `sku` its units on hand and its receipts."""
    rows = [f"{sku},{on_hand},", *(f"{sku},{units},{day.isoformat()}" for day, units in receipts)]
    path = tmp_path / f"stock-{sku}-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text("sku,quantity,available_from\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = app.ingestor.ingest("brand", Kind.STOCK, path)
    assert result.outcome == "applied", result.summary()


def place(app: bootstrap.App, order_id: str, sku: str, quantity: int, wanted_on: date | None = None) -> None:
    app.commands.place("brand", order_id, [RequestedLine(sku, quantity)], wanted_on)


def refused(app: bootstrap.App, order_id: str, sku: str, quantity: int, wanted_on: date | None = None) -> str:
    """Place, expecting the insufficient_stock refusal; its message."""
    with pytest.raises(InsufficientStock) as caught:
        place(app, order_id, sku, quantity, wanted_on)
    assert caught.value.code == "insufficient_stock"
    return str(caught.value)


def atp_on(app: bootstrap.App, sku: str, on: date) -> int:
    [found] = reads.atp_on(app.store, "brand", [sku], on, TODAY)
    return found.atp


def stored_days(app: bootstrap.App) -> dict[str, date | None]:
    """Each order's line date as stored (one SKU per order in these tests)."""
    lines = schema.order_lines
    with app.store.engine.connect() as connection:
        return dict(connection.execute(select(lines.c.order_id, lines.c.demand_on)).all())


def test_the_permanent_item_promises_the_15th_and_refuses_today_naming_the_date(
    app: bootstrap.App, tmp_path: Path
) -> None:
    """0 on hand, 20 from the 15th, 5 wanted on the 15th pending: a line wanted on the 15th fits up to 15 (16 is
    refused), one for today or the 14th is refused naming its date, and the stored lines keep their dates."""
    supply(app, tmp_path, "COAT", 0, (THE_15TH, 20))
    place(app, "O-1", "COAT", 5, THE_15TH)
    assert "COAT wants 16 on 2026-12-15, 15 available" in refused(app, "O-2", "COAT", 16, THE_15TH)
    assert "COAT wants 1 on 2026-12-05, 0 available" in refused(app, "O-3", "COAT", 1)
    assert "on 2026-12-14" in refused(app, "O-4", "COAT", 1, date(2026, 12, 14))
    place(app, "O-5", "COAT", 15, date(2026, 12, 20))  # a later date: same receipt, same 15 left
    assert "0 available" in refused(app, "O-6", "COAT", 1, THE_15TH)
    assert stored_days(app) == {"O-1": THE_15TH, "O-5": date(2026, 12, 20)}
    assert (atp_on(app, "COAT", TODAY), atp_on(app, "COAT", THE_15TH)) == (0, 0)
    app.commands.set_status("brand", "O-5", OrderStatus.CANCELLED)  # its 15 are given back to every date on
    assert atp_on(app, "COAT", THE_15TH) == 15
    place(app, "O-7", "COAT", 15, THE_15TH)


def test_an_earlier_line_never_takes_what_a_later_one_was_promised(app: bootstrap.App, tmp_path: Path) -> None:
    """10 on hand, 10 promised for the 15th: today's balance is 10, yet a line for today of 1 is refused (it would
    leave the 15th at -1); `ats --on` counts the promise on its date; a wanted_on in the past is demand today."""
    supply(app, tmp_path, "TEA", 10)
    place(app, "O-1", "TEA", 10, THE_15TH)
    assert "TEA wants 1 on 2026-12-05, 0 available" in refused(app, "O-2", "TEA", 1)
    assert "on 2026-12-05" in refused(app, "O-3", "TEA", 1, date(2026, 12, 1))  # a past date counts as today
    assert (atp_on(app, "TEA", TODAY), atp_on(app, "TEA", THE_15TH)) == (0, 0)
    policy = app.settings.partner("brand").policy
    explained = reads.explain(app.store, "brand", policy, "TEA", today=TODAY, on=TODAY).schedule
    assert explained is not None
    assert [(d.day, d.supply, d.demand, d.balance) for d in explained.days] == [
        (TODAY, 10, 0, 10),
        (THE_15TH, 0, 10, 0),
    ]  # docs/rules.md's table: today's balance is 10, the ATP today 0, limited by the 15th
    assert (explained.atp, explained.limiting) == (0, THE_15TH)
    app.commands.set_status("brand", "O-1", OrderStatus.CLOSED)  # advanced mode: a closed line holds nothing
    with app.store.read() as tx:
        assert tx.supply.demand(tx.partners.id_of("brand"), ["TEA"]) == {}
    assert atp_on(app, "TEA", TODAY) == 10
    place(app, "O-4", "TEA", 10)


def test_undated_lines_on_a_sku_without_dates_are_checked_as_before(app: bootstrap.App, tmp_path: Path) -> None:
    """No receipt and no dated line: today's ATS check, its message without a date, no line date stored."""
    supply(app, tmp_path, "MUG", 4)
    place(app, "O-1", "MUG", 3)
    message = refused(app, "O-2", "MUG", 2)
    assert "not enough available to promise" not in message
    assert " on 2026" not in message
    assert stored_days(app) == {"O-1": None}


def test_a_shrinking_snapshot_leaves_the_receipt_covering_todays_shortfall_first(
    app: bootstrap.App, tmp_path: Path
) -> None:
    """8 held today, then 5 on hand and 10 from the 15th: nothing fits today, a line for the 15th takes 7."""
    supply(app, tmp_path, "CUP", 10)
    place(app, "O-1", "CUP", 8)
    supply(app, tmp_path, "CUP", 5, (THE_15TH, 10))
    assert "0 available" in refused(app, "O-2", "CUP", 1)
    assert "7 available" in refused(app, "O-3", "CUP", 8, THE_15TH)
    place(app, "O-4", "CUP", 7, THE_15TH)


def test_the_eggs_of_fridays_collection_are_never_those_laid_on_saturday(
    app: bootstrap.App, tmp_path: Path, clock: FakeClock
) -> None:
    """Monday: nothing on hand, 30 by Thursday, 60 by Saturday; Friday's collection (pickup_on the 11th) holds 20:
    it may take 10 more, not 11 (the refusal names Friday), Saturday's collection 70, and once Saturday holds 70
    Friday takes none of them; pickup_on wins over wanted_on."""
    clock.set("2026-12-07T09:00:00Z")
    supply(app, tmp_path, "EGG", 0, (date(2026, 12, 10), 30), (date(2026, 12, 12), 60))
    app.commands.set_collection("brand", "farm", "fri", CollectionDates(pickup_on=date(2026, 12, 11)))
    app.commands.set_collection("brand", "farm", "sat", CollectionDates(pickup_on=date(2026, 12, 12)))
    friday = [RequestedLine("EGG", 20, "farm", "fri")]
    app.commands.place("brand", "F-1", friday, date(2026, 12, 30))  # the pickup date is what counts
    with pytest.raises(InsufficientStock, match="EGG wants 11 on 2026-12-11, 10 available"):
        app.commands.place("brand", "F-2", [RequestedLine("EGG", 11, "farm", "fri")])
    app.commands.place("brand", "S-1", [RequestedLine("EGG", 70, "farm", "sat")])
    with pytest.raises(InsufficientStock, match="EGG wants 1 on 2026-12-11, 0 available"):  # Saturday's, promised
        app.commands.place("brand", "F-3", [RequestedLine("EGG", 1, "farm", "fri")])
    assert stored_days(app) == {"F-1": date(2026, 12, 11), "S-1": date(2026, 12, 12)}


def test_the_command_line_places_an_order_wanted_on_a_date(tmp_path: Path) -> None:
    """`order place --wanted-on` places against the receipt; without it the line is refused (exit 1) naming
    today (the machine's date); a date that cannot be read is a usage error naming the option."""
    today = datetime.now(UTC).date()
    arriving = today + timedelta(days=10)
    config = write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}, f"sqlite:///{tmp_path / 'gateway.db'}")
    snapshot = tmp_path / "stock.csv"
    snapshot.write_text(f"sku,quantity,available_from\nCOAT,0,\nCOAT,20,{arriving}\n", encoding="utf-8")
    base = ["--config", str(config), "--log-level", "warning"]
    assert in_process.run([*base, "ingest", "--partner", "brand", "--kind", "stock", str(snapshot)]).returncode == 0
    place = [*base, "order", "place", "--partner", "brand", "--line", "COAT:2"]
    placed = in_process.run([*place, "--order-id", "O-1", "--wanted-on", arriving.isoformat()])
    assert placed.returncode == 0, placed.stderr
    short = in_process.run([*place, "--order-id", "O-2"])
    assert short.returncode == 1, short.stderr
    assert f"COAT wants 2 on {today}, 0 available" in short.stderr
    bad = in_process.run([*place, "--order-id", "O-3", "--wanted-on", "the 15th"])
    assert bad.returncode == 2, bad.stderr
    assert "--wanted-on" in bad.stderr
    shown = in_process.run([*base, "ats", "--partner", "brand", "--sku", "COAT", "--on", arriving.isoformat()])
    assert "18" in shown.stdout.split(), shown.stdout


def test_the_api_places_an_order_wanted_on_a_date(app: bootstrap.App, tmp_path: Path) -> None:
    """POST orders with `wanted_on` places against the receipt (201, the line's date stored); without it 409
    insufficient_stock naming today; a `wanted_on` that is no date is a 422 naming the field."""
    supply(app, tmp_path, "COAT", 0, (THE_15TH, 20))
    tokens = Tokens.from_settings(app.settings, environ={"TOKEN_BRAND": TOKEN})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"order_id": "A-1", "lines": [{"sku": "COAT", "quantity": 4}], "wanted_on": "2026-12-15T10:00:00+01:00"}
    with TestClient(platform_api.create_app(app, tokens)) as client:
        placed = client.post("/v1/partners/brand/orders", json=body, headers=headers | {"Idempotency-Key": "a1"})
        assert placed.status_code == 201, placed.text
        undated = {"order_id": "A-2", "lines": [{"sku": "COAT", "quantity": 1}]}
        short = client.post("/v1/partners/brand/orders", json=undated, headers=headers | {"Idempotency-Key": "a2"})
        assert short.status_code == 409, short.text
        assert "COAT wants 1 on 2026-12-05, 0 available" in short.json()["detail"]
        bad = client.post(
            "/v1/partners/brand/orders", json=body | {"wanted_on": "soon"}, headers=headers | {"Idempotency-Key": "a3"}
        )
        assert bad.status_code == 422, bad.text
        assert "wanted_on" in bad.json()["detail"]
    assert stored_days(app) == {"A-1": THE_15TH}
    assert atp_on(app, "COAT", THE_15TH) == 16


def test_an_orders_file_places_its_orders_on_their_wanted_on(app: bootstrap.App, tmp_path: Path) -> None:
    """An orders file's `wanted_on` column: an order wanted on the 15th is placed, one without a date is refused
    alone naming today; two rows of one order with different dates reject the file at the second row."""
    supply(app, tmp_path, "COAT", 0, (THE_15TH, 20))
    good = tmp_path / "orders.csv"
    good.write_text(
        "order_id,sku,quantity,status,wanted_on\nW-1,COAT,3,pending,2026-12-15\nW-2,COAT,1,pending,\n", encoding="utf-8"
    )
    result = app.ingestor.ingest("brand", Kind.ORDERS, good)
    assert (result.counts.applied, result.counts.refused) == (1, 1), result.summary()
    assert "COAT wants 1 on 2026-12-05" in result.refusals[0].message
    assert stored_days(app) == {"W-1": THE_15TH}
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "order_id,sku,quantity,status,wanted_on\nW-3,COAT,1,pending,2026-12-15\nW-3,HAT,1,pending,2026-12-16\n",
        encoding="utf-8",
    )
    rejected = app.ingestor.ingest("brand", Kind.ORDERS, mixed)
    assert rejected.outcome == "rejected", rejected.summary()
    assert "wanted_on 2026-12-16 here but 2026-12-15 at line 2" in rejected.summary()


def test_a_change_of_stock_mode_recomputes_the_per_date_demand(
    tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    """advanced -> simple without pending allocation: a pending line wanted on the 15th holds nothing any more, so
    the 15th's demand goes and the whole receipt is available to promise; back to advanced, it is there again."""
    clock.set("2026-12-05T09:00:00Z")

    def started(mode: dict[str, object]) -> bootstrap.App:
        return bootstrap.build(
            settings.load(write_config(tmp_path, {"brand": mode}, store_url), environ={}), clock=clock
        )

    app = started({"stock_mode": "advanced"})
    supply(app, tmp_path, "COAT", 0, (THE_15TH, 20))
    place(app, "O-1", "COAT", 6, THE_15TH)
    assert atp_on(app, "COAT", THE_15TH) == 14
    app.close()
    app = started({"stock_mode": "simple", "pending_allocation": False})
    assert atp_on(app, "COAT", THE_15TH) == 20
    with app.store.read() as tx:
        assert tx.supply.demand(tx.partners.id_of("brand"), ["COAT"]) == {}
    app.close()
    app = started({"stock_mode": "advanced"})
    assert atp_on(app, "COAT", THE_15TH) == 14
    assert "14 available" in refused(app, "O-2", "COAT", 15, date(2026, 12, 16))
    app.close()


def test_racing_dated_placements_never_over_promise_a_date(app: bootstrap.App, tmp_path: Path) -> None:
    """Threads (each its own connection on PostgreSQL) race placements of random dates, some cancelled, on one SKU
    with receipts: afterwards, brute force over the stored lines, no date's cumulative balance is below 0, and the
    kept per-date demand is exactly the open lines' by date."""
    receipts = [(TODAY + timedelta(days=3 * n), 7) for n in range(1, 6)]
    supply(app, tmp_path, "RICE", 5, *receipts)
    dates = [None, *(TODAY + timedelta(days=n) for n in range(0, 18, 2))]
    start = threading.Barrier(4)

    def racer(n: int) -> int:
        chooser = random.Random(n)
        start.wait(timeout=30)
        placed = 0
        for i in range(12):
            try:
                place(app, f"R-{n}-{i}", "RICE", chooser.randint(1, 4), chooser.choice(dates))
                placed += 1
                if i % 5 == 4:
                    app.commands.set_status("brand", f"R-{n}-{i}", OrderStatus.CANCELLED)
            except Refusal:
                pass
        return placed

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(racer, range(4))) > 0
    wanted: dict[date, int] = defaultdict(int)
    lines, orders = schema.order_lines, schema.orders
    with app.store.engine.connect() as connection:
        rows = connection.execute(
            select(lines.c.quantity, lines.c.demand_on)
            .select_from(
                lines.join(
                    orders, (orders.c.partner_id == lines.c.partner_id) & (orders.c.order_id == lines.c.order_id)
                )
            )
            .where(orders.c.status != OrderStatus.CANCELLED.value)
        ).all()
    dated: dict[date, int] = defaultdict(int)
    for quantity, day in rows:
        wanted[day or TODAY] += quantity
        if day is not None:
            dated[day] += quantity
    assert sum(wanted.values()) > 5  # the receipts were promised, not only what was on hand
    balance = 5
    for day in sorted({TODAY, *wanted, *(d for d, _ in receipts)}):
        balance += sum(units for d, units in receipts if d == day) - wanted.get(day, 0)
        assert balance >= 0, f"{day} over-promised: balance {balance}"
    with app.store.read() as tx:
        [(_, kept)] = tx.supply.demand(tx.partners.id_of("brand"), ["RICE"]).items()
    assert dict(kept) == dated
