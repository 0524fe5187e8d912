"""Dated collections (#18, rule 4) on both stores: a collection's window refuses orders outside it
(`collection_closed`) on every way an order comes in, its dates come from commands and `collections` files, and
`cap set --all-collections` says which collections were ongoing (open now)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway import bootstrap
from gateway.domain.collections import EmptyWindow
from gateway.domain.days import CollectionClosed, CollectionDates
from gateway.domain.orders import RequestedLine
from gateway.formats.rows import Kind
from gateway.service import at_once, reads
from gateway.settings import PartnerSettings
from tests.conftest import FIXTURES, AppFactory, FakeClock, at
from tests.integration.helpers import ats, contents, status_of

pytestmark = pytest.mark.both_stores

ASM, FRI = "paris-11", "2026-12-11"
# the producer's Friday collection: orders from Friday 4 December 18:00 to Wednesday 9 December 18:00, Paris time
OPENS, CLOSES = at("2026-12-04T18:00:00+01:00"), at("2026-12-09T18:00:00+01:00")
FRIDAY = CollectionDates(OPENS, CLOSES, date(2026, 12, 11))


@pytest.fixture
def app(make_app: AppFactory, clock: FakeClock) -> bootstrap.App:
    """A producer in Paris time, 30 EGGS, on Monday 7 December 2026."""
    clock.set("2026-12-07T09:00:00+01:00")
    built = make_app(p={"stock_mode": "advanced", "timezone": "Europe/Paris"})
    built.commands.set_stock("p", "EGGS", 30, None)
    return built


def place(app: bootstrap.App, order_id: str, quantity: int = 2, collection: str = FRI) -> None:
    app.commands.place("p", order_id, [RequestedLine("EGGS", quantity, ASM, collection)])


def dated(app: bootstrap.App, assembly: str | None = None) -> list[tuple[str, str, CollectionDates, bool]]:
    lines = reads.collections_of(app.store, "p", assembly, app.clock())
    return [(line.assembly, line.collection, line.dates, line.open_now) for line in lines]


def test_an_order_is_taken_from_opens_at_until_just_before_closes_at(app: bootstrap.App, clock: FakeClock) -> None:
    """Before the window and at closes_at exactly the order is refused whole, nothing kept; inside it is placed."""
    app.commands.set_collection("p", ASM, FRI, FRIDAY)
    clock.set("2026-12-04T17:59:59+01:00")
    before = contents(app)
    with pytest.raises(CollectionClosed) as early:
        place(app, "O-early")
    assert early.value.code == "collection_closed"
    assert "it opens at 2026-12-04T17:00:00Z" in str(early.value)
    assert contents(app) == before
    clock.set("2026-12-04T18:00:00+01:00")
    place(app, "O-first", 8)
    clock.set("2026-12-09T17:59:59.999999+01:00")
    place(app, "O-last", 2)
    clock.set("2026-12-09T18:00:00+01:00")
    with pytest.raises(CollectionClosed, match="it closed at 2026-12-09T17:00:00Z"):
        place(app, "O-late")
    assert status_of(app, "O-late") is None
    assert ats(app, "p", "EGGS") == 20
    with app.store.read() as tx:
        [channel] = [c for c in tx.caps.channels(tx.partners.id_of("p"), ["EGGS"]) if c.collection == FRI]
    assert channel.ordered == 10


def test_the_one_statement_placement_leaves_an_order_in_a_collection_to_the_engine(app: bootstrap.App) -> None:
    """On PostgreSQL a placement is first tried in one statement: an order naming a collection never goes that way,
    so the window is checked by the engine (and on SQLite there is no such statement)."""
    app.commands.set_collection("p", ASM, FRI, CollectionDates(closes_at=at("2026-12-01T00:00:00Z")))
    policy = app.settings.partner("p").policy
    line = RequestedLine("EGGS", 1, ASM, FRI)
    assert at_once.request("p", "O1", [line], policy=policy, now=app.clock(), command="cli") is None
    assert app.commands.place_at_once("p", "O1", [line]) is None
    with pytest.raises(CollectionClosed):
        app.commands.place("p", "O1", [line])
    assert status_of(app, "O1") is None


def test_a_collection_without_dates_takes_orders_at_any_time(app: bootstrap.App, clock: FakeClock) -> None:
    """Undated collections follow today's rules; clearing every date of a collection makes it undated again."""
    place(app, "O1", collection="undated")
    app.commands.set_collection("p", ASM, FRI, CollectionDates(closes_at=at("2026-12-01T00:00:00Z")))
    with pytest.raises(CollectionClosed):
        place(app, "O2")
    done = app.commands.set_collection("p", ASM, FRI, CollectionDates())
    assert done.before is not None
    assert done.line.open_now
    assert dated(app) == []
    place(app, "O2")
    assert status_of(app, "O2") == "pending"


