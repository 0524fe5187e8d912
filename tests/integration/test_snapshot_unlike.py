"""A routine snapshot compared by the store (issue 16): on SQLite, a sorted batch of plainly valid rows is compared
with the stored rows of its key range as texts (StockRepository.unlike), and only the rows it names become tuples
and are compared with their stored versions. What the snapshot does must be what the row-by-row comparison did:
equal rows change nothing, stale rows are skipped, counted and named, changed rows are written and their ATS
queued, and a SKU the store does not hold is stored, whichever way the batch was compared.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.formats.rows import Kind
from gateway.logs import configure
from gateway.store.records import StockRecord
from gateway.store.sql import statements
from gateway.store.sql.stock import SqlStock
from tests.conftest import AppFactory, FakeClock, at
from tests.integration.helpers import pending_ats

pytestmark = pytest.mark.both_stores

SIZE = statements.CHUNK + 300  # more than one look-up: a sorted batch is read as one key range on SQLite
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


def _sku(number: int) -> str:
    return f"S{number:05}"


def _write(tmp_path: Path, name: str, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / name
    path.write_text("sku,quantity,as_of\n" + "".join(f"{s},{q},{t}\n" for s, q, t in rows), encoding="utf-8")
    return path


@pytest.fixture
def events() -> Iterator[list[MutableMapping[str, Any]]]:
    configure("json", None, "debug")
    with structlog.testing.capture_logs() as captured:
        yield captured


def test_a_routine_snapshot_applies_its_stale_changed_and_equal_rows_as_the_rules_say(
    make_app: AppFactory,
    tmp_path: Path,
    clock: FakeClock,
    events: list[MutableMapping[str, Any]],
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One batch on the compared path: an equal row, an equal row written otherwise (007), a stale row, a changed
    level, a level restated at a later instant: only the changed ones are written, the stale one skipped and named."""
    clock.set("2026-02-01T00:00:00")
    app = make_app(p={"stock_mode": "advanced"})
    answers = _spy_on_unlike(monkeypatch)
    first = [(_sku(n), str(n % 50), T1) for n in range(SIZE)]
    assert app.ingestor.ingest("p", Kind.STOCK, _write(tmp_path, "a.csv", first)).ok
    second = list(first)
    second[7] = (_sku(7), "007", T1)  # the same level, written with leading zeros: nothing changes
    second[10] = (_sku(10), "99", T0)  # older than the stored level: stale, skipped
    second[11] = (_sku(11), "98", T2)  # changed
    second[12] = (_sku(12), "12", T2)  # the same level at a later instant: the inventory timestamp moves
    second[SIZE - 1] = (_sku(SIZE - 1), "0", T1)  # changed, the batch's last row
    result = app.ingestor.ingest("p", Kind.STOCK, _write(tmp_path, "b.csv", second))
    assert result.ok
    assert (result.counts.applied, result.counts.skipped) == (SIZE - 1, 1)
    assert {c.sku: (c.before, c.after) for c in result.changes} == {
        _sku(11): (11, 98),
        _sku(SIZE - 1): ((SIZE - 1) % 50, 0),
    }
    with app.store.read() as tx:
        held = {r.sku: (r.quantity, r.as_of) for r in tx.stock.iterate(tx.partners.id_of("p"))}
    expected = {_sku(n): (n % 50, at(T1)) for n in range(SIZE)}
    expected[_sku(11)] = (98, at(T2))
    expected[_sku(12)] = (12, at(T2))
    expected[_sku(SIZE - 1)] = (0, at(T1))
    assert held == expected
    assert [e["sample_skus"] for e in events if e["event"] == "stale_rows_skipped"] == [[_sku(10)]]
    assert pending_ats(app, "p")[_sku(11)] == 98
    if store_url.startswith("sqlite"):  # the batch took the compared path (PostgreSQL loads snapshots by COPY)
        assert answers == [[7, 10, 11, 12, SIZE - 1]]


def _spy_on_unlike(monkeypatch: pytest.MonkeyPatch) -> list[list[int] | None]:
    """The answers SqlStock.unlike gives from here on."""
    answers: list[list[int] | None] = []
    real = SqlStock.unlike

    def spied(self: SqlStock, *args: Any) -> list[int] | None:
        answers.append(real(self, *args))
        return answers[-1]

    monkeypatch.setattr(SqlStock, "unlike", spied)
    return answers


