"""Status-only acknowledgement files (`order_id,status[,updated_at]`) ingested into a real store: orders closed
without repeating their lines, by the rules of status moves; unknown orders and illegal moves refused per row; an
order given twice refuses the file whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import bootstrap
from gateway.domain.orders import RequestedLine
from gateway.domain.outcomes import Outcome
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service.ingest import IngestResult
from tests.conftest import FIXTURES, AppFactory, FakeClock, at
from tests.integration.helpers import ats, contents, messages, pending_ats, status_of, stock

pytestmark = pytest.mark.both_stores

S = OrderStatus
SKU = "3700000000011"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def acknowledge(app: bootstrap.App, tmp_path: Path, text: str, name: str = "ack.csv") -> IngestResult:
    """Write `text` as an acknowledgements file and ingest it for partner p."""
    return app.ingestor.ingest("p", Kind.ACKNOWLEDGEMENTS, write(tmp_path, name, text))


def ledger(app: bootstrap.App, partner: str = "p"):  # type: ignore[no-untyped-def]
    with app.store.read() as tx:
        return tx.ledger.entries(tx.partners.id_of(partner))


def stocked(make_app: AppFactory, **partner: object) -> bootstrap.App:
    """Partner p with SKU at 10 as of 2019-06-25T12:00Z."""
    app = make_app(p=partner)
    app.commands.set_stock("p", SKU, 10, at("2019-06-25T12:00:00Z"))
    return app


def test_the_good_fixture_closes_both_orders_by_status_alone(make_app: AppFactory) -> None:
    """fixtures/acknowledgements/good.csv after orders/good.csv (advanced): both orders closed, their units free
    again, each closed order queued once, one `applied` ledger entry of kind acknowledgements."""
    app = make_app(p={"stock_mode": "advanced"})
    app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good.csv")
    assert (ats(app, "p", "3700000000011"), ats(app, "p", "3700000000028")) == (5, 3)
    result = app.ingestor.ingest("p", Kind.ACKNOWLEDGEMENTS, FIXTURES / "acknowledgements" / "good.csv")
    assert (result.outcome, result.counts.applied, result.counts.refused, result.refusals) == ("applied", 2, 0, [])
    assert (status_of(app, "O-1001"), status_of(app, "O-1002")) == (S.CLOSED, S.CLOSED)
    assert (ats(app, "p", "3700000000011"), ats(app, "p", "3700000000028")) == (10, 4)
    assert pending_ats(app, "p") | {"3700000000035": 0} == {"3700000000011": 10, "3700000000028": 4, "3700000000035": 0}
    assert sorted(messages(app, "p", "order_closed")) == ["O-1001", "O-1002"]
    entry = ledger(app)[0]
    assert (entry.kind, entry.outcome, entry.rows_applied) == ("acknowledgements", "applied", 2)


# (mode options, ATS after placing 5 of 10, ATS after the close, stock level after the close)
CLOSING = {
    "simple_pending_on": ({"stock_mode": "simple", "pending_allocation": True}, 5, 5, 5),
    "simple_pending_off": ({"stock_mode": "simple", "pending_allocation": False}, 10, 5, 5),
    "advanced": ({"stock_mode": "advanced"}, 5, 10, 10),
    "time_based": ({"stock_mode": "time_based"}, 5, 5, 10),
}


@pytest.mark.parametrize("mode", list(CLOSING))
def test_closing_a_pending_order_moves_stock_and_ats_as_its_mode_says(
    make_app: AppFactory, tmp_path: Path, mode: str
) -> None:
    """A close is the status move it names: simple takes the units from stock (leaving pending), advanced frees
    them, time_based keeps them allocated until the partner's confirmation is in a snapshot; the ATS published
    is queued only when it moved."""
    options, after_placing, after_closing, level = CLOSING[mode]
    app = stocked(make_app, **options)
    app.commands.place("p", "O-1", [RequestedLine(SKU, 5)])
    assert ats(app, "p", SKU) == after_placing
    result = acknowledge(app, tmp_path, "order_id,status\nO-1,closed\n")
    assert (result.outcome, result.counts.applied) == ("applied", 1)
    assert (stock(app, "p", SKU), ats(app, "p", SKU)) == (level, after_closing)
    assert pending_ats(app, "p") == {SKU: after_closing}
    assert result.ats_changes == (1 if after_closing != after_placing else 0)
    assert messages(app, "p", "order_closed") == ["O-1"]


def test_time_based_a_closed_line_is_freed_by_its_confirmation_and_the_next_snapshot(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """The seed's time_based sequence with the close sent as an acknowledgements file: 5, 5, confirmed 4 -> 6,
    stock 6 -> 6."""
    app = stocked(make_app, stock_mode="time_based")
    app.commands.place("p", "O-1", [RequestedLine(SKU, 5)])
    acknowledge(app, tmp_path, "order_id,status,updated_at\nO-1,closed,2019-06-26T10:00:00Z\n")
    assert ats(app, "p", SKU) == 5
    app.commands.confirm("p", "O-1", SKU, 4, at("2019-06-26T11:00:00Z"))
    assert ats(app, "p", SKU) == 6
    app.commands.set_stock("p", SKU, 6, at("2019-06-26T12:00:00Z"))
    assert (stock(app, "p", SKU), ats(app, "p", SKU)) == (6, 6)


def test_unknown_orders_are_refused_per_row_with_their_lines_and_the_rest_applies(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A typo'd order id creates nothing: its row is refused (unknown order), as the acknowledgements feed
    refuses it; the known order on the next row is closed."""
    app = stocked(make_app, stock_mode="advanced")
    app.commands.place("p", "REAL-1", [RequestedLine(SKU, 5)])
    result = acknowledge(app, tmp_path, "order_id,status\nREAL-l,closed\nREAL-1,closed\nNOPE,cancelled\n")
    assert (result.outcome, result.counts.applied, result.counts.refused) == ("applied", 1, 2)
    assert [(p.line, p.message) for p in result.refusals] == [
        (2, "order REAL-l is unknown"),
        (4, "order NOPE is unknown"),
    ]
    assert (status_of(app, "REAL-l"), status_of(app, "NOPE"), status_of(app, "REAL-1")) == (None, None, S.CLOSED)
    assert ats(app, "p", SKU) == 10
    report = json.loads(ledger(app)[0].report or "{}")
    assert [r["line"] for r in report["refused"]] == [2, 4]


