"""The kinds of flat file and their rows: stock snapshots, order statuses, confirmations, caps, acknowledgements.

Each reader turns a CsvTable's cells into typed rows, adding a Problem for every cell that is not what the
kind requires. Rows with problems are not yielded: the caller refuses the file when problems exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from enum import StrEnum
from itertools import islice
from operator import itemgetter, lt
from typing import NamedTuple, overload

from gateway.domain import identifiers, instant
from gateway.domain.caps import ALL_COLLECTIONS
from gateway.domain.instant import Instant
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus, parse_status
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problem, Problems

MAX_ID_LENGTH = identifiers.MAX_LENGTH
MAX_QUANTITY_DIGITS = 12  # up to 999,999,999,999 units: far beyond any stock, well inside a 64-bit column


class Kind(StrEnum):
    """The kinds of inbound flat file."""

    STOCK = "stock"
    ORDERS = "orders"
    CONFIRMATIONS = "confirmations"
    CAPS = "caps"
    ACKNOWLEDGEMENTS = "acknowledgements"  # the same word as the feed (pages.Feed): one applier serves both


COLUMNS: dict[Kind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Kind.STOCK: (("sku", "quantity"), ("as_of",)),
    Kind.ORDERS: (("order_id", "sku", "quantity", "status"), ("assembly", "collection")),
    Kind.CONFIRMATIONS: (("order_id", "sku", "confirmed_quantity", "confirmed_at"), ()),
    Kind.CAPS: (("sku", "assembly", "collection", "max"), ()),
    Kind.ACKNOWLEDGEMENTS: (("order_id", "status"), ("updated_at",)),
}


class StockRow(NamedTuple):
    """One SKU's stock level in a snapshot."""

    line: int
    sku: str
    quantity: int
    as_of: Instant | None


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One row of an order file (at `line`): the order, the status it is in or moves to, and one of its lines as
    requested."""

    line: int
    order_id: str
    status: OrderStatus
    requested: RequestedLine


@dataclass(frozen=True, slots=True)
class ConfirmationRow:
    """The partner's confirmed quantity for one order line."""

    line: int
    order_id: str
    sku: str
    confirmed_quantity: int
    confirmed_at: Instant


@dataclass(frozen=True, slots=True)
class CapRowIn:
    """One cap setting: `collection` None applies to all collections; `limit` None is "no maximum"."""

    line: int
    sku: str
    assembly: str
    collection: str | None
    limit: int | None


@dataclass(frozen=True, slots=True)
class AcknowledgementRow:
    """A status-only acknowledgement: the order (all its lines) moves to `status`, stated at `updated_at`."""

    line: int
    order_id: str
    status: OrderStatus
    updated_at: Instant | None = None  # as the partner gave it; the move itself is stamped by the gateway


class Cells:
    """Checks cells of one kind, remembering parsed timestamps (most files repeat one)."""

    def __init__(self, problems: Problems, zone: tzinfo, unit: str = "line") -> None:
        self.problems = problems
        self.unit = unit  # "item" when the cells are the fields of an API page's items
        self.zone = zone
        self.instants: dict[str, Instant] = {}
        self.latest: Instant | None = None  # the latest instant parsed

    def identifier(self, line: int, column: str, text: str) -> str | None:
        """`text` when it follows the identifier rule, taken as given (never trimmed); else None and a problem."""
        why = identifiers.problem(text)
        if why is not None:
            self.problems.add(Problem(line, why, column, self.unit))
            return None
        return text

    def optional_identifier(self, line: int, column: str, text: str) -> str | None:
        """None for an empty (or blank) cell, else `text` checked as an identifier (None and a problem if not)."""
        return self.identifier(line, column, text) if text.strip() else None

    def count(self, line: int, column: str, text: str, *, minimum: int = 0) -> int | None:
        value = text.strip()
        if not (value.isascii() and value.isdigit()):
            shown = value if len(value) <= 40 else value[:40] + "..."
            what = "a negative number" if value.startswith("-") else f"{shown!r}"
            self.problems.add(
                Problem(line, f"must be a whole number of at least {minimum}, got {what}", column, self.unit)
            )
            return None
        if len(value) > MAX_QUANTITY_DIGITS:
            self.problems.add(Problem(line, f"must have at most {MAX_QUANTITY_DIGITS} digits", column, self.unit))
            return None
        number = int(value)
        if number < minimum:
            self.problems.add(Problem(line, f"must be at least {minimum}, got {number}", column, self.unit))
            return None
        return number

    def moment(self, line: int, column: str, text: str, *, required: bool) -> Instant | None:
        value = text.strip()
        if not value:
            if required:
                self.problems.add(Problem(line, "must not be empty", column, self.unit))
            return None
        parsed = self.instant_of(value)
        if parsed is None:
            self.problems.add(Problem(line, f"{value[:40]!r} is not an ISO 8601 timestamp", column, self.unit))
        return parsed

    def instant_of(self, value: str) -> Instant | None:
        """The instant `value` names (remembered), or None when it names none."""
        cached = self.instants.get(value)
        if cached is not None:
            return cached
        try:
            parsed = instant.parse(value, self.zone)
        except (ValueError, OverflowError):
            return None
        if len(self.instants) > 10_000:
            self.instants.clear()
        self.instants[value] = parsed
        if self.latest is None or parsed > self.latest:
            self.latest = parsed
        return parsed

    def status(self, line: int, column: str, text: str) -> OrderStatus | None:
        try:
            return parse_status(text)
        except ValueError as exc:
            self.problems.add(Problem(line, str(exc), column, self.unit))
            return None


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