def test_a_new_sku_in_place_of_an_omitted_one_with_the_same_level_is_stored(
    make_app: AppFactory, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    """A batch as long as its key range, with the same levels, but one SKU new and one stored SKU omitted: the SKUs
    tell them apart, so the new SKU is stored and the omitted one kept."""
    clock.set("2026-02-01T00:00:00")
    app = make_app(p={"stock_mode": "advanced"})
    answers = _spy_on_unlike(monkeypatch)
    first = [(_sku(2 * n), "5", T1) for n in range(SIZE)]
    assert app.ingestor.ingest("p", Kind.STOCK, _write(tmp_path, "a.csv", first)).ok
    second = list(first)
    second[100] = (_sku(201), "5", T1)  # between S00200 (omitted now) and S00202
    result = app.ingestor.ingest("p", Kind.STOCK, _write(tmp_path, "b.csv", second))
    assert result.ok
    assert result.counts.applied == SIZE
    assert [c.sku for c in result.changes] == [_sku(201)]
    with app.store.read() as tx:
        held = {r.sku for r in tx.stock.iterate(tx.partners.id_of("p"))}
    assert held == {_sku(2 * n) for n in range(SIZE)} | {_sku(201)}
    if store_url.startswith("sqlite"):  # the store could not tell: the batch was compared row by row
        assert answers == [None]


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("stored", "asked", "expected"),
    [
        pytest.param(range(SIZE), range(SIZE), [3, 4, 8, 9], id="the-range-holds-exactly-the-batch"),
        pytest.param(range(SIZE + 1), range(SIZE), [3, 4, 8, 9], id="the-store-holds-more-after-the-range"),
        pytest.param(range(0, SIZE, 2), range(SIZE), None, id="the-batch-holds-skus-the-store-does-not"),
        pytest.param(range(SIZE), [n for n in range(SIZE) if n != 5], None, id="the-batch-omits-a-stored-sku"),
        pytest.param(range(SIZE), list(reversed(range(SIZE))), None, id="an-unsorted-batch"),
        pytest.param(range(10), range(10), None, id="a-batch-too-small-for-a-range"),
    ],
)
def test_unlike_names_the_rows_whose_texts_differ_or_says_it_cannot_tell(
    make_app: AppFactory, stored: range, asked: list[int] | range, expected: list[int] | None
) -> None:
    """Positions of the rows whose quantity or as_of text differs from the stored row ('' for no as_of); None when
    the batch's SKUs are not exactly those the store holds in its key range."""
    app = make_app(p={"stock_mode": "advanced"})
    # the batch's last SKU never snapshotted: no as_of
    records = [StockRecord(_sku(n), n, None if n == SIZE - 1 else 1_000 + n) for n in stored]
    with app.store.write() as tx:
        tx.stock.put(tx.partners.id_of("p"), records, 2_000)
    skus = [_sku(n) for n in asked]
    quantities = [str(n) for n in asked]
    as_ofs = [str(1_000 + n) if n != SIZE - 1 else "" for n in asked]
    quantities[3] = "03"  # the same value, written otherwise: named all the same
    quantities[4] = str(int(quantities[4]) + 1)
    as_ofs[8] = "1"
    as_ofs[9] = ""
    with app.store.read() as tx:
        found = tx.stock.unlike(tx.partners.id_of("p"), skus, quantities, as_ofs)
    assert found == expected


def test_unlike_cannot_tell_on_postgresql(make_app: AppFactory, store_url: str) -> None:
    """PostgreSQL has its own COPY path for snapshots: its store never compares texts (None: compare the rows)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("the PostgreSQL answer")
    app = make_app(p={"stock_mode": "advanced"})
    with app.store.write() as tx:
        tx.stock.put(tx.partners.id_of("p"), [StockRecord(_sku(n), n, 1) for n in range(SIZE)], 2)
    skus = [_sku(n) for n in range(SIZE)]
    with app.store.read() as tx:
        assert tx.stock.unlike(tx.partners.id_of("p"), skus, [str(n) for n in range(SIZE)], ["1"] * SIZE) is None


@pytest.mark.sqlite_only
def test_unlike_is_not_fooled_by_a_stored_sku_holding_a_line_break(make_app: AppFactory) -> None:
    """A stored SKU 'S00100\\nS00101' joins the same as the batch's S00100 and S00101: one row fewer tells them
    apart (the identifier rule keeps such a SKU out of the gateway; the store is not trusted to)."""
    app = make_app(p={"stock_mode": "advanced"})
    stored = [StockRecord(_sku(n), n, 1) for n in range(SIZE) if n not in (100, 101)]
    stored.append(StockRecord(f"{_sku(100)}\n{_sku(101)}", 100, 1))
    with app.store.write() as tx:
        tx.stock.put(tx.partners.id_of("p"), stored, 2)
    skus = [_sku(n) for n in range(SIZE)]
    with app.store.read() as tx:
        found = tx.stock.unlike(tx.partners.id_of("p"), skus, [str(n) for n in range(SIZE)], ["1"] * SIZE)
    assert found is None
