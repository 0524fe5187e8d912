"""Ingesting flat files into a real SQLite store: applied once, refused whole, refused row by row."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.store.sql.ledger import SqlLedger
from tests.conftest import FIXTURES, AppFactory, FakeClock, at
from tests.integration.helpers import ats, contents, messages, pending_ats, stock

pytestmark = pytest.mark.both_stores


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def ledger(app, partner: str):  # type: ignore[no-untyped-def]
    with app.store.read() as tx:
        return tx.ledger.entries(tx.partners.id_of(partner))


def test_a_good_snapshot_sets_levels_queues_ats_and_records_the_ledger(make_app: AppFactory) -> None:
    """Every row applied, one ATS message per SKU, an `applied` ledger entry with counts."""
    app = make_app(p={"stock_mode": "advanced"})
    result = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    assert result.outcome == "applied"
    assert result.counts.applied == 3
    assert stock(app, "p", "3700000000011") == 10
    assert pending_ats(app, "p") == {"3700000000011": 10, "3700000000028": 4, "3700000000035": 0}
    [entry] = ledger(app, "p")
    assert (entry.outcome, entry.rows_applied, entry.kind, entry.sha256) == ("applied", 3, "stock", result.sha256)


def test_the_same_content_again_is_a_duplicate_and_changes_nothing(make_app: AppFactory, tmp_path: Path) -> None:
    """Same sha256, same partner and kind: a no-op reported as a duplicate, even under another name."""
    app = make_app(p={"stock_mode": "advanced"})
    first = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    before = contents(app)
    copy = write(tmp_path, "renamed.csv", (FIXTURES / "stock" / "good.csv").read_bytes())
    again = app.ingestor.ingest("p", Kind.STOCK, copy)
    assert (again.outcome, again.duplicate_of, again.ok) == ("duplicate", first.ledger_id, True)
    assert contents(app) == before
    assert [e.outcome for e in ledger(app, "p")] == ["duplicate", "applied"]


def test_the_same_content_for_another_kind_or_partner_is_not_a_duplicate(make_app: AppFactory) -> None:
    """Deduplication is per partner and kind."""
    app = make_app(p={"stock_mode": "advanced"}, q={"stock_mode": "advanced"})
    assert app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv").outcome == "applied"
    assert app.ingestor.ingest("q", Kind.STOCK, FIXTURES / "stock" / "good.csv").outcome == "applied"


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (Kind.STOCK, "bad_quantity.csv", ["line 3, column quantity", "line 4, column quantity"]),
        (Kind.STOCK, "bad_missing_column.csv", ["line 1: missing required column(s) quantity"]),
        (Kind.STOCK, "bad_duplicate_sku.csv", ["line 4, column sku: SKU 3700000000011 appears more than once"]),
        (Kind.STOCK, "bad_timestamp.csv", ["line 3, column as_of"]),
        (Kind.STOCK, "bad_encoding.csv", ["line 3: not valid utf-8"]),
        (Kind.ORDERS, "bad_status_and_quantity.csv", ["line 2, column status", "line 3, column quantity"]),
        (Kind.ORDERS, "bad_missing_column.csv", ["line 1: missing required column(s) status"]),
        (Kind.CONFIRMATIONS, "bad_rows.csv", ["line 2, column confirmed_at", "line 3, column confirmed_quantity"]),
    ],
)
def test_a_malformed_file_is_refused_whole_and_leaves_the_store_unchanged(
    make_app: AppFactory, kind: Kind, name: str, expected: list[str]
) -> None:
    """Nothing applied, a `rejected` ledger entry with the reason, every bad row listed with its line."""
    app = make_app(p={"stock_mode": "time_based"})
    app.commands.set_stock("p", "3700000000011", 1, at("2019-01-01T00:00:00"))
    app.commands.place("p", "O-1001", [RequestedLine("3700000000011", 1)])
    before = contents(app)
    result = app.ingestor.ingest("p", kind, FIXTURES / kind.value / name)
    assert result.outcome == "rejected"
    described = [p.describe() for p in result.problems]
    for text in expected:
        assert any(d.startswith(text) for d in described), (text, described)
    assert contents(app) == before
    [entry, *_] = ledger(app, "p")
    assert entry.outcome == "rejected"
    assert entry.error is not None
    assert json.loads(entry.report or "{}")["problems"] == [p.as_dict() for p in result.problems]


def test_a_rejected_file_applies_nothing_even_from_rows_before_the_bad_one(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A bad row at the end of a large file rolls back the rows applied before it was found."""
    app = make_app(p={"stock_mode": "advanced"})
    rows = "".join(f"SKU{i},{i}\n" for i in range(12_000))
    path = write(tmp_path, "late.csv", "sku,quantity\n" + rows + "BROKEN,x\n")
    before = contents(app)
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert result.outcome == "rejected"
    assert [p.line for p in result.problems] == [12_002]
    assert contents(app) == before


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (Kind.STOCK, "sku,quantity\nA,1\nP1 ,5\n", "line 3, column sku: has leading or trailing whitespace"),
        (Kind.STOCK, 'sku,quantity\nA,1\n"A\x00B",5\n', "line 3, column sku: contains control characters"),
        (Kind.STOCK, "sku,quantity\nA,1\nA\u2028B,5\n", "line 3, column sku: contains control characters"),
        (
            Kind.ORDERS,
            "order_id,sku,quantity,status\nO-1,A,1,pending\n O-2,A,1,pending\n",
            "line 3, column order_id: has leading or trailing whitespace",
        ),
        (
            Kind.CONFIRMATIONS,
            "order_id,sku,confirmed_quantity,confirmed_at\nO-1 ,A,1,2019-06-26T11:00:00Z\n",
            "line 2, column order_id: has leading or trailing whitespace",
        ),
        (
            Kind.CAPS,
            "sku,assembly,collection,max\nA,K1,C1,3\nA,K1,C2 ,3\n",
            "line 3, column collection: has leading or trailing whitespace",
        ),
    ],
)
def test_a_padded_or_dirty_identifier_refuses_the_file_at_its_line(
    make_app: AppFactory, tmp_path: Path, kind: Kind, text: str, expected: str
) -> None:
    """No SKU 'P1' made out of 'P1 ', no 'A\\x00B': the file is rejected with the row's line, the store unchanged."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 5, None)
    app.commands.place("p", "O-1", [RequestedLine("A", 1)])
    before = contents(app)
    result = app.ingestor.ingest("p", kind, write(tmp_path, "dirty.csv", text))
    assert result.outcome == "rejected"
    assert [p.describe() for p in result.problems] == [expected]
    assert contents(app) == before


def test_a_line_longer_than_max_line_bytes_refuses_the_file_and_applies_nothing(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """files.max_line_bytes 1024: a 5,000-byte row ends the reading at its line and the file is rejected whole."""
    app = make_app(p={"stock_mode": "advanced", "files": {"max_line_bytes": 1024}})
    rows = "".join(f"SKU{i},{i}\n" for i in range(20))
    path = write(tmp_path, "long.csv", "sku,quantity\n" + rows + "BIG," + "9," * 2500 + "\n" + rows)
    before = contents(app)
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert result.outcome == "rejected"
    assert [p.describe() for p in result.problems] == [
        "line 22: the line is longer than 1,024 bytes (files.max_line_bytes): the file is refused, "
        "unread beyond this line"
    ]
    assert contents(app) == before


def test_a_header_of_megabytes_is_refused_at_line_one_with_the_default_limit(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """A header of 3 MiB of commas: rejected at line 1 naming the 1 MiB default, the ledger says why."""
    app = make_app(p={"stock_mode": "advanced"})
    path = write(tmp_path, "wide.csv", b"sku,quantity" + b"," * (3 << 20) + b"\nA,1\n")
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert result.outcome == "rejected"
    [problem] = result.problems
    assert problem.line == 1
    assert "longer than 1,048,576 bytes (files.max_line_bytes)" in problem.message
    [entry] = ledger(app, "p")
    assert entry.outcome == "rejected"


def test_configured_delimiter_columns_and_bom_are_read(make_app: AppFactory) -> None:
    """Renamed columns with `;`, and a BOM with tabs, apply like the defaults."""
    app = make_app(
        p={"stock_mode": "advanced", "files": {"stock": {"columns": {"sku": "EAN", "quantity": "Qty"}}}},
        q={"stock_mode": "advanced"},
    )
    assert app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good_semicolon_renamed.csv").ok
    assert stock(app, "p", "3700000000011") == 7
    assert app.ingestor.ingest("q", Kind.STOCK, FIXTURES / "stock" / "good_bom_tab.csv").ok
    assert stock(app, "q", "3700000000042") == 3


def test_a_configured_encoding_reads_latin_1(make_app: AppFactory) -> None:
    """The file refused as UTF-8 applies when the partner declares latin-1."""
    app = make_app(p={"stock_mode": "advanced", "files": {"stock": {"encoding": "latin-1"}}})
    result = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "bad_encoding.csv")
    assert result.outcome == "applied"
    assert stock(app, "p", "Café-Crème") == 4


def test_stale_rows_are_skipped_and_counted(make_app: AppFactory, tmp_path: Path) -> None:
    """A row older than the SKU's inventory timestamp is never applied; equal timestamps re-apply."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 5, at("2019-06-26T00:00:00"))
    app.commands.set_stock("p", "B", 5, at("2019-06-26T00:00:00"))
    path = write(tmp_path, "s.csv", "sku,quantity,as_of\nA,9,2019-06-25T00:00:00\nB,7,2019-06-26T00:00:00\n")
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert (result.counts.applied, result.counts.skipped) == (1, 1)
    assert (stock(app, "p", "A"), stock(app, "p", "B")) == (5, 7)


