"""Caps through the engine, the store and cap files: every behaviour of seed 000 on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import bootstrap
from gateway.domain.caps import CapReached, CapSource, EffectiveCap, OverCap
from gateway.domain.errors import InsufficientStock, InvalidOrder
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service import queries, reads
from gateway.service.channels import Erased
from tests.conftest import FIXTURES, AppFactory
from tests.integration.helpers import ats, contents

pytestmark = pytest.mark.both_stores

ASM, DEC1, DEC8 = "paris-11", "2026-12-01", "2026-12-08"


def channel(app: bootstrap.App, sku: str = "EGGS", collection: str = DEC1) -> tuple[int, int | None, int]:
    with app.store.read() as tx:
        view = queries.channel(tx, "p", sku, ASM, collection)
    return view.ats, view.cap, view.ordered


def place(app: bootstrap.App, order_id: str, quantity: int, collection: str = DEC1, sku: str = "EGGS") -> None:
    app.commands.place("p", order_id, [RequestedLine(sku, quantity, ASM, collection)])


def channel_messages(app: bootstrap.App) -> dict[tuple[str, str, str], int | None]:
    with app.store.read() as tx:
        return {
            tuple(json.loads(m.key)): m.value  # type: ignore[misc]
            for m in tx.outbox.rows(tx.partners.id_of("p"))
            if m.kind == "channel_ats"
        }


@pytest.fixture
def app(make_app: AppFactory) -> bootstrap.App:
    built = make_app(p={"stock_mode": "advanced"})
    built.commands.set_stock("p", "EGGS", 30, None)
    return built


def test_a_collection_takes_no_more_than_its_cap(app: bootstrap.App) -> None:
    """Cap 10: 8 then 2 are placed, the 11th unit is refused, and the SKU keeps the rest for other collections."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    place(app, "O1", 8)
    assert channel(app) == (2, 10, 8)
    with pytest.raises(CapReached):
        place(app, "O2", 3)
    place(app, "O3", 2)
    assert channel(app) == (0, 10, 10)
    assert ats(app, "p", "EGGS") == 20
    place(app, "O4", 5, collection=DEC8)  # another collection: not capped
    assert ats(app, "p", "EGGS") == 15


def test_a_refused_placement_changes_nothing(app: bootstrap.App) -> None:
    """All lines or none: a line over its cap refuses the whole order and writes nothing."""
    app.commands.set_stock("p", "MILK", 30, None)
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 2)
    before = contents(app)
    with pytest.raises(CapReached):
        app.commands.place("p", "O1", [RequestedLine("MILK", 1, ASM, DEC1), RequestedLine("EGGS", 3, ASM, DEC1)])
    assert contents(app) == before


def test_the_skus_own_ats_still_limits_a_capped_collection(app: bootstrap.App) -> None:
    """A cap never raises ATS: with 30 in stock and a cap of 50, 31 is refused for stock."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 50)
    with pytest.raises(InsufficientStock):
        place(app, "O1", 31)
    assert channel(app) == (30, 50, 0)


def test_apply_to_all_collections_caps_every_collection_of_the_assembly(app: bootstrap.App) -> None:
    """The assembly default applies to collections never seen before."""
    app.commands.set_cap("p", "EGGS", ASM, None, 4)
    assert channel(app, collection="2027-01-05") == (4, 4, 0)
    with pytest.raises(CapReached):
        place(app, "O1", 5, collection="2027-01-05")


def test_apply_to_all_collections_also_affects_the_ongoing_collections(app: bootstrap.App) -> None:
    """BE AWARE: the ongoing collection's own cap of 10 is replaced by the new default of 5."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    place(app, "O1", 3)
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    assert channel(app) == (2, 5, 3)
    with app.store.read() as tx:
        rows = tx.caps.rows(tx.partners.id_of("p"))
    assert [(r.collection, r.max_units) for r in rows] == [("*", 5)]


def test_no_maximum_for_one_collection_leaves_only_the_overall_stock(app: bootstrap.App) -> None:
    """Even under an assembly default, that collection may take all the SKU's ATS."""
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    app.commands.set_cap("p", "EGGS", ASM, DEC8, None)
    place(app, "O1", 25, collection=DEC8)
    assert channel(app, collection=DEC8) == (5, None, 25)
    assert channel(app, collection=DEC1) == (5, 5, 0)


