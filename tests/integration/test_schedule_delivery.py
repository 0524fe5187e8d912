"""The schedule in ATS messages (docs/rules.md, "Dated supply and dated demand", Publishing): a SKU with dated
supply has its ATS delivered with the next dates at which its published ATP changes, read when the batch is
claimed, to the real fake partner on 127.0.0.1, on both stores.

The brand (advanced mode: open lines allocate) is on 2026-12-05 by the injected clock; every open line is demand
today in this release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service.bundles import Bundles
from tests.conftest import AppFactory, FakeClock
from tests.support.partner import FakePartner, Lost, running

pytestmark = pytest.mark.both_stores

TOKEN_ENV = "GATEWAY_TEST_SCHEDULE_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN = "schedule-s3cret"  # noqa: S105 - the fake partner's token, not a secret
TODAY = "2026-12-05T09:00:00Z"
HEADER = "sku,quantity,available_from\n"
ITEM_FIELDS = ["message_id", "sku", "ats", "as_of", "computed_at"]  # an ATS item as it always was


@dataclass
class Rig:
    """The brand's app delivering its ATS to the fake partner, on a fake clock."""

    app: bootstrap.App
    partner: FakePartner
    clock: FakeClock
    folder: Path
    posted: int = field(default=0)

    def ingest(self, text: str) -> None:
        """Apply a stock snapshot of the brand, one second after the last change."""
        self.clock.advance(1)
        path = self.folder / f"stock-{self.clock()}.csv"
        path.write_text(text, encoding="utf-8")
        result = self.app.ingestor.ingest("brand", Kind.STOCK, path)
        assert result.outcome == "applied", result.summary()

    def place(self, order_id: str, sku: str, quantity: int, wanted_on: date | None = None) -> None:
        self.clock.advance(1)
        self.app.commands.place("brand", order_id, [RequestedLine(sku, quantity)], wanted_on=wanted_on)

    def deliver(self) -> dict[str, dict[str, Any]]:
        """One delivery pass: the ATS items it posted, by SKU (none when nothing was due)."""
        self.clock.advance(1)
        report = self.app.publisher.deliver("brand")
        assert report.ok, report.summary()
        posts = [r for r in self.partner.requests if r.method == "POST" and r.outcome == "applied"]
        fresh, self.posted = posts[self.posted :], len(posts)
        items = [item for post in fresh for item in post.json()["items"]]
        by_sku = {item["sku"]: item for item in items}
        assert len(by_sku) == len(items), "one item per SKU: values coalesce"
        return by_sku


RigFactory = Callable[..., Rig]


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with running(token=TOKEN) as served:
        yield served


