"""PostgreSQL reads a snapshot file itself (store/sql/snapshot_copy.py), and that changes nothing but the speed.

Two stores on the server receive the same files, the same orders and the same clock: one reads a file by COPY where
it can (and says so), the other always by the Python reader (the COPY path switched off). After every file, both
give the same result (outcome, counts, problems, refusals, warnings, changes, oversold SKUs) and hold the same stock,
outbox and ledger. Files are generated with the partners' delimiters, header names, column orders, BOMs, line
breaks, SKUs, quantities and as_of shapes in many time zones, valid and not; each way out of the COPY path (a row
the Python reader refuses, a SKU given twice, a quote, another encoding, a future level, ...) is also shown to be
taken, and a plain file to go through COPY.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import bootstrap
from gateway import settings as gateway_settings
from gateway.domain.errors import Refusal
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.rows import Kind
from gateway.service.items import IngestResult
from gateway.store.records import SnapshotFile
from gateway.store.sql.levels import PostgresLevelLoader
from tests.conftest import FakeClock, postgres_base_url, postgres_schema, write_config

# partners' settings: (delimiter in the file, settings' delimiter, header names, time zone, mode, extra settings)
VARIANTS: list[dict[str, Any]] = [
    {"delimiter": ",", "timezone": "UTC", "stock_mode": "simple"},
    {"delimiter": ";", "timezone": "Europe/Paris", "stock_mode": "advanced", "declared": True},
    {"delimiter": "\t", "timezone": "UTC", "stock_mode": "advanced", "names": ("Article", "Qty", "Stand")},
    {"delimiter": ",", "timezone": "America/New_York", "stock_mode": "simple", "names": ("SKU", "Menge", "AS_OF")},
    {"delimiter": ",", "timezone": "UTC", "stock_mode": "advanced", "max_line_bytes": 256, "max_clock_skew": 0},
    {"delimiter": ",", "timezone": "UTC", "stock_mode": "simple", "absent": "zero"},
    {"delimiter": ",", "timezone": "UTC", "stock_mode": "simple", "encoding": "latin-1"},
]
START = "2026-01-01T00:00:00Z"
PER_VARIANT = 60  # partners of each variant: every example takes a fresh one
SKUS = ["A1", "A2", "B-7", "c 9", "Ü8", "日本", "Z" * 128, "Z" * 129, " A1", "A1 ", "\u00a0X", "X\u3000", "T\x07", ""]
QUANTITIES = ["0", "5", "17", "007", "999999999999", "1000000000000", "-1", " 5", "5 ", "1e3", "", "٣", "+4"]
STAMPS = [
    "2025-12-01T10:00:00Z",
    "2025-12-01T10:00:00.5Z",
    "2025-12-01T10:00:00.123456+02:00",
    "2025-12-01 10:00:00-05:30",
    "2025-12-01T10:00:00",
    "2025-12-01 23:59:59.999999",
    "2025-12-15T00:00:00+13:00",
    "2026-01-01T00:04:59Z",  # within the default max_clock_skew of the clock (2026-01-01T00:00:00Z)
    "2026-01-01T00:05:01Z",  # beyond it: refused at its line
    "2026-03-29T02:30:00",  # a gap in Paris
    "2025-10-26T02:30:00",  # a fold in Paris
    "2025-12-01",
    "2025-12-01T10:00Z",
    "2025-12-01T10:00:00.1234567Z",
    "2025-12-01T24:00:00Z",
    "2025-12-01T10:00:60Z",
    "2025-02-30T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "2025-12-01T10:00:00+14:00",
    "2025-12-01t10:00:00z",
    " 2025-12-01T10:00:00Z",
    "garbage",
    "",
]


def partner_settings(variant: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"stock_mode": variant["stock_mode"], "timezone": variant["timezone"]}
    for key in ("max_clock_skew", "absent"):
        if key in variant:
            options[key] = variant[key]
    stock: dict[str, Any] = {}
    if variant.get("declared"):
        stock["delimiter"] = variant["delimiter"]
    if "encoding" in variant:
        stock["encoding"] = variant["encoding"]
    if "names" in variant:
        stock["columns"] = dict(zip(("sku", "quantity", "as_of"), variant["names"], strict=True))
    files: dict[str, Any] = {"stock": stock} if stock else {}
    if "max_line_bytes" in variant:
        files["max_line_bytes"] = variant["max_line_bytes"]
    if files:
        options["files"] = files
    return options


class Twins:
    """Two stores fed alike: `copying` reads by COPY where it can, `reading` always by the Python reader.

    (A plain class: Hypothesis prints a test's arguments, and would print a dataclass's fields, apps included.)"""

    def __init__(self, apps: list[bootstrap.App], urls: tuple[str, str], clock: FakeClock, folder: Path) -> None:
        self.copying, self.reading = apps
        self.urls = urls
        self.clock = clock
        self.folder = folder  # where the generated files go
        self.taken: list[bool] = []  # for each file the copying store's loader was given, whether COPY took it
        self.used = itertools.count()

    def partner(self, variant: int) -> str:
        """A partner of the variant (one no example used yet, unless there were more examples than partners)."""
        return f"p{variant}_{next(self.used) % PER_VARIANT}"


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    base = postgres_base_url()
    partners = {
        f"p{v}_{i}": partner_settings(variant) for v, variant in enumerate(VARIANTS) for i in range(PER_VARIANT)
    }
    partners |= {f"case{i}": partner_settings(VARIANTS[case[0]]) for i, case in enumerate(CASES.values())}
    partners["seeded"] = partner_settings(VARIANTS[0])
    partners["routine"] = partner_settings(VARIANTS[0])
    partners["few"] = partner_settings(VARIANTS[1])
    clock = FakeClock()
    with postgres_schema(base) as first, postgres_schema(base) as second:
        apps = []
        for name, url in (("copying", first), ("reading", second)):
            folder = tmp_path_factory.mktemp(name)
            apps.append(bootstrap.build(gateway_settings.load(write_config(folder, partners, url), environ={}), clock))
        try:
            yield Twins(apps, (first, second), clock, tmp_path_factory.mktemp("files"))
        finally:
            for app in apps:
                app.close()


@pytest.fixture
def spied(twins: Twins, monkeypatch: pytest.MonkeyPatch) -> Twins:
    """Twins whose copying store notes whether COPY took each file it was given."""
    copy_file = PostgresLevelLoader.copy_file

    def noting(self: PostgresLevelLoader, file: SnapshotFile) -> int | None:
        rows = copy_file(self, file)
        twins.taken.append(rows is not None)
        return rows

    monkeypatch.setattr(PostgresLevelLoader, "copy_file", noting)
    twins.taken.clear()
    return twins


def ingest_both(
    twins: Twins, partner: str, path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[IngestResult, bool | None]:
    """The file into both stores: the results and the stores' contents must be the same. The copying store's result,
    and whether COPY took the file (None: its loader was not given it)."""
    before = len(twins.taken)
    copied = twins.copying.ingestor.ingest(partner, Kind.STOCK, path)
    taken = twins.taken[-1] if len(twins.taken) > before else None
    with monkeypatch.context() as patch:
        patch.setattr(PostgresLevelLoader, "copy_file", lambda self, file: None)
        read = twins.reading.ingestor.ingest(partner, Kind.STOCK, path)
    assert comparable(copied) == comparable(read)
    assert contents(twins.urls[0]) == contents(twins.urls[1])
    return copied, taken


def comparable(result: IngestResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "ledger_id": result.ledger_id,
        "counts": result.counts,
        "problems": result.problems,
        "refusals": result.refusals,
        # the first changes, in the order the merge listed them (its statement gives none): the same set
        "changes": sorted(result.changes, key=repr),
        "ats_changes": result.ats_changes,
        "reason": result.reason,
        "oversold": result.oversold,
        "warnings": result.warnings,
        "summary": result.summary(),
    }


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "stock": "SELECT partner_id, sku, quantity, as_of, allocated, published, last_moved_at, set_by, updated_at"
        " FROM stock ORDER BY partner_id, sku",
        "outbox": "SELECT partner_id, kind, key, value, as_of, payload, ledger_id, created_at, state, attempts"
        " FROM outbox ORDER BY partner_id, kind, key, state, ledger_id, value",
        "ledger": "SELECT id, partner_id, kind, sha256, size, received_at, finished_at, outcome, rows_applied,"
        " rows_skipped, rows_refused, error, report FROM ingest_ledger ORDER BY id",
    }
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return {name: [tuple(row) for row in connection.exec_driver_sql(sql)] for name, sql in queries.items()}
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Snapshot:
    """A generated file: its rows' cells and how it is written."""

    rows: list[tuple[str, str, str]]  # sku, quantity, as_of (as_of "" and no column: see `stamped`)
    stamped: bool  # an as_of column
    order: tuple[int, ...]  # the columns' order in the file
    extra: str | None  # an extra column's cells, or None
    newline: str
    bom: bool
    blank_line: bool
    quoted: bool  # the first cell written in quotes

    def write(self, path: Path, variant: dict[str, Any]) -> Path:
        names = list(variant.get("names", ("sku", "quantity", "as_of")))[: 3 if self.stamped else 2]
        header = [names[i] for i in self.order if i < len(names)]
        lines = []
        for sku, quantity, as_of in self.rows:
            cells = [(sku, quantity, as_of)[i] for i in self.order if i < len(names)]
            if self.quoted and not lines:
                cells[0] = '"' + cells[0].replace('"', '""') + '"'
            lines.append(cells)
        if self.extra is not None:
            header.append("note")
            for cells in lines:
                cells.append(self.extra)
        delimiter = variant["delimiter"]
        text = self.newline.join(delimiter.join(cells) for cells in [header, *lines]) + self.newline
        if self.blank_line:
            text += self.newline
        encoding = variant.get("encoding", "utf-8")
        data = ("\ufeff" if self.bom else "").encode(encoding, errors="replace") + text.encode(
            encoding, errors="replace"
        )
        path.write_bytes(data)
        return path


