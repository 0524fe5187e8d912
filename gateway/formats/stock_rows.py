"""Reading a stock snapshot's rows: one by one (`read_stock`), or in batches for applying in bulk (`StockBatches`),
a batch of plainly valid rows kept as the file's own columns (`PlainLevels`).

The cells are checked as rows.py's readers check theirs (rows.Cells), adding a Problem for every cell that is not
a stock level; rows with problems are not yielded: the caller refuses the file when problems exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import tzinfo
from itertools import islice
from operator import itemgetter, lt
from typing import overload

from gateway.domain.instant import Instant
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problem
from gateway.formats.rows import MAX_ID_LENGTH, MAX_QUANTITY_DIGITS, Cells, StockRow


def _scan_stock(
    table: CsvTable,
    cells: Cells,
    seen: set[str],
    default_as_of: Instant | None,
    size: int,
    lines: list[int] | None = None,
    *,
    keep_seen: bool = True,
) -> Iterator[Sequence[tuple[str, int, Instant | None]]]:
    """Batches of (sku, quantity, as_of) of the valid rows (as_of `default_as_of` where the row gives none).

    A SKU given twice is a problem. A million-row snapshot spends most of its parsing time here, so a batch is
    first checked a column at a time by the interpreter's own map and all; a batch with anything doubtful in
    it is checked row by row, and those checks say what is wrong where. `lines`, when given, receives each
    accepted row's line number. `seen` receives every SKU read; without `keep_seen`, only those the checks
    needed: the SKUs of a file sorted by SKU are kept as their batches' lists, put in the set only when a batch
    out of order needs to look them up.
    """
    i_sku, i_qty = table.index["sku"], table.index["quantity"]
    i_as_of = table.index.get("as_of")
    above = max(seen, default="")  # every SKU seen sorts at or below it ("": none seen)
    kept: list[list[str]] = []  # ascending batches' SKUs, all after those in `seen`, not in the set yet
    for rows, row_lines in table.batches(size):
        plain = _plain_batch(rows, i_sku, i_qty, i_as_of, cells, seen, default_as_of, above, kept)
        if plain is not None:
            above = max(above, plain.skus[-1] if plain.ascending else max(plain.skus))
            if lines is not None:
                lines.extend(row_lines)
            yield plain
            continue
        _settle(kept, seen)
        batch: list[tuple[str, int, Instant | None]] = []
        for row, line in zip(rows, row_lines, strict=True):
            stamp = row[i_as_of].strip() if i_as_of is not None else ""
            sku = cells.identifier(line, "sku", row[i_sku])
            quantity = cells.count(line, "quantity", row[i_qty])
            as_of = cells.moment(line, "as_of", stamp, required=False) if stamp else default_as_of
            if sku is not None and sku in seen:
                table.problems.add(Problem(line, f"SKU {sku} appears more than once in this snapshot", "sku"))
                continue
            if sku is None or quantity is None or (as_of is None and stamp):
                continue
            seen.add(sku)
            above = max(above, sku)
            batch.append((sku, quantity, as_of))
            if lines is not None:
                lines.append(line)
        if batch:
            yield batch
    if keep_seen:
        _settle(kept, seen)


def _settle(kept: list[list[str]], seen: set[str]) -> None:
    """Put the SKUs kept as lists in the set of those seen."""
    for skus in kept:
        seen.update(skus)
    kept.clear()


class PlainLevels(Sequence[tuple[str, int, Instant | None]]):
    """A batch of plainly valid rows kept as the file's own columns: (sku, quantity, as_of) tuples are only made
    when a row is asked for.

    A routine snapshot repeats most of what the store holds: the store compares the columns' texts with its own
    (`quantities` and `as_of_texts`, see StockRepository.unlike) and only the rows that differ become tuples
    (`pick`). `quantities` are the file's texts, all ASCII digits; `as_of_texts` the decimal microseconds of each
    row's instant ('' for none).
    """

    __slots__ = ("_rows", "ascending", "default", "instants", "quantities", "skus", "stamps")

    def __init__(
        self,
        skus: list[str],
        quantities: list[str],
        stamps: list[str] | None,
        instants: dict[str, Instant],
        default: Instant | None,
        *,
        ascending: bool = False,
    ) -> None:
        self.skus = skus
        self.ascending = ascending  # known to hold its SKUs in ascending order
        self.quantities = quantities
        self.stamps = stamps  # the as_of cells (None: the file has no as_of column, every row takes `default`)
        self.instants = instants  # each stamp's instant
        self.default = default
        self._rows: list[tuple[str, int, Instant | None]] | None = None

    @property
    def latest(self) -> Instant | None:
        """The latest instant of the batch's rows."""
        return self.default if self.stamps is None else max(self.instants.values())

    def as_of_texts(self) -> list[str]:
        """Each row's instant as decimal microseconds ('' for none), as a store writes an integer column."""
        if self.stamps is None:
            return ["" if self.default is None else str(self.default)] * len(self.skus)
        texts = {stamp: str(value) for stamp, value in self.instants.items()}
        return list(map(texts.__getitem__, self.stamps))

    def pick(self, positions: Iterable[int]) -> list[tuple[str, int, Instant | None]]:
        """The rows at `positions`, as tuples."""
        skus, quantities, stamps, instants = self.skus, self.quantities, self.stamps, self.instants
        if stamps is None:
            return [(skus[i], int(quantities[i]), self.default) for i in positions]
        return [(skus[i], int(quantities[i]), instants[stamps[i]]) for i in positions]

    def _all(self) -> list[tuple[str, int, Instant | None]]:
        rows = self._rows
        if rows is None:
            as_ofs: list[Instant | None] | map[Instant | None]
            if self.stamps is None:
                as_ofs = [self.default] * len(self.skus)
            else:
                as_ofs = map(self.instants.__getitem__, self.stamps)
            rows = self._rows = list(zip(self.skus, map(int, self.quantities), as_ofs, strict=True))
        return rows

    def __len__(self) -> int:
        return len(self.skus)

    @overload
    def __getitem__(self, index: int) -> tuple[str, int, Instant | None]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, int, Instant | None]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> tuple[str, int, Instant | None] | list[tuple[str, int, Instant | None]]:
        return self._all()[index]

    def __iter__(self) -> Iterator[tuple[str, int, Instant | None]]:
        return iter(self._all())


