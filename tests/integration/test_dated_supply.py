"""Dated supply (docs/rules.md, "Dated supply and dated demand"): a stock snapshot's `available_from` column, each
SKU's schedule replaced whole under the stale rule, the ATP on a date and the schedule explained, on both stores.

Every open line is demand today in this release: the ATP today is the ATS, and the ATP on a later date is the
smallest cumulative balance from that date on, where later receipts add supply. Today is the injected clock's date.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap, platform_api, settings, views
from gateway.access import Tokens
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import reads
from gateway.service.items import IngestResult
from gateway.store.records import SnapshotFile
from gateway.store.sql.levels import PostgresLevelLoader
from tests.conftest import FakeClock, at, write_config
from tests.integration.helpers import contents, pending_ats
from tests.support import cli as in_process

with warnings.catch_warnings():  # starlette's TestClient names anyio.abc.BlockingPortal, an alias anyio deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.both_stores

TODAY = "2026-12-05T09:00:00Z"  # the brand's permanent item: sold out today, back on the 15th
THE_15TH = date(2026, 12, 15)
TOKEN = "brand-token-0123456789abcdef"  # noqa: S105 - a test token
API = """
[api]
enabled = true

[[api.tokens]]
name = "brand-checkout"
token_env = "TOKEN_BRAND"
partners = ["brand"]
"""


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock, store_url: str) -> Iterator[bootstrap.App]:
    """An advanced-mode brand (its open lines allocate until it closes them) and its API, on today's clock."""
    clock.set(TODAY)
    path = write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}, store_url)
    path.write_text(path.read_text(encoding="utf-8") + API, encoding="utf-8")
    built = bootstrap.build(settings.load(path, environ={}), clock=clock)
    yield built
    built.close()


@pytest.fixture
def client(app: bootstrap.App) -> Iterator[TestClient]:
    tokens = Tokens.from_settings(app.settings, environ={"TOKEN_BRAND": TOKEN})
    with TestClient(platform_api.create_app(app, tokens)) as found:
        yield found


def ingest(app: bootstrap.App, tmp_path: Path, name: str, text: str) -> IngestResult:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return app.ingestor.ingest("brand", Kind.STOCK, path)


def atp(app: bootstrap.App, sku: str, on: date) -> tuple[int, int]:
    """(today's published ATS, the published ATP on `on`) of one SKU."""
    [found] = reads.atp_on(app.store, "brand", [sku], on, date(2026, 12, 5))
    return found.view.ats, max(0, found.atp)


def schedule_of(app: bootstrap.App, sku: str, on: date | None = None) -> dict[str, Any] | None:
    policy = app.settings.partner("brand").policy
    explained = reads.explain(app.store, "brand", policy, sku, today=date(2026, 12, 5), on=on)
    schedule: dict[str, Any] | None = views.explanation(explained).get("schedule")  # type: ignore[assignment]
    return schedule


def test_the_permanent_item_sold_out_today_is_promised_from_the_15th_less_what_is_allocated(
    app: bootstrap.App, tmp_path: Path
) -> None:
    """3 held by an open order, then the snapshot: 0 on hand, 20 from the 15th. ATS today 0 (oversold by 3); the ATP
    on the 14th is still 0, on the 15th 20 - 3 = 17; explain lists each date and names the limiting one."""
    app.commands.set_stock("brand", "COAT", 3, at("2026-12-05T08:00:00Z"))
    app.commands.place("brand", "O-1", [RequestedLine("COAT", 3)])
    result = ingest(app, tmp_path, "stock.csv", "sku,quantity,available_from\nCOAT,0,\nCOAT,20,2026-12-15\n")
    assert (result.outcome, result.counts.applied, result.counts.refused) == ("applied", 2, 0), result.summary()
    assert atp(app, "COAT", date(2026, 12, 5)) == (0, 0)
    assert atp(app, "COAT", date(2026, 12, 14)) == (0, 0)
    assert atp(app, "COAT", THE_15TH) == (0, 17)
    assert atp(app, "COAT", date(2027, 1, 1)) == (0, 17)
    assert schedule_of(app, "COAT") == {
        "on": "2026-12-05",
        "atp": -3,
        "limiting": "2026-12-05",
        "days": [
            {"date": "2026-12-05", "supply": 0, "demand": 3, "balance": -3},
            {"date": "2026-12-15", "supply": 20, "demand": 0, "balance": 17},
        ],
    }
    assert schedule_of(app, "COAT", THE_15TH)["limiting"] == "2026-12-15"  # type: ignore[index]