def test_lowering_a_cap_below_what_is_ordered_keeps_the_orders_and_gives_zero(app: bootstrap.App) -> None:
    """Existing orders stay; nothing more can be placed."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    place(app, "O1", 8)
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 5)
    assert channel(app) == (0, 5, 8)
    with app.store.read() as tx:
        assert tx.orders.get(tx.partners.id_of("p"), "O1") is not None
    with pytest.raises(CapReached):
        place(app, "O2", 1)


def test_cancelled_lines_free_cap_room(app: bootstrap.App) -> None:
    """A cap counts units on lines that are not cancelled; closed lines still count."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    place(app, "O1", 6)
    place(app, "O2", 4)
    app.commands.set_status("p", "O2", OrderStatus.CLOSED)
    assert channel(app)[2] == 10
    app.commands.set_status("p", "O1", OrderStatus.CANCELLED)
    assert channel(app) == (6, 10, 4)
    with pytest.raises(CapReached):
        place(app, "O3", 7)
    place(app, "O3", 6)


def test_every_channel_ats_change_is_queued_with_its_latest_value(app: bootstrap.App) -> None:
    """Keyed by (sku, assembly, collection); a newer value replaces the undelivered one."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 10}
    place(app, "O1", 8)
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 2}
    app.commands.set_stock("p", "EGGS", 1, None)  # stock drops below the room left
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 0}
    app.commands.set_cap("p", "EGGS", ASM, None, 3)
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 0, ("EGGS", ASM, "*"): 0}


def test_a_line_with_an_assembly_but_no_collection_is_refused(app: bootstrap.App) -> None:
    """A channel is an assembly and a collection."""
    with pytest.raises(InvalidOrder):
        app.commands.place("p", "O1", [RequestedLine("EGGS", 1, ASM, None)])


def test_a_good_cap_file_sets_defaults_overrides_and_no_maximum(app: bootstrap.App) -> None:
    """`*` applies to all collections, `none` is no maximum; rows apply in file order."""
    result = app.ingestor.ingest("p", Kind.CAPS, FIXTURES / "caps" / "good.csv")
    assert (result.outcome, result.counts.applied) == ("applied", 3)
    with app.store.read() as tx:
        rows = tx.caps.rows(tx.partners.id_of("p"))
    assert [(r.sku, r.assembly, r.collection, r.max_units) for r in rows] == [
        ("3700000000011", "paris-11", "*", 10),
        ("3700000000011", "paris-11", "2026-12-08", None),
        ("3700000000028", "lyon-3", "2026-12-01", 4),
    ]


@pytest.mark.parametrize(
    ("name", "lines"),
    [("bad_rows.csv", [2, 3, 4, 5]), ("bad_missing_column.csv", [1])],
)
def test_a_bad_cap_file_is_refused_with_a_report_and_changes_nothing(
    app: bootstrap.App, name: str, lines: list[int]
) -> None:
    """Negative max, a collection pattern, an empty collection, a missing column: nothing applied."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    before = contents(app)
    result = app.ingestor.ingest("p", Kind.CAPS, FIXTURES / "caps" / name)
    assert result.outcome == "rejected"
    assert [p.line for p in result.problems] == lines
    assert contents(app) == before


def test_the_same_cap_twice_in_one_file_is_malformed(app: bootstrap.App, tmp_path: Path) -> None:
    """Two settings for one (sku, assembly, collection) in one file are ambiguous."""
    path = tmp_path / "caps.csv"
    path.write_text("sku,assembly,collection,max\nEGGS,a,c,1\nEGGS,a,c,2\n", encoding="utf-8")
    result = app.ingestor.ingest("p", Kind.CAPS, path)
    assert result.outcome == "rejected"
    assert "first at line 2" in result.problems[0].message