def test_rows_without_as_of_take_the_files_instant_else_the_received_time(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """as_of: its own column, else the file's, else the time the gateway received it."""
    app = make_app(p={"stock_mode": "advanced"})
    path = write(tmp_path, "s.csv", "sku,quantity\nA,9\n")
    app.ingestor.ingest("p", Kind.STOCK, path, as_of=at("2019-06-25T00:00:00"))
    with app.store.read() as tx:
        assert tx.stock.get(tx.partners.id_of("p"), ["A"])["A"].as_of == at("2019-06-25T00:00:00")
    path2 = write(tmp_path, "s2.csv", "sku,quantity\nA,8\n")
    clock.set("2026-02-01T00:00:00")
    app.ingestor.ingest("p", Kind.STOCK, path2)
    with app.store.read() as tx:
        assert tx.stock.get(tx.partners.id_of("p"), ["A"])["A"].as_of == at("2026-02-01T00:00:00")


def test_a_snapshot_with_absent_zero_zeroes_the_skus_it_omits(make_app: AppFactory, tmp_path: Path) -> None:
    """absent = "zero": omitted SKUs go to 0; the default keeps them."""
    app = make_app(z={"stock_mode": "advanced", "absent": "zero"}, k={"stock_mode": "advanced"})
    for partner in ("z", "k"):
        first = write(
            tmp_path, f"{partner}1.csv", "sku,quantity,as_of\nA,5,2019-01-01T00:00:00\nB,6,2019-01-01T00:00:00\n"
        )
        app.ingestor.ingest(partner, Kind.STOCK, first)
        second = write(tmp_path, f"{partner}2.csv", "sku,quantity,as_of\nA,4,2019-01-02T00:00:00\n")
        app.ingestor.ingest(partner, Kind.STOCK, second)
    assert (stock(app, "z", "A"), stock(app, "z", "B")) == (4, 0)
    assert pending_ats(app, "z")["B"] == 0
    assert (stock(app, "k", "A"), stock(app, "k", "B")) == (4, 6)


def test_simple_mode_warns_about_a_snapshot_older_than_a_confirmation(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path
) -> None:
    """The seed's warning is counted (and logged); the snapshot still applies."""
    app = make_app(p={"stock_mode": "simple"})
    app.commands.set_stock("p", "A", 10, at("2025-12-01T00:00:00"))
    app.commands.place("p", "O1", [RequestedLine("A", 2)])
    app.commands.set_status("p", "O1", OrderStatus.CONFIRMED)  # at the clock's now, 2026-01-01
    path = write(tmp_path, "s.csv", "sku,quantity,as_of\nA,10,2025-12-15T00:00:00\n")
    result = app.ingestor.ingest("p", Kind.STOCK, path)
    assert result.counts.extra["predates_confirmation"] == 1
    assert stock(app, "p", "A") == 10


def test_orders_file_places_new_orders_and_moves_existing_ones(make_app: AppFactory) -> None:
    """New orders are placed (all their rows at once); rows of existing orders set their status."""
    app = make_app(p={"stock_mode": "advanced"})
    app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    placed = app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good.csv")
    assert (placed.outcome, placed.counts.applied, placed.counts.refused) == ("applied", 3, 0)
    assert ats(app, "p", "3700000000011") == 10 - 2 - 3
    moved = app.ingestor.ingest("p", Kind.ORDERS, FIXTURES / "orders" / "good_status_update.csv")
    assert moved.ok
    assert messages(app, "p", "order_export") == ["O-1001"]


def test_a_row_the_rules_refuse_is_listed_and_the_rest_applies(make_app: AppFactory, tmp_path: Path) -> None:
    """Not enough ATS, an illegal move, an unknown line: refused alone, with their line numbers."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 5, None)
    app.commands.place("p", "OLD", [RequestedLine("A", 1)])
    app.commands.set_status("p", "OLD", OrderStatus.CLOSED)
    path = write(
        tmp_path,
        "o.csv",
        "order_id,sku,quantity,status\n"
        "BIG,A,50,pending\n"  # line 2: more than ATS
        "OK,A,2,pending\n"  # line 3: applies
        "OLD,A,1,pending\n"  # line 4: closed -> pending is illegal
        "OK2,A,1,pending\n"  # line 5: applies
        "OK2,B,1,pending\n",  # line 6: same order, SKU B has no stock: the whole order is refused
    )
    before_ok = ats(app, "p", "A")
    result = app.ingestor.ingest("p", Kind.ORDERS, path)
    assert result.outcome == "applied"
    assert (result.counts.applied, result.counts.refused) == (1, 4)
    assert [p.line for p in result.refusals] == [2, 4, 5, 6]
    assert "not enough available to sell" in result.refusals[0].message
    assert "cannot move from closed to pending" in result.refusals[1].message
    assert ats(app, "p", "A") == before_ok - 2
    assert not result.ok


def test_a_status_row_with_another_quantity_is_refused(make_app: AppFactory, tmp_path: Path) -> None:
    """Status files do not change quantities; a mismatch says so."""
    app = make_app(p={"stock_mode": "advanced"})
    app.commands.set_stock("p", "A", 5, None)
    app.commands.place("p", "O1", [RequestedLine("A", 2)])
    path = write(tmp_path, "o.csv", "order_id,sku,quantity,status\nO1,A,3,confirmed\n")
    result = app.ingestor.ingest("p", Kind.ORDERS, path)
    assert result.counts.refused == 1
    assert "differs from the order's 2" in result.refusals[0].message


def test_one_order_given_two_statuses_in_one_file_is_malformed(make_app: AppFactory, tmp_path: Path) -> None:
    """An order's status applies to all its lines: conflicting rows refuse the file."""
    app = make_app(p={"stock_mode": "advanced"})
    path = write(tmp_path, "o.csv", "order_id,sku,quantity,status\nO1,A,1,pending\nO1,B,1,confirmed\n")
    result = app.ingestor.ingest("p", Kind.ORDERS, path)
    assert result.outcome == "rejected"
    assert result.problems[0].line == 3


def test_confirmations_apply_and_unknown_orders_are_refused(make_app: AppFactory, tmp_path: Path) -> None:
    """A confirmation for an unknown order or a SKU the order does not hold is refused."""
    app = make_app(p={"stock_mode": "time_based"})
    app.commands.set_stock("p", "A", 10, at("2019-06-25T12:00:00"))
    app.commands.place("p", "O1", [RequestedLine("A", 5)])
    app.commands.set_status("p", "O1", OrderStatus.CLOSED)
    path = write(
        tmp_path,
        "c.csv",
        "order_id,sku,confirmed_quantity,confirmed_at\nO1,A,4,2019-06-26T11:00:00\nNOPE,A,1,2019-06-26T11:00:00\n"
        "O1,B,1,2019-06-26T11:00:00\n",
    )
    result = app.ingestor.ingest("p", Kind.CONFIRMATIONS, path)
    assert (result.counts.applied, result.counts.refused) == (1, 2)
    assert "order NOPE is unknown" in result.refusals[0].message
    assert "holds no line for SKU B" in result.refusals[1].message
    assert ats(app, "p", "A") == 6


def test_a_dry_run_reports_the_changes_and_changes_nothing(make_app: AppFactory) -> None:
    """Dry run: the ATS changes the file would make; the store, ledger included, untouched."""
    app = make_app(p={"stock_mode": "advanced"})
    before = contents(app, skip=())
    result = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv", dry_run=True)
    assert {(c.sku, c.before, c.after) for c in result.changes} == {
        ("3700000000011", None, 10),
        ("3700000000028", None, 4),
        ("3700000000035", None, 0),
    }
    assert contents(app, skip=()) == before


def test_a_second_identical_snapshot_under_a_new_name_writes_and_queues_nothing(
    make_app: AppFactory, tmp_path: Path
) -> None:
    """Only changes are written: unchanged rows with the same as_of neither write nor queue."""
    app = make_app(p={"stock_mode": "advanced"})
    app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    with app.store.write() as tx:  # pretend the messages were delivered
        tx.connection.exec_driver_sql("UPDATE outbox SET state = 'delivered'")
    text = (FIXTURES / "stock" / "good.csv").read_text(encoding="utf-8").replace(",10,", ",11,")
    result = app.ingestor.ingest("p", Kind.STOCK, write(tmp_path, "again.csv", text))
    assert [c.sku for c in result.changes] == ["3700000000011"]
    assert pending_ats(app, "p") == {"3700000000011": 11}


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_large_snapshots_apply_the_same_whatever_the_row_order(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock, order: str
) -> None:
    """Sorted batches are looked up as key ranges, others SKU by SKU: the outcome is the same."""
    clock.set("2026-02-01T00:00:00")  # after every as_of below: none is refused as in the future
    app = make_app(p={"stock_mode": "advanced"})
    rng = random.Random(3)
    step = 1
    first = {f"S{i:06d}": rng.randrange(50) for i in range(0, 24_000 * step, 2 * step)}
    ordering = sorted if order != "shuffled" else (lambda keys: rng.sample(sorted(keys), len(keys)))

    def snapshot(name: str, levels: dict[str, tuple[int, str]]) -> Path:
        lines = [f"{sku},{q},{stamp}" for sku, (q, stamp) in ((s, levels[s]) for s in ordering(levels))]
        return write(tmp_path, name, "sku,quantity,as_of\n" + "\n".join(lines) + "\n")

    t1, t0, t2 = "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"
    assert app.ingestor.ingest("p", Kind.STOCK, snapshot("a.csv", {s: (q, t1) for s, q in first.items()})).ok
    second: dict[str, tuple[int, str]] = {}
    expected = dict(first)
    for index, (sku, quantity) in enumerate(first.items()):
        if index % 7 == 0:
            continue  # omitted: kept as it was
        if index % 11 == 0:
            second[sku] = (quantity + 5, t0)  # stale: skipped
        elif index % 13 == 0:
            second[sku] = (quantity + 1, t2)  # changed
            expected[sku] = quantity + 1
        else:
            second[sku] = (quantity, t1)  # the same again
    for i in range(1, 24_000 * step, 2 * step * 50):  # new SKUs between stored ones
        second[f"S{i:06d}"] = (4, t1)
        expected[f"S{i:06d}"] = 4
    result = app.ingestor.ingest("p", Kind.STOCK, snapshot("b.csv", second))
    assert result.counts.skipped == sum(1 for i in range(len(first)) if i % 7 and i % 11 == 0)
    with app.store.read() as tx:
        held = {r.sku: r.quantity for r in tx.stock.iterate(tx.partners.id_of("p"))}
    assert held == expected


def test_a_sorted_but_sparse_snapshot_over_a_large_store_applies_correctly(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock
) -> None:
    """A key range holding far more stored rows than the batch gives way to SKU-by-SKU look-ups."""
    clock.set("2026-02-01T00:00:00")  # after every as_of below: none is refused as in the future
    app = make_app(p={"stock_mode": "advanced"})
    stored = "".join(f"S{i:06d},1,2026-01-01T00:00:00Z\n" for i in range(60_000))
    app.ingestor.ingest("p", Kind.STOCK, write(tmp_path, "all.csv", "sku,quantity,as_of\n" + stored))
    sparse = "".join(f"S{i:06d},{i % 5},2026-01-02T00:00:00Z\n" for i in range(0, 60_000, 50))
    result = app.ingestor.ingest("p", Kind.STOCK, write(tmp_path, "sparse.csv", "sku,quantity,as_of\n" + sparse))
    assert result.counts.applied == 1200
    with app.store.read() as tx:
        held = {r.sku: r.quantity for r in tx.stock.iterate(tx.partners.id_of("p"))}
    assert held == {f"S{i:06d}": (i % 5 if i % 50 == 0 else 1) for i in range(60_000)}


def test_two_workers_racing_on_the_same_content_apply_it_once(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the look-up misses a concurrent apply, the ledger's unique claim still makes the second a duplicate."""
    app = make_app(p={"stock_mode": "advanced"})
    first = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    before = contents(app)
    monkeypatch.setattr(SqlLedger, "applied", lambda *_: None)  # the race: nothing seen yet
    second = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
    assert (first.outcome, second.outcome) == ("applied", "duplicate")
    assert contents(app) == before


def test_concurrent_ingests_of_the_same_file_apply_it_once(make_app: AppFactory) -> None:
    """Four threads, one file: one applied, three duplicates."""
    app = make_app(p={"stock_mode": "advanced"})
    outcomes: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        result = app.ingestor.ingest("p", Kind.STOCK, FIXTURES / "stock" / "good.csv")
        with lock:
            outcomes.append(result.outcome)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert pending_ats(app, "p")["3700000000011"] == 10