def test_an_earlier_receipt_on_hand_and_a_later_one_kept_apart(app: bootstrap.App, tmp_path: Path) -> None:
    """On hand 5, a receipt dated before today (on hand already), one dated today, one on the 15th given as an instant
    without offset, two rows on the 15th adding up: the level is 5 + 2 + 1, the 15th brings 4 + 6 more."""
    text = (
        "sku,quantity,as_of,available_from\n"
        "HAT,5,2026-12-05T08:00:00Z,\n"
        "HAT,2,2026-12-05T08:00:00Z,2026-12-01\n"
        "HAT,1,2026-12-05T08:00:00Z,2026-12-05\n"
        "HAT,4,2026-12-05T08:00:00Z,2026-12-15T08:00:00\n"
        "HAT,6,2026-12-05T08:00:00Z,2026-12-15\n"
    )
    assert ingest(app, tmp_path, "stock.csv", text).outcome == "applied"
    assert atp(app, "HAT", date(2026, 12, 5)) == (8, 8)
    assert atp(app, "HAT", THE_15TH) == (8, 18)
    assert pending_ats(app, "brand") == {"HAT": 8}  # today's ATS is published; the receipts publish nothing


def test_a_later_snapshot_replaces_the_schedule_and_a_stale_one_is_skipped(app: bootstrap.App, tmp_path: Path) -> None:
    """The 15th's 20 replaced by 7 on the 20th; a snapshot older than the SKU's inventory timestamp changes nothing,
    its receipts included; a snapshot without the column leaves the SKU all on hand (its receipts go)."""
    header = "sku,quantity,as_of,available_from\n"
    ingest(app, tmp_path, "1.csv", header + "COAT,0,2026-12-05T08:00:00Z,\nCOAT,20,2026-12-05T08:00:00Z,2026-12-15\n")
    later = ingest(
        app, tmp_path, "2.csv", header + "COAT,1,2026-12-05T08:30:00Z,\nCOAT,7,2026-12-05T08:30:00Z,2026-12-20\n"
    )
    assert later.outcome == "applied"
    assert atp(app, "COAT", THE_15TH) == (1, 1)
    assert atp(app, "COAT", date(2026, 12, 20)) == (1, 8)
    before = contents(app)
    stale = ingest(
        app, tmp_path, "3.csv", header + "COAT,9,2026-12-05T08:10:00Z,\nCOAT,50,2026-12-05T08:10:00Z,2026-12-16\n"
    )
    assert (stale.outcome, stale.counts.applied, stale.counts.skipped) == ("applied", 0, 2), stale.summary()
    assert contents(app) == before
    plain = ingest(app, tmp_path, "4.csv", "sku,quantity,as_of\nCOAT,2,2026-12-05T08:45:00Z\n")
    assert plain.outcome == "applied"
    assert atp(app, "COAT", date(2026, 12, 20)) == (2, 2)
    assert schedule_of(app, "COAT") is None  # no receipt left: explained as any SKU