def test_illegal_moves_are_refused_per_row_and_change_nothing_of_their_order(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """Backwards, out of closed, out of cancelled: each refused with the order and both statuses; the same status
    again is a no-op and a forward skip is fine."""
    app = stocked(make_app, stock_mode="advanced")
    for order_id in ("A", "B", "C", "D", "E"):
        app.commands.place("p", order_id, [RequestedLine(SKU, 1)])
    app.commands.set_status("p", "A", S.INVOICING)
    app.commands.set_status("p", "B", S.CLOSED)
    app.commands.set_status("p", "C", S.CANCELLED)
    app.commands.set_status("p", "D", S.CONFIRMED)
    text = "order_id,status\nA,confirmed\nB,cancelled\nC,closed\nD,confirmed\nE,closed\n"
    result = acknowledge(app, tmp_path, text)
    assert (result.counts.applied, result.counts.refused) == (2, 3)
    assert [(p.line, p.message) for p in result.refusals] == [
        (2, "order A: cannot move from invoicing to confirmed (statuses only move forward, and never out of closed "
            "or cancelled)"),
        (3, "order B: cannot move from closed to cancelled (statuses only move forward, and never out of closed "
            "or cancelled)"),
        (4, "order C: cannot move from cancelled to closed (statuses only move forward, and never out of closed "
            "or cancelled)"),
    ]  # fmt: skip
    assert [status_of(app, o) for o in ("A", "B", "C", "D", "E")] == [
        S.INVOICING,
        S.CLOSED,
        S.CANCELLED,
        S.CONFIRMED,
        S.CLOSED,
    ]


def test_an_order_given_twice_refuses_the_whole_file_naming_both_lines(make_app: AppFactory, tmp_path: Path) -> None:
    """One row per order: a second row for the same order refuses the file whole (nothing applied, not even the
    rows before it), with a `rejected` ledger entry whose problem names both lines."""
    app = stocked(make_app, stock_mode="advanced")
    app.commands.place("p", "O-1", [RequestedLine(SKU, 2)])
    app.commands.place("p", "O-2", [RequestedLine(SKU, 3)])
    before = contents(app)
    result = acknowledge(app, tmp_path, "order_id,status\nO-1,closed\nO-2,invoicing\nO-1,closed\n")
    assert result.outcome == "rejected"
    assert [p.describe() for p in result.problems] == [
        "line 4, column order_id: order O-1 is acknowledged again (first at line 2): one row per order"
    ]
    assert contents(app) == before
    entry = ledger(app)[0]
    assert entry.outcome == "rejected"
    assert json.loads(entry.report or "{}")["problems"][0]["line"] == 4


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_rows.csv", ["line 3, column status", "line 4, column order_id", "line 5, column updated_at"]),
        ("bad_missing_column.csv", ["line 1: missing required column(s) status"]),
    ],
)
def test_the_bad_fixtures_are_refused_whole(make_app: AppFactory, name: str, expected: list[str]) -> None:
    """fixtures/acknowledgements/bad_*.csv: every problem listed with its line; the store unchanged."""
    app = stocked(make_app, stock_mode="advanced")
    app.commands.place("p", "O-1001", [RequestedLine(SKU, 2)])
    before = contents(app)
    result = app.ingestor.ingest("p", Kind.ACKNOWLEDGEMENTS, FIXTURES / "acknowledgements" / name)
    assert result.outcome == "rejected"
    described = [p.describe() for p in result.problems]
    assert len(described) == len(expected)
    for text, found in zip(expected, described, strict=True):
        assert found.startswith(text), (text, found)
    assert contents(app) == before
    assert status_of(app, "O-1001") == S.PENDING


