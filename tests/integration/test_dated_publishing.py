"""Publishing the ATP (docs/rules.md, "Dated supply and dated demand", rules 3 and 4): today's published ATS of a
SKU holding receipts is max(0, ATP today), a dated collection's channel ATS is max(0, min(ATP on its pickup date,
cap - ordered)), a partner without dates publishes level - allocation as ever, and the oversold mark stays the
stock level below the allocation, on both stores. Today is the injected clock's date (2026-12-05).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap, settings
from gateway.domain.days import CollectionDates
from gateway.domain.messages import MessageKind
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import reads
from tests.conftest import FakeClock, write_config
from tests.support import cli as in_process

pytestmark = pytest.mark.both_stores

TODAY = date(2026, 12, 5)
THE_15TH = date(2026, 12, 15)


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    """An advanced-mode brand (open lines allocate until closed)."""
    return write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}, store_url)


@pytest.fixture
def app(config: Path, clock: FakeClock) -> Iterator[bootstrap.App]:
    """The brand's app on 2026-12-05 09:00 UTC."""
    clock.set("2026-12-05T09:00:00Z")
    built = bootstrap.build(settings.load(config, environ={}), clock=clock)
    yield built
    built.close()


def ingest(app: bootstrap.App, tmp_path: Path, text: str) -> None:
    """A stock snapshot of the brand."""
    path = tmp_path / f"stock-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text(text, encoding="utf-8")
    result = app.ingestor.ingest("brand", Kind.STOCK, path)
    assert result.outcome == "applied", result.summary()


def queued(app: bootstrap.App, kind: MessageKind = MessageKind.ATS) -> dict[str, int | None]:
    """The pending value of each key (ATS per SKU, channel ATS per channel key)."""
    with app.store.read() as tx:
        rows = tx.outbox.rows(tx.partners.id_of("brand"), state=None, kind=kind)
    return {row.key: row.value for row in rows}


def channel_ats(app: bootstrap.App, sku: str) -> dict[str, int | None]:
    """Each collection's published channel ATS of the SKU, by collection."""
    with app.store.read() as tx:
        return {r.collection: r.published for r in tx.caps.channels(tx.partners.id_of("brand"), [sku])}


def shown(config: Path, sku: str) -> dict[str, Any]:
    """`gateway ats --json` for one SKU."""
    done = in_process.run(
        ["--config", str(config), "--log-level", "warning", "ats", "--partner", "brand", "--sku", sku, "--json"]
    )
    assert done.returncode == 0, done.stderr
    [view] = json.loads(done.stdout)
    return dict(view)


def test_a_line_wanted_on_the_receipts_date_leaves_todays_units_published(
    app: bootstrap.App, config: Path, tmp_path: Path
) -> None:
    """5 on hand, 20 from the 15th, a line of 5 wanted on the 15th: the ATP today is min(5, 20) = 5, so the ATS
    message, `gateway ats` and its --explain say 5 (not 5 - 5 = 0); a line of 5 for today then takes them, and
    the 15th's 20."""
    ingest(app, tmp_path, "sku,quantity,available_from\nCOAT,5,\nCOAT,20,2026-12-15\n")
    app.commands.place("brand", "O-1", [RequestedLine("COAT", 5)], THE_15TH)
    assert queued(app) == {"COAT": 5}
    assert (shown(config, "COAT")["ats"], shown(config, "COAT")["allocated"]) == (5, 5)
    base = ["--config", str(config), "--log-level", "warning", "ats", "--partner", "brand", "--sku", "COAT"]
    explained = in_process.run([*base, "--explain"])
    assert "ATS 5 = max(0, ATP today), stock - allocated = 5 - 5" in explained.stdout, explained.stdout
    app.commands.place("brand", "O-2", [RequestedLine("COAT", 5)])  # today's 5: the 15th keeps 20 - 5
    assert queued(app) == {"COAT": 0}
    app.commands.set_status("brand", "O-2", OrderStatus.CANCELLED)
    assert queued(app) == {"COAT": 5}


