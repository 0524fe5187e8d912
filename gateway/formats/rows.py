"""The kinds of flat file and their rows: stock snapshots, order statuses, confirmations, caps, acknowledgements,
collections' dates;
the cells' checks (`Cells`), and the readers of every kind but stock (a snapshot is read by stock_rows.py).

Each reader turns a CsvTable's cells into typed rows, adding a Problem for every cell that is not what the
kind requires. Rows with problems are not yielded: the caller refuses the file when problems exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, tzinfo
from enum import StrEnum
from typing import NamedTuple

from gateway.domain import days, identifiers, instant
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
    COLLECTIONS = "collections"


COLUMNS: dict[Kind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Kind.STOCK: (("sku", "quantity"), ("as_of", "available_from")),
    Kind.ORDERS: (("order_id", "sku", "quantity", "status"), ("assembly", "collection", "wanted_on")),
    Kind.CONFIRMATIONS: (("order_id", "sku", "confirmed_quantity", "confirmed_at"), ()),
    Kind.CAPS: (("sku", "assembly", "collection", "max"), ()),
    Kind.ACKNOWLEDGEMENTS: (("order_id", "status"), ("updated_at",)),
    Kind.COLLECTIONS: (("assembly", "collection", "opens_at", "closes_at", "pickup_on"), ()),
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
    wanted_on: date | None = None  # the order's `wanted_on` (an order's rows all give the same one)


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
class CollectionRowIn:
    """One collection's dates, replacing its dates whole: None where the cell is empty (no such date)."""

    line: int
    assembly: str
    collection: str
    opens_at: Instant | None
    closes_at: Instant | None
    pickup_on: date | None


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


def read_orders(table: CsvTable, zone: tzinfo) -> Iterator[OrderRow]:
    """Order rows: one row per line of an order, each naming the order's status."""
    cells = Cells(table.problems, zone)
    idx = table.index
    i_assembly, i_collection, i_wanted = idx.get("assembly"), idx.get("collection"), idx.get("wanted_on")
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
        wanted_on = None
        wanted_text = row[i_wanted].strip() if i_wanted is not None else ""
        if wanted_text:
            try:
                wanted_on = days.parse_day(wanted_text, zone)
            except ValueError as exc:
                table.problems.add(Problem(line, str(exc), "wanted_on"))
                continue
        if order_id is None or sku is None or quantity is None or status is None:
            continue
        yield OrderRow(line, order_id, status, RequestedLine(sku, quantity, assembly, collection), wanted_on)


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


def read_collections(table: CsvTable, zone: tzinfo) -> Iterator[CollectionRowIn]:
    """Collections' dates: an empty cell is no such date; instants without an offset are in the partner's `zone`.
    A collection given twice is a problem naming both lines (which row is the last word cannot be known)."""
    cells = Cells(table.problems, zone)
    idx = table.index
    seen: dict[tuple[str, str], int] = {}
    for line, row in table:
        assembly = cells.identifier(line, "assembly", row[idx["assembly"]])
        collection = cells.identifier(line, "collection", row[idx["collection"]])
        opens_text, closes_text = row[idx["opens_at"]], row[idx["closes_at"]]
        opens_at = cells.moment(line, "opens_at", opens_text, required=False)
        closes_at = cells.moment(line, "closes_at", closes_text, required=False)
        pickup_on: date | None = None
        pickup_text = row[idx["pickup_on"]].strip()
        if pickup_text:
            try:
                pickup_on = days.parse_day(pickup_text, zone)
            except (ValueError, OverflowError):  # an instant at the edge of the years may leave them in the zone
                table.problems.add(Problem(line, f"{pickup_text[:40]!r} is not an ISO 8601 date", "pickup_on"))
                continue
        if assembly is None or collection is None:
            continue
        if (opens_at is None and opens_text.strip()) or (closes_at is None and closes_text.strip()):
            continue  # reported by the timestamp rule
        first = seen.setdefault((assembly, collection), line)
        if first != line:
            again = f"collection {collection} of {assembly} is given again (first at line {first})"
            table.problems.add(Problem(line, again, "collection"))
            continue
        yield CollectionRowIn(line, assembly, collection, opens_at, closes_at, pickup_on)