def snapshots(plain: bool = False) -> st.SearchStrategy[Snapshot]:
    """Snapshot files; `plain`: mostly valid ones (SKUs unique, values the Python reader takes)."""
    skus = st.sampled_from(SKUS[:7] if plain else SKUS)
    quantities = st.sampled_from(QUANTITIES[:6] if plain else QUANTITIES)
    stamps = st.sampled_from([*STAMPS[:8], ""] if plain else STAMPS)
    rows = st.lists(st.tuples(skus, quantities, stamps), max_size=8, unique_by=(lambda r: r[0]) if plain else None)
    return st.builds(
        Snapshot,
        rows=rows,
        stamped=st.booleans(),
        order=st.permutations((0, 1, 2)).map(tuple),
        extra=st.none() | st.sampled_from(["", "x", "a longer note " * 18, "a longer note " * 19]),
        newline=st.sampled_from(["\n", "\r\n"] if plain else ["\n", "\r\n", "\r"]),
        bom=st.booleans(),
        blank_line=st.just(False) if plain else st.booleans(),
        quoted=st.just(False) if plain else st.booleans(),
    )


CANONICAL_QUANTITIES = set(QUANTITIES[:5])
CANONICAL_STAMPS = {*STAMPS[:4], *STAMPS[6:9], ""}  # with an offset (or none given)
NAIVE_STAMPS = {STAMPS[4], STAMPS[5], STAMPS[9], STAMPS[10]}  # taken for a partner in UTC