def read_orders(table: CsvTable, zone: tzinfo) -> Iterator[OrderRow]:
    """Order rows: one row per line of an order, each naming the order's status."""
    cells = Cells(table.problems, zone)
    idx = table.index
    i_assembly, i_collection = idx.get("assembly"), idx.get("collection")
    for line, row in table:
        order_id = cells.identifier(line, "order_id", row[idx["order_id"]])
        sku = cells.identifier(line, "sku", row[idx["sku"]])
        quantity = cells.count(line, "quantity", row[idx["quantity"]], minimum=1)
        status = cells.status(line, "status", row[idx["status"]])
        assembly_text = row[i_assembly] if i_assembly is not None else ""
        collection_text = row[i_collection] if i_collection is not None else ""
        assembly = cells.optional_identifier(line, "assembly", assembly_text)
        collection = cells.optional_identifier(line, "collection", collection_text)
        in_assembly, in_collection = bool(assembly_text.strip()), bool(collection_text.strip())
        if in_collection and not in_assembly:
            table.problems.add(Problem(line, "a collection needs an assembly", "assembly"))
            continue
        if in_assembly and not in_collection:
            table.problems.add(Problem(line, "an assembly needs a collection", "collection"))
            continue
        if (in_assembly and assembly is None) or (in_collection and collection is None):
            continue  # reported by the identifier rule
        if order_id is None or sku is None or quantity is None or status is None:
            continue
        yield OrderRow(line, order_id, status, RequestedLine(sku, quantity, assembly, collection))


def read_confirmations(table: CsvTable, zone: tzinfo) -> Iterator[ConfirmationRow]:
    """Confirmation rows: the partner's confirmed quantity for an order line, with its instant."""
    cells = Cells(table.problems, zone)
    idx = table.index
    for line, row in table:
        order_id = cells.identifier(line, "order_id", row[idx["order_id"]])
        sku = cells.identifier(line, "sku", row[idx["sku"]])
        quantity = cells.count(line, "confirmed_quantity", row[idx["confirmed_quantity"]])
        at = cells.moment(line, "confirmed_at", row[idx["confirmed_at"]], required=True)
        if order_id is None or sku is None or quantity is None or at is None:
            continue
        yield ConfirmationRow(line, order_id, sku, quantity, at)


def read_caps(table: CsvTable, zone: tzinfo) -> Iterator[CapRowIn]:
    """Cap settings: `collection` "*" means all collections of the assembly, `max` "none" means no maximum."""
    cells = Cells(table.problems, zone)
    idx = table.index
    seen: dict[tuple[str, str, str], int] = {}
    for line, row in table:
        sku = cells.identifier(line, "sku", row[idx["sku"]])
        assembly = cells.identifier(line, "assembly", row[idx["assembly"]])
        collection = row[idx["collection"]]
        text = row[idx["max"]].strip()
        limit: int | None = None
        valid = True
        if not collection.strip() or ("*" in collection and collection.strip() != ALL_COLLECTIONS):
            shown = collection if len(collection) <= 40 else collection[:40] + "..."
            table.problems.add(
                Problem(line, f"{shown!r} is not a collection: give its name, or * for all collections", "collection")
            )
            valid = False
        elif collection != ALL_COLLECTIONS:  # a named collection, or a padded "*": the identifier rule says which
            valid = cells.identifier(line, "collection", collection) is not None
        if text.lower() != "none":
            limit = cells.count(line, "max", text)
            valid = valid and limit is not None
        if sku is None or assembly is None or not valid:
            continue
        key = (sku, assembly, collection)
        if key in seen:
            table.problems.add(
                Problem(
                    line, f"SKU {sku} in {assembly}/{collection} is capped again (first at line {seen[key]})", "sku"
                )
            )
            continue
        seen[key] = line
        yield CapRowIn(line, sku, assembly, None if collection == ALL_COLLECTIONS else collection, limit)


def read_acknowledgements(table: CsvTable, zone: tzinfo) -> Iterator[AcknowledgementRow]:
    """Status-only acknowledgements, one row per order: the order moves to `status` (`updated_at` optional).

    An order given twice in one file is a problem naming both lines: which of its rows the partner meant to be
    the last word cannot be known, so the file is refused whole rather than one of them guessed.
    """
    cells = Cells(table.problems, zone)
    idx = table.index
    i_updated = idx.get("updated_at")
    seen: dict[str, int] = {}
    for line, row in table:
        order_id = cells.identifier(line, "order_id", row[idx["order_id"]])
        status = cells.status(line, "status", row[idx["status"]])
        stamp = row[i_updated] if i_updated is not None else ""
        updated_at = cells.moment(line, "updated_at", stamp, required=False)
        if order_id is None:
            continue
        first = seen.setdefault(order_id, line)  # a row with another problem still holds its order's place
        if first != line:
            again = f"order {order_id} is acknowledged again (first at line {first}): one row per order"
            table.problems.add(Problem(line, again, "order_id"))
            continue
        if status is None or (updated_at is None and stamp.strip()):
            continue
        yield AcknowledgementRow(line, order_id, status, updated_at)