def test_a_window_closing_at_or_before_it_opens_is_refused_and_nothing_is_stored(app: bootstrap.App) -> None:
    """closes_at == opens_at would never take an order: refused, `collection_window_empty`."""
    with pytest.raises(EmptyWindow) as refused:
        app.commands.set_collection("p", ASM, FRI, CollectionDates(OPENS, OPENS))
    assert refused.value.code == "collection_window_empty"
    assert dated(app) == []


def test_the_pickup_date_is_stored_and_shown_with_the_window(app: bootstrap.App) -> None:
    """The dates read back as set, and the collection is open on Monday."""
    done = app.commands.set_collection("p", ASM, FRI, FRIDAY)
    assert (done.before, done.line.open_now) == (None, True)
    app.commands.set_collection("p", "lyon-3", "week-50", CollectionDates(pickup_on=date(2026, 12, 12)))
    assert dated(app) == [
        ("lyon-3", "week-50", CollectionDates(pickup_on=date(2026, 12, 12)), True),
        (ASM, FRI, FRIDAY, True),
    ]
    assert [row[1] for row in dated(app, "lyon-3")] == ["week-50"]
    with app.store.read() as tx:  # the keyed read a placement makes gives the same dates back
        partner_id = tx.partners.id_of("p")
        assert tx.collections.get(partner_id, ASM, FRI) == FRIDAY
        assert tx.collections.get(partner_id, ASM, "undated") is None


def test_cap_set_for_all_collections_reports_the_ongoing_ones(app: bootstrap.App) -> None:
    """Ongoing = open now: the undated collection and Friday's are; last week's (closed) and the next one (not open
    yet) are not. Every collection's own setting is erased all the same, as the caps rules say."""
    app.commands.set_collection("p", ASM, FRI, FRIDAY)
    app.commands.set_collection("p", ASM, "2026-12-04", CollectionDates(closes_at=at("2026-12-02T18:00:00+01:00")))
    app.commands.set_collection("p", ASM, "2026-12-18", CollectionDates(opens_at=at("2026-12-11T18:00:00+01:00")))
    for collection in ("2026-12-04", FRI, "undated"):
        app.commands.set_cap("p", "EGGS", ASM, collection, 10)
    done = app.commands.set_cap("p", "EGGS", ASM, None, 5)
    assert [e.collection for e in done.edit.erased] == ["2026-12-04", FRI, "undated"]
    assert done.edit.ongoing == (FRI, "undated")
    one = app.commands.set_cap("p", "EGGS", ASM, FRI, 7)
    assert one.edit.ongoing == ()


def test_a_collections_file_sets_each_collections_dates_in_the_partners_zone(app: bootstrap.App) -> None:
    """Times without an offset are Paris time; empty cells are no date; a row of empty cells leaves no dates."""
    app.commands.set_collection("p", "lyon-3", "week-50", CollectionDates(pickup_on=date(2026, 12, 1)))
    result = app.ingestor.ingest("p", Kind.COLLECTIONS, FIXTURES / "collections" / "good.csv")
    assert (result.outcome, result.counts.applied, result.refusals) == ("applied", 3, [])
    assert dated(app) == [
        (ASM, FRI, FRIDAY, True),
        (ASM, "2026-12-18", CollectionDates(None, at("2026-12-16T17:00:00Z"), date(2026, 12, 18)), True),
    ]