def test_a_malformed_date_refuses_that_skus_schedule_at_its_line_and_the_rest_applies(
    app: bootstrap.App, tmp_path: Path
) -> None:
    """`15/12/2026` is no date: its row is refused (`bad_available_from`, its line named), its SKU left as it was;
    another SKU of the file applies. A SKU given twice without a date is still a malformed file."""
    text = "sku,quantity,available_from\nCOAT,0,\nCOAT,20,15/12/2026\nHAT,4,\n"
    result = ingest(app, tmp_path, "stock.csv", text)
    assert (result.outcome, result.counts.applied, result.counts.refused) == ("applied", 1, 2)
    [refused] = result.refusals
    assert (refused.line, refused.reason, refused.column) == (3, "bad_available_from", "available_from")
    assert "'15/12/2026'" in refused.message
    assert "COAT" in refused.message
    assert [v.sku for v in reads.ats(app.store, "brand")] == ["HAT"]
    alone = ingest(app, tmp_path, "alone.csv", "sku,quantity,available_from\nCOAT,1,someday\n")
    assert (alone.outcome, alone.counts.applied, alone.counts.refused) == ("applied", 0, 1)
    twice = ingest(app, tmp_path, "twice.csv", "sku,quantity,available_from\nHAT,1,\nHAT,2,\n")
    assert twice.outcome == "rejected"
    assert "appears more than once" in twice.summary()


def test_a_partner_sending_no_dates_publishes_exactly_what_it_did(app: bootstrap.App, tmp_path: Path) -> None:
    """A snapshot without the column keeps every unit on hand and queues the same ATS messages as before (value and
    inventory timestamp), holds no receipt, and explains no schedule."""
    result = ingest(
        app, tmp_path, "stock.csv", "sku,quantity,as_of\nCOAT,5,2026-12-05T08:00:00Z\nHAT,0,2026-12-05T08:00:00Z\n"
    )
    assert result.outcome == "applied"
    with app.store.read() as tx:
        partner_id = tx.partners.id_of("brand")
        queued = sorted((m.key, m.value, m.as_of) for m in tx.outbox.rows(partner_id) if m.kind == "ats")
        assert not tx.supply.holds(partner_id)
    stamp = at("2026-12-05T08:00:00Z")
    assert queued == [("COAT", 5, stamp), ("HAT", 0, stamp)]
    assert contents(app)["supply_receipts"] == []
    assert schedule_of(app, "COAT") is None
    assert atp(app, "COAT", THE_15TH) == (5, 5)


def test_receipts_alone_changing_queue_todays_value_again_for_its_schedule(app: bootstrap.App, tmp_path: Path) -> None:
    """The same level and instant with another receipt: the ATS today does not move (no change reported), but the
    SKU's message is queued again, by this snapshot, with the same value: it carries the new schedule when sent
    (tests/integration/test_schedule_delivery.py)."""
    header = "sku,quantity,as_of,available_from\n"
    ingest(app, tmp_path, "1.csv", header + "COAT,5,2026-12-05T08:00:00Z,\nCOAT,20,2026-12-05T08:00:00Z,2026-12-15\n")
    again = ingest(
        app, tmp_path, "2.csv", header + "COAT,5,2026-12-05T08:00:00Z,\nCOAT,30,2026-12-05T08:00:00Z,2026-12-16\n"
    )
    assert (again.outcome, again.ats_changes) == ("applied", 0), again.summary()
    with app.store.read() as tx:
        [queued] = [m for m in tx.outbox.rows(tx.partners.id_of("brand")) if m.kind == "ats"]
    assert (queued.key, queued.value, queued.ledger_id, queued.payload) == ("COAT", 5, again.ledger_id, None)
    assert atp(app, "COAT", date(2026, 12, 16)) == (5, 35)