def copy_expected(snapshot: Snapshot, variant: dict[str, Any], result: IngestResult) -> bool:
    """Whether the COPY path is meant to take a file the Python reader applied (as `result` says): plain bytes, a
    partner whose rules it serves, and every value in the shapes it reads."""
    if "absent" in variant or "encoding" in variant:
        return False
    if (snapshot.quoted and snapshot.rows) or snapshot.blank_line or snapshot.newline == "\r":
        return False
    if result.problems or result.refusals:
        return False
    stamps = {as_of for _, _, as_of in snapshot.rows} if snapshot.stamped else set()
    shapes = CANONICAL_STAMPS | (NAIVE_STAMPS if variant["timezone"] == "UTC" else set())
    return stamps <= shapes and {quantity for _, quantity, _ in snapshot.rows} <= CANONICAL_QUANTITIES


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    variant=st.integers(0, len(VARIANTS) - 1),
    files=st.lists(st.one_of(snapshots(plain=True), snapshots()), min_size=1, max_size=3),
    order=st.none() | st.tuples(st.sampled_from(SKUS[:7]), st.integers(1, 30)),
    confirm=st.booleans(),
)
def test_copy_and_python_reader_give_the_same_store_and_report(
    spied: Twins,
    monkeypatch: pytest.MonkeyPatch,
    variant: int,
    files: list[Snapshot],
    order: tuple[str, int] | None,
    confirm: bool,
) -> None:
    twins = spied
    partner = twins.partner(variant)
    twins.clock.set(START)  # the future stamps are future again
    folder = twins.folder
    for number, snapshot in enumerate(files):
        path = snapshot.write(folder / f"{partner}-{number}.csv", VARIANTS[variant])
        result, taken = ingest_both(twins, partner, path, monkeypatch)
        if result.outcome == "applied" or taken is not None:
            assert bool(taken) == copy_expected(snapshot, VARIANTS[variant], result)
        if number == 0 and order is not None:  # allocations to be oversold, movements to predate (simple mode)
            sku, quantity = order
            for app in (twins.copying, twins.reading):
                try:
                    app.commands.place(partner, "o1", [RequestedLine(sku, quantity)])
                    if confirm and VARIANTS[variant]["stock_mode"] == "simple":
                        app.commands.set_status(partner, "o1", OrderStatus.CONFIRMED)
                except Refusal:
                    pass
            assert contents(twins.urls[0]) == contents(twins.urls[1])
        twins.clock.advance(60)