def test_a_malformed_collections_file_is_rejected_whole_with_a_report(app: bootstrap.App) -> None:
    """A bad timestamp, an empty collection, a bad date: each line named, nothing applied."""
    app.commands.set_collection("p", ASM, FRI, FRIDAY)
    before = contents(app)
    result = app.ingestor.ingest("p", Kind.COLLECTIONS, FIXTURES / "collections" / "bad_rows.csv")
    assert result.outcome == "rejected"
    assert [(p.line, p.column) for p in result.problems] == [(2, "opens_at"), (3, "collection"), (4, "pickup_on")]
    assert contents(app) == before


def test_a_collections_row_whose_window_is_empty_is_refused_alone(app: bootstrap.App, tmp_path: Path) -> None:
    """closes_at <= opens_at refuses that row (its line and reason); the other rows apply."""
    path = tmp_path / "collections.csv"
    path.write_text(
        "assembly,collection,opens_at,closes_at,pickup_on\n"
        "paris-11,A,2026-12-09T18:00:00,2026-12-04T18:00:00,\n"
        "paris-11,B,,2026-12-09T18:00:00,2026-12-11\n",
        encoding="utf-8",
    )
    result = app.ingestor.ingest("p", Kind.COLLECTIONS, path)
    assert (result.outcome, result.counts.applied, result.counts.refused) == ("applied", 1, 1)
    assert [(p.line, p.reason) for p in result.refusals] == [(2, "collection_window_empty")]
    assert [row[1] for row in dated(app)] == ["B"]


def test_an_orders_file_refuses_an_order_in_a_closed_collection_alone(app: bootstrap.App, tmp_path: Path) -> None:
    """The order in last week's closed collection is refused with its lines (`collection_closed`); the order in
    Friday's open collection is placed."""
    app.commands.set_collection("p", ASM, FRI, FRIDAY)
    app.commands.set_collection("p", ASM, "2026-12-04", CollectionDates(closes_at=at("2026-12-02T18:00:00+01:00")))
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,sku,quantity,status,assembly,collection\n"
        "O-late,EGGS,2,pending,paris-11,2026-12-04\n"
        "O-fri,EGGS,3,confirmed,paris-11,2026-12-11\n",
        encoding="utf-8",
    )
    result = app.ingestor.ingest("p", Kind.ORDERS, path)
    assert (result.counts.applied, result.counts.refused) == (1, 1)
    assert [(p.line, p.reason) for p in result.refusals] == [(2, "collection_closed")]
    assert (status_of(app, "O-late"), status_of(app, "O-fri")) == (None, "confirmed")


def test_a_collections_file_is_a_kind_of_every_partners_files(app: bootstrap.App) -> None:
    """[partners.P.files.collections] holds its columns like every kind's."""
    partner: PartnerSettings = app.settings.partner("p")
    assert partner.files.collections.columns.model_dump() == {
        "assembly": "assembly",
        "collection": "collection",
        "opens_at": "opens_at",
        "closes_at": "closes_at",
        "pickup_on": "pickup_on",
    }


def test_a_folder_source_of_kind_collections_applies_its_files(make_app: AppFactory, tmp_path: Path) -> None:
    """`kind = "collections"` in a source: a dropped file is taken, applied once and archived."""
    (tmp_path / "drop").mkdir()
    source = {"name": "dates-in", "type": "folder", "kind": "collections", "path": "drop"}
    app = make_app(p={"stock_mode": "advanced", "timezone": "Europe/Paris", "sources": [source]})
    (tmp_path / "drop" / "week-50.csv").write_bytes((FIXTURES / "collections" / "good.csv").read_bytes())
    app.pickup.poll("p", app.settings.partner("p").source("dates-in"))
    assert [row[1] for row in dated(app)] == [FRI, "2026-12-18"]
    assert not (tmp_path / "drop" / "week-50.csv").exists()