def test_the_api_gives_the_atp_on_a_date_and_explains_the_schedule(
    app: bootstrap.App, client: TestClient, tmp_path: Path
) -> None:
    """`GET ats?on=` adds `on` and `atp` beside the ATS; a date before today is today; `GET ats/{sku}/explain?on=`
    carries the schedule; a date that is none is a 422."""
    ingest(app, tmp_path, "stock.csv", "sku,quantity,available_from\nCOAT,0,\nCOAT,20,2026-12-15\n")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = client.get("/v1/partners/brand/ats", params={"sku": "COAT", "on": "2026-12-15"}, headers=headers)
    assert answer.status_code == 200, answer.text
    [found] = answer.json()
    assert (found["ats"], found["on"], found["atp"]) == (0, "2026-12-15", 20)
    past = client.get("/v1/partners/brand/ats", params={"sku": "COAT", "on": "2026-11-01"}, headers=headers).json()
    assert (past[0]["on"], past[0]["atp"]) == ("2026-12-05", 0)
    plain = client.get("/v1/partners/brand/ats", params={"sku": "COAT"}, headers=headers).json()
    assert "atp" not in plain[0]
    explained = client.get("/v1/partners/brand/ats/COAT/explain", params={"on": "2026-12-15"}, headers=headers)
    assert explained.json()["schedule"]["atp"] == 20
    assert explained.json()["schedule"]["limiting"] == "2026-12-15"
    bad = client.get("/v1/partners/brand/ats", params={"sku": "COAT", "on": "soon"}, headers=headers)
    assert bad.status_code == 422
    assert "soon" in bad.json()["detail"]