def test_an_orders_file_places_lines_in_their_collection(app: bootstrap.App, tmp_path: Path) -> None:
    """The optional assembly and collection columns place lines in that channel, caps applied."""
    app.commands.set_stock("p", "3700000000011", 10, None)
    app.commands.set_stock("p", "3700000000028", 10, None)
    app.commands.set_cap("p", "3700000000011", "paris-11", "2026-12-01", 3)
    result = app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good_in_collection.csv")
    assert (result.counts.applied, result.counts.refused) == (0, 2)
    assert "cap of collection 2026-12-01" in result.refusals[0].message
    app.commands.set_cap("p", "3700000000011", "paris-11", "2026-12-01", 4)
    again = tmp_path / "again.csv"  # the same content again would be a duplicate: a corrected file is new content
    again.write_text((FIXTURES / "orders" / "good_in_collection.csv").read_text(encoding="utf-8") + "\n")
    assert app.ingestor.ingest("p", Kind.ORDERS, again).ok
    with app.store.read() as tx:
        view = queries.channel(tx, "p", "3700000000011", "paris-11", "2026-12-01")
    assert (view.ats, view.ordered) == (0, 4)


def test_a_snapshot_republishes_the_channels_of_the_skus_it_changes(app: bootstrap.App, tmp_path: Path) -> None:
    """Channel ATS follows the SKU's ATS when stock drops below the cap's room."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    path = tmp_path / "s.csv"
    path.write_text("sku,quantity\nEGGS,6\n", encoding="utf-8")
    app.clock.advance()  # type: ignore[attr-defined]
    app.ingestor.ingest("p", Kind.STOCK, path)
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 6}


# what a cap command says it did (issue 15, item 11)


def stored(app: bootstrap.App) -> list[tuple[str, str, str, int | None]]:
    with app.store.read() as tx:
        return [(r.sku, r.assembly, r.collection, r.max_units) for r in tx.caps.rows(tx.partners.id_of("p"))]


def test_apply_to_all_collections_says_what_it_erased_and_which_collections_are_now_over(app: bootstrap.App) -> None:
    """Both collections' own settings (a number, a "no maximum") are named; of the ordered collections only the
    one holding more than the new default is over (one exactly at it is full, not over)."""
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    app.commands.set_cap("p", "EGGS", ASM, DEC8, None)
    place(app, "O1", 8)
    place(app, "O2", 5, collection=DEC8)
    place(app, "O3", 2, collection="2026-12-15")
    done = app.commands.set_cap("p", "EGGS", ASM, None, 5)
    edit = done.edit
    assert (edit.sku, edit.assembly, edit.collection, edit.cap) == (
        "EGGS",
        ASM,
        "*",
        EffectiveCap(5, CapSource.ASSEMBLY),
    )
    assert edit.erased == (Erased(DEC1, 10), Erased(DEC8, None))
    assert edit.over_cap == (OverCap(DEC1, 8, 5),)
    assert stored(app) == [("EGGS", ASM, "*", 5)]
    assert done.changes == []  # a cap never moves the SKU's own ATS


def test_apply_to_all_collections_with_nothing_to_erase_says_so(app: bootstrap.App) -> None:
    """No own settings, no orders: nothing erased, nothing over; removing the default leaves no cap."""
    edit = app.commands.set_cap("p", "EGGS", ASM, None, 5).edit
    assert (edit.erased, edit.over_cap) == ((), ())
    edit = app.commands.set_cap("p", "EGGS", ASM, None, None).edit
    assert (edit.cap, edit.erased, edit.over_cap) == (EffectiveCap(None, CapSource.NONE), (), ())


def test_one_collections_cap_set_below_what_it_holds_is_reported_over(app: bootstrap.App) -> None:
    """A collection's own cap lowered under its units: that collection (and no other) is over; nothing erased."""
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    place(app, "O1", 4)
    place(app, "O2", 5, collection=DEC8)
    edit = app.commands.set_cap("p", "EGGS", ASM, DEC1, 3).edit
    assert (edit.collection, edit.cap) == (DEC1, EffectiveCap(3, CapSource.COLLECTION))
    assert (edit.erased, edit.over_cap) == ((), (OverCap(DEC1, 4, 3),))