@pytest.fixture
def rig(
    make_app: AppFactory, clock: FakeClock, partner: FakePartner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RigFactory:
    """rig(schedule_points=2) -> the brand delivering its ATS over the API with these delivery settings."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    clock.set(TODAY)

    def factory(**delivery: Any) -> Rig:
        api = {"base_url": partner.url, "token_env": TOKEN_ENV, "feeds": [], "deliver": ["ats"]}
        options = {"stock_mode": "advanced", "api": api, "delivery": {"retries": 1} | delivery}
        return Rig(make_app(brand=options), partner, clock, tmp_path)

    return factory


def schedule(item: dict[str, Any]) -> list[tuple[str, int]] | None:
    """An item's schedule as (date, ats) pairs; None when it carries none."""
    if "schedule" not in item:
        return None
    return [(point["date"], point["ats"]) for point in item["schedule"]]


def test_a_snapshot_with_receipts_delivers_the_next_dates_beside_todays_value(rig: RigFactory) -> None:
    """3 held by an open order, then 0 on hand, 20 from the 15th and 10 from the 20th: today 0, then 17 and 27.
    A SKU of the same snapshot without receipts is delivered exactly as ever."""
    r = rig()
    r.ingest("sku,quantity\nCOAT,3\n")
    r.place("O-1", "COAT", 3)
    r.deliver()
    r.ingest(HEADER + "COAT,0,\nCOAT,20,2026-12-15\nCOAT,10,2026-12-20T08:00:00\nHAT,4,\n")

    items = r.deliver()

    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (0, [("2026-12-15", 17), ("2026-12-20", 27)])
    assert list(items["COAT"])[: len(ITEM_FIELDS)] == ITEM_FIELDS
    assert (items["HAT"]["ats"], list(items["HAT"])) == (4, ITEM_FIELDS)


def test_a_snapshot_changing_only_a_receipt_delivers_the_new_schedule_coalesced(rig: RigFactory) -> None:
    """Today's value stays 5 while the receipts move: each change queues the SKU again, and two pending changes
    are one item with the latest schedule."""
    r = rig()
    r.ingest(HEADER + "COAT,5,\nCOAT,20,2026-12-15\n")
    assert schedule(r.deliver()["COAT"]) == [("2026-12-15", 25)]

    r.ingest(HEADER + "COAT,5,\nCOAT,30,2026-12-16\n")
    r.ingest(HEADER + "COAT,5,\nCOAT,40,2026-12-17\n")
    items = r.deliver()

    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (5, [("2026-12-17", 45)])
    # the same schedule again, from a later snapshot (its own content): nothing to send
    r.ingest(
        "sku,quantity,as_of,available_from\nCOAT,5,2026-12-05T09:00:30Z,\nCOAT,40,2026-12-05T09:00:30Z,2026-12-17\n"
    )
    assert r.deliver() == {}


def test_schedule_points_truncates_the_schedule(rig: RigFactory) -> None:
    """`delivery.schedule_points = 2`: the first two of three changes are sent."""
    r = rig(schedule_points=2)
    r.ingest(HEADER + "COAT,1,\nCOAT,2,2026-12-10\nCOAT,3,2026-12-11\nCOAT,4,2026-12-12\n")
    assert schedule(r.deliver()["COAT"]) == [("2026-12-10", 3), ("2026-12-11", 6)]


def test_schedule_points_zero_sends_the_old_item(rig: RigFactory) -> None:
    """`delivery.schedule_points = 0`: a SKU with receipts is delivered as ever, its schedule never."""
    r = rig(schedule_points=0)
    r.ingest(HEADER + "COAT,1,\nCOAT,2,2026-12-10\n")
    item = r.deliver()["COAT"]
    assert (item["ats"], list(item)) == (1, ITEM_FIELDS)
    r.ingest(HEADER + "COAT,1,\nCOAT,5,2026-12-10\n")  # a schedule change still queues today's value
    item = r.deliver()["COAT"]
    assert (item["ats"], list(item)) == (1, ITEM_FIELDS)


def test_a_partner_with_no_dates_gets_exactly_the_old_body(rig: RigFactory) -> None:
    """No receipt anywhere: every item has exactly the reference fields, and the bytes hold no schedule."""
    r = rig()
    r.ingest("sku,quantity\nCOAT,5\nHAT,0\n")
    r.place("O-1", "COAT", 2)

    items = r.deliver()

    assert {sku: (item["ats"], list(item)) for sku, item in items.items()} == {
        "COAT": (3, ITEM_FIELDS),
        "HAT": (0, ITEM_FIELDS),
    }
    assert all(b"schedule" not in post.body for post in r.partner.requests)


def test_a_placement_after_receipts_sends_todays_value_with_the_schedule_still_right(rig: RigFactory) -> None:
    """5 on hand and 20 from the 15th, then a placement of 2: today 3, the 15th 23 (the line holds its units on
    every later date); a cancellation puts both back."""
    r = rig()
    r.ingest(HEADER + "COAT,5,\nCOAT,20,2026-12-15\n")
    r.deliver()

    r.place("O-1", "COAT", 2)
    items = r.deliver()
    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (3, [("2026-12-15", 23)])

    r.clock.advance(1)
    r.app.commands.set_status("brand", "O-1", OrderStatus.CANCELLED)
    items = r.deliver()
    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (5, [("2026-12-15", 25)])


def test_a_line_wanted_on_a_later_date_counts_on_that_date_in_the_schedule(rig: RigFactory) -> None:
    """Nothing on hand, 20 from the 10th, 5 more from the 12th, a line of 10 wanted on the 15th: from the 10th on,
    15 can be promised (25 - 10 by the 15th), not the 10 that counting the line today would say."""
    r = rig()
    r.ingest(HEADER + "COAT,0,\nCOAT,20,2026-12-10\nCOAT,5,2026-12-12\n")
    r.deliver()

    r.place("O-1", "COAT", 10, wanted_on=date(2026, 12, 15))
    items = r.deliver()
    assert schedule(items["COAT"]) == [("2026-12-10", 15)]


def test_a_later_dated_line_under_an_unchanged_value_today_still_sends_its_moved_schedule(rig: RigFactory) -> None:
    """5 on hand, 20 from the 15th: a line of 1 wanted on the 20th leaves today's ATP at 5 but lowers the 15th's
    25 to 24, and that is sent."""
    r = rig()
    r.ingest(HEADER + "COAT,5,\nCOAT,20,2026-12-15\n")
    assert schedule(r.deliver()["COAT"]) == [("2026-12-15", 25)]

    r.place("O-1", "COAT", 1, wanted_on=date(2026, 12, 20))
    items = r.deliver()

    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (5, [("2026-12-15", 24)])


def test_an_oversold_sku_whose_value_stays_0_still_sends_its_moved_schedule(rig: RigFactory) -> None:
    """Nothing on hand, 3 held, 20 from the 15th: cancelling the order leaves today's 0 but lifts the 15th from
    17 to 20, and that is sent."""
    r = rig()
    r.ingest("sku,quantity\nCOAT,3\n")
    r.place("O-1", "COAT", 3)
    r.ingest(HEADER + "COAT,0,\nCOAT,20,2026-12-15\n")
    assert schedule(r.deliver()["COAT"]) == [("2026-12-15", 17)]

    r.clock.advance(1)
    r.app.commands.set_status("brand", "O-1", OrderStatus.CANCELLED)
    items = r.deliver()

    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (0, [("2026-12-15", 20)])


def test_a_sku_left_without_receipts_sends_an_empty_schedule_once(rig: RigFactory) -> None:
    """A snapshot dropping COAT's receipts owes the partner an empty schedule, kept through a placement queued
    before delivery; the change after that is an item as for a partner with no dates."""
    r = rig()
    r.ingest(HEADER + "COAT,5,\nCOAT,20,2026-12-15\n")
    r.deliver()

    r.ingest("sku,quantity\nCOAT,5\n")  # without the column: all on hand, the receipt gone
    r.place("O-1", "COAT", 1)
    items = r.deliver()
    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (4, [])

    r.place("O-2", "COAT", 1)
    item = r.deliver()["COAT"]
    assert (item["ats"], list(item)) == (3, ITEM_FIELDS)


def test_a_bundle_changing_only_a_receipt_delivers_the_new_schedule(rig: RigFactory) -> None:
    """A bundle holds its values back until its end: a schedule that moved in it is queued then, once."""
    r = rig()
    r.ingest(HEADER + "COAT,5,\nCOAT,20,2026-12-15\n")
    r.deliver()
    (r.folder / "day").mkdir()
    (r.folder / "day" / "stock.csv").write_text(HEADER + "COAT,5,\nCOAT,30,2026-12-16\n", encoding="utf-8")
    manifest = r.folder / "day" / "day.bundle.csv"
    manifest.write_text("kind,file\nstock,stock.csv\n", encoding="utf-8")
    r.clock.advance(1)
    assert Bundles(r.app.ingestor).ingest_manifest("brand", manifest).outcome == "applied"

    items = r.deliver()

    assert (items["COAT"]["ats"], schedule(items["COAT"])) == (5, [("2026-12-16", 35)])


def test_a_batch_sent_again_after_a_date_passed_carries_the_same_schedule(rig: RigFactory) -> None:
    """The answer to the first request is lost; sent again on the 16th under its key, the batch is the same bytes:
    the schedule starts after the date of the value's computed_at, not of the re-send."""
    r = rig()
    r.ingest(HEADER + "COAT,5,\nCOAT,20,2026-12-15\n")
    r.partner.script(Lost())
    assert not r.app.publisher.deliver("brand").ok
    r.clock.set("2026-12-16T09:00:00Z")

    assert r.app.publisher.deliver("brand").ok

    first, again = [p for p in r.partner.requests if p.method == "POST"]
    assert (again.idempotency_key, again.body) == (first.idempotency_key, first.body)
    assert schedule(again.json()["items"][0]) == [("2026-12-15", 25)]