T = "2025-12-01T10:00:00Z"
ROWS = f"A1,5,{T}\nA2,7,{T}\n"
# (variant, the file's rows after its header (commas: the variant's delimiter), the outcome, whether COPY takes it)
CASES = {
    "plain": (0, ROWS, "applied", True),
    "no rows": (0, "", "applied", True),
    "CRLF and a byte-order mark": (0, "\ufeff" + ROWS.replace("\n", "\r\n"), "applied", True),
    "tabs, the partner's header names": (2, ROWS, "applied", True),
    "semicolons, offsets, in Paris": (1, "A1,5,2025-12-01T10:00:00+01:00\nA2,7,\n", "applied", True),
    "a quoted cell": (0, f'"A1",5,{T}\n', "applied", False),
    "a backslash in a SKU": (0, f"A\\1,5,{T}\n", "applied", False),
    "a lone carriage return": (0, f"A1,5,{T}\rA2,7,{T}\n", "applied", False),
    "a blank line": (0, ROWS + "\n", "applied", False),
    "a line over max_line_bytes": (4, f"A1,5,{T}\n" + "A2," + "7" * 300 + f",{T}\n", "rejected", False),
    "a time without an offset, in Paris": (1, "A1,5,2025-12-01T10:00:00\n", "applied", False),
    "a date alone": (0, "A1,5,2025-12-01\n", "applied", False),
    "seven digits of a second": (0, "A1,5,2025-12-01T10:00:00.1234567Z\n", "applied", False),
    "24:00": (0, "A1,5,2025-12-01T24:00:00Z\n", "rejected", False),
    "30 February": (0, "A1,5,2025-02-30T00:00:00Z\n", "rejected", False),
    "a padded quantity": (0, f"A1, 5,{T}\n", "applied", False),
    "a negative quantity": (0, f"A1,-1,{T}\n", "rejected", False),
    "a padded SKU": (0, f"A1 ,5,{T}\n", "rejected", False),
    "a SKU given twice": (0, ROWS + f"A1,6,{T}\n", "rejected", False),
    "a level stamped in the future": (0, "A1,5,2026-01-02T00:00:00Z\n" + ROWS[len(f"A1,5,{T}\n") :], "applied", False),
    "latin-1": (6, "Ä1,5,\n", "applied", None),
    "absent = zero": (5, ROWS, "applied", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_copy_takes_a_plain_file_and_leaves_any_other_to_the_python_reader(
    spied: Twins, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Each way out of the COPY path: the file goes to the Python reader whole, with the same result as on a store
    that never copies (taken None: the partner's settings never let COPY try)."""
    variant, rows, outcome, taken = CASES[case]
    settings_of = VARIANTS[variant]
    delimiter = settings_of["delimiter"]
    header = delimiter.join(settings_of.get("names", ("sku", "quantity", "as_of")))
    bom = rows.startswith("\ufeff")
    text = ("\ufeff" if bom else "") + header + ("\r\n" if "\r\n" in rows else "\n") + rows.lstrip("\ufeff")
    partner = f"case{list(CASES).index(case)}"  # a partner of its own: no stock, no file before
    spied.clock.set(START)
    path = spied.folder / f"{partner}.csv"
    path.write_bytes(text.replace(",", delimiter).encode(settings_of.get("encoding", "utf-8")))
    result, copied = ingest_both(spied, partner, path, monkeypatch)
    assert (result.outcome, copied) == (outcome, taken), result.summary()


def test_a_row_repeating_a_stored_level_no_file_may_give_is_checked_all_the_same(
    spied: Twins, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row equal to its stored level is left out of the merge unchecked only when the stored level is one a file
    may give: a negative level (or one of 13 digits) in the store and in the file refuses the file, as the Python
    reader does."""
    spied.clock.set(START)
    first = spied.folder / "seeded-1.csv"
    first.write_text(f"sku,quantity,as_of\n{ROWS}", encoding="utf-8")
    assert ingest_both(spied, "seeded", first, monkeypatch)[0].outcome == "applied"
    for url in spied.urls:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE stock SET quantity = -5 WHERE sku = 'A1'")
            connection.exec_driver_sql("UPDATE stock SET quantity = 1000000000000 WHERE sku = 'A2'")
        engine.dispose()
    for number, row in enumerate((f"A1,-5,{T}", f"A2,1000000000000,{T}"), start=2):
        again = spied.folder / f"seeded-{number}.csv"
        again.write_text(f"sku,quantity,as_of\n{row}\n", encoding="utf-8")
        result, taken = ingest_both(spied, "seeded", again, monkeypatch)
        assert (result.outcome, taken) == ("rejected", False), result.summary()


def test_a_sku_given_twice_in_a_routine_snapshot_leaves_copy_even_when_neither_row_changes_anything(
    spied: Twins, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows that change nothing never reach the merge: a SKU given twice among them is found all the same."""
    spied.clock.set(START)
    first = spied.folder / "routine-1.csv"
    first.write_text(f"sku,quantity,as_of\n{ROWS}", encoding="utf-8")
    assert ingest_both(spied, "routine", first, monkeypatch)[0].outcome == "applied"
    again = spied.folder / "routine-2.csv"
    again.write_text(f"sku,quantity,as_of\n{ROWS}A1,5,{T}\n", encoding="utf-8")
    result, taken = ingest_both(spied, "routine", again, monkeypatch)
    assert (result.outcome, taken) == ("rejected", False), result.summary()


def test_a_routine_snapshot_changing_few_rows_merges_only_those(spied: Twins, monkeypatch: pytest.MonkeyPatch) -> None:
    """100 SKUs, then the same with one level moved, one stale and one new: the merge reads the three rows (its plan
    on key look-ups, the stock analyzed first, as the planner counts none of it yet), with the same result and store
    as the Python reader's, which merges all 101."""
    spied.clock.set(START)
    stamp = "2025-12-01T10:00:00+01:00"
    rows = [f"S{i:03d};{i};{stamp}" for i in range(100)]
    first = spied.folder / "few-1.csv"
    first.write_text("sku;quantity;as_of\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert ingest_both(spied, "few", first, monkeypatch)[0].outcome == "applied"
    rows[3] = f"S003;300;{stamp}"
    rows[4] = "S004;400;2025-11-01T00:00:00Z"
    rows.append(f"S100;100;{stamp}")
    again = spied.folder / "few-2.csv"
    again.write_text("sku;quantity;as_of\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result, taken = ingest_both(spied, "few", again, monkeypatch)
    assert taken
    assert (result.outcome, result.counts.applied, result.counts.skipped, result.ats_changes) == ("applied", 100, 1, 2)