def test_the_same_file_again_is_a_duplicate(make_app: AppFactory, tmp_path: Path) -> None:
    """Same content, same partner and kind: a no-op, as for every kind of file."""
    app = stocked(make_app, stock_mode="advanced")
    app.commands.place("p", "O-1", [RequestedLine(SKU, 2)])
    first = acknowledge(app, tmp_path, "order_id,status\nO-1,invoicing\n")
    before = contents(app)
    again = acknowledge(app, tmp_path, "order_id,status\nO-1,invoicing\n", name="again.csv")
    assert (again.outcome, again.duplicate_of) == (Outcome.DUPLICATE, first.ledger_id)
    assert contents(app) == before
    assert messages(app, "p", "order_export") == ["O-1"]


def test_updated_at_is_checked_but_the_move_is_stamped_by_the_gateway(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """`updated_at` is the partner's word for when the order moved: it must be a timestamp, but the gateway
    stamps the move (the order's time and the closed order's message) with its own clock, as it does for a
    status item of an acknowledgements page."""
    app = stocked(make_app, stock_mode="advanced")
    app.commands.place("p", "O-1", [RequestedLine(SKU, 2)])
    clock.set("2026-03-01T09:00:00Z")
    acknowledge(app, tmp_path, "order_id,status,updated_at\nO-1,closed,2019-06-26T12:00:00+02:00\n")
    with app.store.read() as tx:
        partner_id = tx.partners.id_of("p")
        order = tx.orders.get(partner_id, "O-1")
        [message] = [m for m in tx.outbox.rows(partner_id, state=None) if m.kind == "order_closed"]
    assert order is not None
    assert order.status == S.CLOSED
    assert json.loads(message.payload)["updated_at"] == "2026-03-01T09:00:00Z"


def test_a_partner_renames_the_columns_of_its_acknowledgement_files(make_app: AppFactory, tmp_path: Path) -> None:
    """[partners.P.files.acknowledgements] columns and delimiter, like every kind's."""
    app = make_app(
        p={
            "stock_mode": "advanced",
            "files": {"acknowledgements": {"delimiter": ";", "columns": {"order_id": "Commande", "status": "Etat"}}},
        }
    )
    app.commands.set_stock("p", SKU, 10, at("2019-06-25T12:00:00Z"))
    app.commands.place("p", "O-1", [RequestedLine(SKU, 4)])
    result = acknowledge(app, tmp_path, "Commande;Etat\nO-1;closed\n")
    assert (result.outcome, result.counts.applied) == ("applied", 1)
    assert ats(app, "p", SKU) == 10


def test_a_dry_run_says_what_the_closes_would_free_and_changes_nothing(make_app: AppFactory, tmp_path: Path) -> None:
    """--dry-run works for acknowledgements as for every kind: the ATS changes, then a rollback."""
    app = stocked(make_app, stock_mode="advanced")
    app.commands.place("p", "O-1", [RequestedLine(SKU, 4)])
    before = contents(app)
    path = write(tmp_path, "ack.csv", "order_id,status\nO-1,closed\n")
    result = app.ingestor.ingest("p", Kind.ACKNOWLEDGEMENTS, path, dry_run=True)
    assert [(c.sku, c.before, c.after) for c in result.changes] == [(SKU, 6, 10)]
    assert contents(app) == before