def _plain_batch(
    rows: list[list[str]],
    i_sku: int,
    i_qty: int,
    i_as_of: int | None,
    cells: Cells,
    seen: set[str],
    default_as_of: Instant | None,
    above: str,
    kept: list[list[str]],
) -> PlainLevels | None:
    """The batch's rows when every one is plainly valid (nothing to report); else None. `above`: no SKU seen
    sorts after it; `kept`: SKUs seen that are not in `seen` yet (see _scan_stock)."""
    skus = list(map(itemgetter(i_sku), rows))
    texts = list(map(itemgetter(i_qty), rows))
    digits = "".join(texts)
    names = "".join(skus)
    quantity_lengths, sku_lengths = set(map(len, texts)), set(map(len, skus))
    # A batch of ascending SKUs all after every SKU seen (a file sorted by SKU) is new throughout: no look-up
    # in `seen` needed.
    ascending = skus[0] > above and all(map(lt, skus, islice(skus, 1, None)))
    if not ascending:
        _settle(kept, seen)  # this batch is looked up in the set: it must hold every SKU seen
    # Checked on the joined text: every quantity all ASCII digits, every SKU printable and free of any white
    # space, so surely an identifier (printable text holds no control character, and spaces are the only
    # printable white space); a SKU with an inner space, or any doubt, takes the row-by-row path.
    if not (
        digits.isdigit()
        and digits.isascii()
        and min(quantity_lengths) > 0
        and max(quantity_lengths) <= MAX_QUANTITY_DIGITS
        and names.isprintable()
        and " " not in names
        and min(sku_lengths) > 0
        and max(sku_lengths) <= MAX_ID_LENGTH
        and (ascending or seen.isdisjoint(skus))
    ):
        return None
    stamps: list[str] | None = None
    known: dict[str, Instant] = {}
    if i_as_of is not None:
        stamps = list(map(itemgetter(i_as_of), rows))
        for stamp in set(stamps):
            moment = cells.instant_of(stamp)
            if moment is None:
                return None  # empty or unreadable: reported, with its line, by the row-by-row checks
            known[stamp] = moment
    if ascending:
        kept.append(skus)  # each after the last: none twice, none seen before
        return PlainLevels(skus, texts, stamps, known, default_as_of, ascending=ascending)
    before = len(seen)
    seen.update(skus)
    if len(seen) - before != len(skus):  # a SKU twice in this batch (none was seen before it)
        seen.difference_update(skus)
        return None
    return PlainLevels(skus, texts, stamps, known, default_as_of, ascending=ascending)


def read_stock(table: CsvTable, zone: tzinfo, seen: set[str] | None = None) -> Iterator[StockRow]:
    """Stock rows of a snapshot, one by one with their line numbers (`seen` collects the SKUs read)."""
    cells = Cells(table.problems, zone)
    lines: list[int] = []
    for batch in _scan_stock(table, cells, set() if seen is None else seen, None, 1, lines):
        for sku, quantity, as_of in batch:
            yield StockRow(lines.pop(0), sku, quantity, as_of)


class StockBatches:
    """A snapshot's valid rows as batches of (sku, quantity, as_of), for applying in bulk.

    Rows without an as_of take `default_as_of`. `seen` holds every SKU read once every batch is given (for
    `absent = "zero"`; without `keep_seen`, only those the checks needed), `latest` the latest as_of the file
    itself gave (None when it gave none), and `lines` the line numbers of the batch last given, row for row.
    """

    def __init__(
        self, table: CsvTable, zone: tzinfo, default_as_of: Instant, size: int = 5000, *, keep_seen: bool = True
    ) -> None:
        self.table = table
        self.keep_seen = keep_seen
        self.cells = Cells(table.problems, zone)
        self.default_as_of = default_as_of
        self.size = size
        self.seen: set[str] = set()
        self.rows = 0
        self.lines: list[int] = []

    @property
    def latest(self) -> Instant | None:
        """The latest as_of given in the file so far."""
        return self.cells.latest

    def __iter__(self) -> Iterator[Sequence[tuple[str, int, Instant]]]:
        lines = self.lines
        scan = _scan_stock(
            self.table, self.cells, self.seen, self.default_as_of, self.size, lines, keep_seen=self.keep_seen
        )
        for batch in scan:
            self.rows += len(batch)
            yield batch  # type: ignore[misc]  # with a default, every as_of is set
            lines.clear()  # the next batch's lines are gathered from here