def test_copy_is_never_tried_for_a_dated_snapshot_nor_for_a_partner_holding_receipts(
    app: bootstrap.App, tmp_path: Path, store_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's COPY path reads plain levels only: a plain first snapshot takes it, one with `available_from`
    and any snapshot after it (the partner holds receipts) go to the Python reader, with the right schedule."""
    tried: list[int | None] = []
    copy_file = PostgresLevelLoader.copy_file

    def noting(self: PostgresLevelLoader, file: SnapshotFile) -> int | None:
        rows = copy_file(self, file)
        tried.append(rows)
        return rows

    monkeypatch.setattr(PostgresLevelLoader, "copy_file", noting)
    ingest(app, tmp_path, "1.csv", "sku,quantity,as_of\nCOAT,1,2026-12-05T08:00:00Z\n")
    assert tried == ([1] if store_backend == "postgresql" else [])
    tried.clear()
    dated = ingest(
        app, tmp_path, "2.csv", "sku,quantity,as_of,available_from\nCOAT,2,2026-12-05T08:10:00Z,2026-12-15\n"
    )
    plain = ingest(app, tmp_path, "3.csv", "sku,quantity,as_of\nHAT,3,2026-12-05T08:20:00Z\n")
    assert (dated.outcome, plain.outcome, tried) == ("applied", "applied", [])
    assert atp(app, "COAT", THE_15TH) == (0, 2)
    assert atp(app, "HAT", THE_15TH) == (3, 3)


def test_the_command_line_prints_the_atp_on_a_date_and_the_schedule(tmp_path: Path) -> None:
    """`gateway ats --on DATE` (today: the machine's date), `--explain` with its schedule table and limiting date,
    `--json` with `on` and `atp`; a date that is none is a usage error."""
    today = datetime.now(UTC).date()
    arriving = today + timedelta(days=10)
    config = write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}, f"sqlite:///{tmp_path / 'gateway.db'}")
    snapshot = tmp_path / "stock.csv"
    snapshot.write_text(f"sku,quantity,available_from\nCOAT,0,\nCOAT,20,{arriving}\n", encoding="utf-8")

    def gateway(*args: str) -> str:
        done = in_process.run(["--config", str(config), "--log-level", "warning", *args])
        assert done.returncode == 0, done.stderr
        return done.stdout

    gateway("ingest", "--partner", "brand", "--kind", "stock", str(snapshot))
    table = gateway("ats", "--partner", "brand", "--sku", "COAT", "--on", arriving.isoformat()).splitlines()
    assert table[1].split() == ["COAT", "0", "0", "0", arriving.isoformat(), "20"]
    [found] = json.loads(gateway("ats", "--partner", "brand", "--sku", "COAT", "--on", str(arriving), "--json"))
    assert (found["ats"], found["on"], found["atp"]) == (0, arriving.isoformat(), 20)
    explained = gateway("ats", "--partner", "brand", "--sku", "COAT", "--explain")
    assert f"    {arriving.isoformat()}       20        0       20" in explained
    assert f"ATP on {today.isoformat()}: 0 " in explained
    assert f"limiting date {today.isoformat()}" in explained
    bad = in_process.run(["--config", str(config), "ats", "--partner", "brand", "--sku", "COAT", "--on", "soon"])
    assert bad.returncode == 2
    assert "soon" in bad.stderr


def test_a_sku_the_snapshot_omits_loses_its_receipts_too_when_omitted_skus_are_zero(
    tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    """`absent = "zero"`: COAT, left out of the next dated snapshot, has nothing on hand and nothing coming; a SKU
    whose date was refused is not one the snapshot omitted, so it keeps its schedule."""
    clock.set(TODAY)
    config = write_config(tmp_path, {"brand": {"stock_mode": "advanced", "absent": "zero"}}, store_url)
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    try:
        header = "sku,quantity,as_of,available_from\n"
        first = header + "COAT,1,2026-12-05T08:00:00Z,\nCOAT,20,2026-12-05T08:00:00Z,2026-12-15\n"
        first += "HAT,2,2026-12-05T08:00:00Z,\nHAT,9,2026-12-05T08:00:00Z,2026-12-15\n"
        assert ingest(app, tmp_path, "1.csv", first).outcome == "applied"
        second = header + "HAT,3,2026-12-05T08:30:00Z,2026-12-15T25:00\n"
        result = ingest(app, tmp_path, "2.csv", second)
        assert (result.outcome, result.counts.refused, result.counts.extra["zeroed"]) == ("applied", 1, 1)
        assert atp(app, "COAT", THE_15TH) == (0, 0)
        assert atp(app, "HAT", THE_15TH) == (2, 11)
    finally:
        app.close()


def test_the_dated_fixtures_apply_as_the_fixtures_readme_says(app: bootstrap.App) -> None:
    """fixtures/stock/good_dated.csv, then refused_bad_available_from.csv: line 4 refused, its SKU's schedule kept,
    the other SKU replaced whole (its receipt gone)."""
    folder = Path(__file__).resolve().parents[2] / "fixtures" / "stock"
    good = app.ingestor.ingest("brand", Kind.STOCK, folder / "good_dated.csv")
    assert (good.outcome, good.counts.applied) == ("applied", 5), good.summary()
    far = date(2099, 12, 20)
    assert atp(app, "3700000000011", far) == (0, 20)
    assert atp(app, "3700000000028", date(2099, 12, 15)) == (4, 10)
    assert atp(app, "3700000000028", far) == (4, 12)
    refused = app.ingestor.ingest("brand", Kind.STOCK, folder / "refused_bad_available_from.csv")
    assert [(p.line, p.reason) for p in refused.refusals] == [(4, "bad_available_from")]
    assert atp(app, "3700000000011", far) == (5, 5)
    assert atp(app, "3700000000028", far) == (4, 12)


def test_simple_mode_takes_a_confirmed_line_from_the_units_on_hand_and_leaves_the_receipts(
    tmp_path: Path, clock: FakeClock, store_url: str
) -> None:
    """Simple mode, 5 on hand and 10 from the 15th: a line of 3 confirmed takes 3 on hand (level 2), the 15th keeps
    its 10 (ATP 12); a `stock set` later sets the units on hand and leaves the receipt as it is."""
    clock.set(TODAY)
    config = write_config(tmp_path, {"brand": {"stock_mode": "simple"}}, store_url)
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    try:
        text = (
            "sku,quantity,as_of,available_from\nCOAT,5,2026-12-05T08:00:00Z,\nCOAT,10,2026-12-05T08:00:00Z,2026-12-15\n"
        )
        assert ingest(app, tmp_path, "1.csv", text).outcome == "applied"
        app.commands.place("brand", "O-1", [RequestedLine("COAT", 3)])
        app.commands.set_status("brand", "O-1", OrderStatus.CONFIRMED)
        assert atp(app, "COAT", date(2026, 12, 5)) == (2, 2)
        assert atp(app, "COAT", THE_15TH) == (2, 12)
        app.commands.set_stock("brand", "COAT", 4, at("2026-12-05T08:40:00Z"))
        assert atp(app, "COAT", THE_15TH) == (4, 14)
    finally:
        app.close()