def test_a_snapshot_moving_only_receipts_moves_todays_published_value(app: bootstrap.App, tmp_path: Path) -> None:
    """5 on hand, a line of 10 wanted on the 15th and 10 arriving then: ATP today 5; the same level with the
    receipt halved limits today to 0 (the 15th's balance), though neither level nor allocation moved."""
    ingest(app, tmp_path, "sku,quantity,available_from\nCOAT,5,\nCOAT,10,2026-12-15\n")
    app.commands.place("brand", "O-1", [RequestedLine("COAT", 10)], THE_15TH)
    assert queued(app) == {"COAT": 5}
    ingest(
        app,
        tmp_path,
        "sku,quantity,as_of,available_from\nCOAT,5,2026-12-05T09:00:00Z,\nCOAT,5,2026-12-05T09:00:00Z,2026-12-15\n",
    )
    assert queued(app) == {"COAT": 0}


def test_a_partner_without_dates_publishes_level_minus_allocation(app: bootstrap.App, tmp_path: Path) -> None:
    """No receipt anywhere: a line wanted on the 15th counts against today's ATS as ever (10 - 4 = 6), and the
    message carries exactly that."""
    ingest(app, tmp_path, "sku,quantity\nMUG,10\n")
    app.commands.place("brand", "O-1", [RequestedLine("MUG", 4)], THE_15TH)
    assert queued(app) == {"MUG": 6}


def test_a_dated_collections_channel_ats_follows_the_atp_on_its_pickup_date(app: bootstrap.App, tmp_path: Path) -> None:
    """Nothing on hand, 30 by the 10th, 60 by the 12th: Friday's collection (pickup the 11th, cap 40) shows 30,
    then 10 once it holds 20 (the ATP on the 11th, below cap - ordered 20), then 0 under a cap of 15; Saturday's
    (pickup the 12th, cap 100) shows 70; a collection without a pickup date follows today's ATS, 0; `gateway ats
    --assembly --collection` (reads.channels) shows what is published."""
    ingest(app, tmp_path, "sku,quantity,available_from\nEGG,0,\nEGG,30,2026-12-10\nEGG,60,2026-12-12\n")
    app.commands.set_collection("brand", "farm", "fri", CollectionDates(pickup_on=date(2026, 12, 11)))
    app.commands.set_collection("brand", "farm", "sat", CollectionDates(pickup_on=date(2026, 12, 12)))
    app.commands.set_cap("brand", "EGG", "farm", "fri", 40)
    app.commands.set_cap("brand", "EGG", "farm", "sat", 100)
    app.commands.set_cap("brand", "EGG", "farm", "shop", 50)
    assert channel_ats(app, "EGG") == {"fri": 30, "sat": 90, "shop": 0}
    app.commands.place("brand", "F-1", [RequestedLine("EGG", 20, "farm", "fri")])
    assert channel_ats(app, "EGG") == {"fri": 10, "sat": 70, "shop": 0}
    read = {c: reads.channels(app.store, "brand", ["EGG"], "farm", c, TODAY)[0] for c in ("fri", "sat", "shop")}
    assert {c: (v.ats, v.sku_ats) for c, v in read.items()} == {"fri": (10, 10), "sat": (70, 70), "shop": (0, 0)}
    app.commands.set_cap("brand", "EGG", "farm", "fri", 25)
    assert channel_ats(app, "EGG")["fri"] == 5  # cap - ordered, below the ATP on the 11th
    app.commands.set_cap("brand", "EGG", "farm", "fri", 15)
    assert channel_ats(app, "EGG")["fri"] == 0
    assert sorted(queued(app, MessageKind.CHANNEL_ATS).values()) == [0, 0, 70]


def test_a_sku_with_receipts_is_oversold_when_its_level_is_below_the_allocation(
    app: bootstrap.App, config: Path, tmp_path: Path
) -> None:
    """8 held today, then 5 on hand and 10 from the 15th: the ATP today is -3, published 0, and `gateway ats`
    marks it oversold (stock below allocation); a line of 5 for the 15th on nothing on hand and 20 then publishes
    0 today too, and is marked oversold alike: its units wait on the receipt (docs/rules.md)."""
    ingest(app, tmp_path, "sku,quantity\nCUP,10\n")
    app.commands.place("brand", "O-1", [RequestedLine("CUP", 8)])
    ingest(app, tmp_path, "sku,quantity,available_from\nCUP,5,\nCUP,10,2026-12-15\n")
    view = shown(config, "CUP")
    assert (view["ats"], view["oversold"]) == (0, True)
    ingest(app, tmp_path, "sku,quantity,available_from\nTEA,0,\nTEA,20,2026-12-15\n")
    app.commands.place("brand", "O-2", [RequestedLine("TEA", 5)], THE_15TH)
    view = shown(config, "TEA")
    assert (view["ats"], view["oversold"]) == (0, True)