def test_clearing_a_collection_returns_it_to_the_default_and_republishes_its_ats(app: bootstrap.App) -> None:
    """Its own cap of 10 goes, the default of 5 applies: channel ATS 2 -> 0 is queued; the collection is over."""
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    place(app, "O1", 8)
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 2, ("EGGS", ASM, "*"): 5}
    done = app.commands.clear_cap("p", "EGGS", ASM, DEC1)
    edit = done.edit
    assert (edit.collection, edit.cap) == (DEC1, EffectiveCap(5, CapSource.ASSEMBLY))
    assert (edit.erased, edit.over_cap) == ((Erased(DEC1, 10),), (OverCap(DEC1, 8, 5),))
    assert stored(app) == [("EGGS", ASM, "*", 5)]
    assert channel(app) == (0, 5, 8)
    assert channel_messages(app) == {("EGGS", ASM, DEC1): 0, ("EGGS", ASM, "*"): 5}
    with pytest.raises(CapReached):
        place(app, "O2", 1)


def test_clearing_no_maximum_puts_the_collection_back_under_the_default(app: bootstrap.App) -> None:
    """ "No maximum" cleared: the collection's ATS falls from the SKU's to the default's room."""
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    app.commands.set_cap("p", "EGGS", ASM, DEC8, None)
    place(app, "O1", 3, collection=DEC8)
    assert channel(app, collection=DEC8) == (27, None, 3)
    edit = app.commands.clear_cap("p", "EGGS", ASM, DEC8).edit
    assert (edit.erased, edit.over_cap) == ((Erased(DEC8, None),), ())
    assert channel(app, collection=DEC8) == (2, 5, 3)
    assert channel_messages(app)[("EGGS", ASM, DEC8)] == 2


def test_clearing_a_collection_with_no_setting_of_its_own_changes_nothing(app: bootstrap.App) -> None:
    """Idempotent: nothing erased, nothing written or queued; it still says what applies there."""
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    app.commands.clear_cap("p", "EGGS", ASM, DEC1)
    before = contents(app)
    edit = app.commands.clear_cap("p", "EGGS", ASM, DEC1).edit
    assert (edit.cap, edit.erased, edit.over_cap) == (EffectiveCap(5, CapSource.ASSEMBLY), (), ())
    edit = app.commands.clear_cap("p", "EGGS", "nowhere", DEC1).edit
    assert (edit.cap, edit.erased) == (EffectiveCap(None, CapSource.NONE), ())
    assert contents(app) == before


def test_cap_show_lists_each_collection_with_its_units_and_what_is_left(app: bootstrap.App) -> None:
    """The default first, then each collection with its own setting or ordered under the default, with ordered
    and remaining (negative when over); a collection under no cap and a SKU without caps are left out."""
    app.commands.set_stock("p", "MILK", 30, None)
    app.commands.set_cap("p", "EGGS", ASM, DEC1, 10)
    place(app, "O1", 8)
    place(app, "O2", 4, collection=DEC8)
    place(app, "O3", 3, sku="MILK")  # MILK has no cap: not listed
    app.commands.set_cap("p", "EGGS", ASM, None, 5)
    app.commands.set_cap("p", "EGGS", ASM, "2026-12-22", None)
    app.commands.set_cap("p", "EGGS", "lyon-3", DEC1, 2)
    place(app, "O4", 1, collection="2026-12-29")
    app.commands.set_status("p", "O4", OrderStatus.CANCELLED)  # no units left there: not listed
    shown = [
        (line.assembly, line.collection, line.cap.limit, line.cap.source, line.ordered, line.remaining, line.over_cap)
        for line in reads.caps(app.store, "p")
    ]
    assert shown == [  # by SKU, assembly, collection
        ("lyon-3", DEC1, 2, CapSource.COLLECTION, 0, 2, False),
        (ASM, "*", 5, CapSource.ASSEMBLY, None, None, False),
        (ASM, DEC1, 5, CapSource.ASSEMBLY, 8, -3, True),
        (ASM, DEC8, 5, CapSource.ASSEMBLY, 4, 1, False),
        (ASM, "2026-12-22", None, CapSource.COLLECTION, 0, None, False),
    ]
    assert [line.collection for line in reads.caps(app.store, "p", "EGGS", "lyon-3")] == [DEC1]
    assert reads.caps(app.store, "p", "MILK") == []
