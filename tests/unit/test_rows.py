"""Typed rows of each kind: stock snapshots, order statuses, confirmations; every bad cell is a problem."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.domain import identifiers
from gateway.domain.instant import parse, to_iso
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.formats.csvfile import CsvOptions, CsvTable
from gateway.formats.problems import Malformed, Problem
from gateway.formats.rows import (
    COLUMNS,
    MAX_ID_LENGTH,
    ConfirmationRow,
    Kind,
    OrderRow,
    StockRow,
    read_acknowledgements,
    read_caps,
    read_collections,
    read_confirmations,
    read_orders,
)
from gateway.formats.stock_rows import StockBatches, read_stock
from tests.conftest import FIXTURES

PARIS = ZoneInfo("Europe/Paris")


def open_table(kind: Kind, data: bytes, **options: Any) -> CsvTable:
    required, optional = COLUMNS[kind]
    return CsvTable(io.BytesIO(data), CsvOptions(**options), required, optional)


def read(
    kind: Kind,
    reader: Callable[[CsvTable, tzinfo], Iterator[Any]],
    data: bytes,
    zone: tzinfo = UTC,
    **options: Any,
) -> tuple[list[Any], list[Problem]]:
    table = open_table(kind, data, **options)
    found = list(reader(table, zone))
    return found, table.problems.listed


def stock(data: bytes, zone: tzinfo = UTC, **options: Any) -> tuple[list[StockRow], list[Problem]]:
    return read(Kind.STOCK, read_stock, data, zone, **options)


def orders(data: bytes, zone: tzinfo = UTC, **options: Any) -> tuple[list[OrderRow], list[Problem]]:
    return read(Kind.ORDERS, read_orders, data, zone, **options)


def confirmations(data: bytes, zone: tzinfo = UTC, **options: Any) -> tuple[list[ConfirmationRow], list[Problem]]:
    return read(Kind.CONFIRMATIONS, read_confirmations, data, zone, **options)


def where(problems: list[Problem]) -> list[tuple[int | None, str | None]]:
    return [(p.line, p.column) for p in problems]


ORDER_HEADER = b"order_id,sku,quantity,status\n"
CONFIRMATION_HEADER = b"order_id,sku,confirmed_quantity,confirmed_at\n"
CHANNEL_HEADER = b"order_id,sku,quantity,status,assembly,collection\n"
CAP_HEADER = b"sku,assembly,collection,max\n"
COLLECTION_HEADER = b"assembly,collection,opens_at,closes_at,pickup_on\n"
READERS: dict[Kind, Callable[[CsvTable, tzinfo], Iterator[Any]]] = {
    Kind.STOCK: read_stock,
    Kind.ORDERS: read_orders,
    Kind.CONFIRMATIONS: read_confirmations,
    Kind.CAPS: read_caps,
    Kind.ACKNOWLEDGEMENTS: read_acknowledgements,
    Kind.COLLECTIONS: read_collections,
}
IDENTIFIER_COLUMNS = ("sku", "order_id", "assembly", "collection")


# stock


def test_a_valid_snapshot_yields_typed_rows_with_their_lines() -> None:
    """The fixture stock/good.csv."""
    found, problems = stock((FIXTURES / "stock" / "good.csv").read_bytes())
    at = parse("2019-06-25T12:00:00Z")
    assert found == [
        StockRow(2, "3700000000011", 10, at),
        StockRow(3, "3700000000028", 4, at),
        StockRow(4, "3700000000035", 0, at),
    ]
    assert not problems


def test_a_snapshot_without_as_of_gives_rows_without_an_instant() -> None:
    """The fixture good_bom_tab.csv: BOM, tabs, no as_of column."""
    found, problems = stock((FIXTURES / "stock" / "good_bom_tab.csv").read_bytes())
    assert found == [StockRow(2, "3700000000011", 12, None), StockRow(3, "3700000000042", 3, None)]
    assert not problems


def test_a_renamed_semicolon_snapshot_is_read_with_its_configured_columns() -> None:
    """The fixture good_semicolon_renamed.csv with columns EAN and Qty."""
    data = (FIXTURES / "stock" / "good_semicolon_renamed.csv").read_bytes()
    found, problems = stock(data, columns={"sku": "EAN", "quantity": "Qty", "as_of": "as_of"})
    assert [(r.sku, r.quantity) for r in found] == [("3700000000011", 7), ("3700000000028", 2)]
    assert not problems


def test_a_quantity_cell_is_read_through_surrounding_space() -> None:
    """' 3 ' is 3: a number, not an identifier, so its padding says nothing about which SKU is meant."""
    found, problems = stock(b"sku,quantity\nA, 3 \n")
    assert found == [StockRow(2, "A", 3, None)]
    assert not problems


@pytest.mark.parametrize(
    ("kind", "data", "column"),
    [
        (Kind.STOCK, b"sku,quantity\nA,1\n A ,3\n", "sku"),
        (Kind.STOCK, b"sku,quantity\nA,1\nP1 ,3\n", "sku"),
        (Kind.STOCK, "sku,quantity\nA,1\n\u00a0P1,3\n".encode(), "sku"),
        (Kind.ORDERS, ORDER_HEADER + b"O-1,A,1,pending\nO-2 ,A,1,pending\n", "order_id"),
        (Kind.ORDERS, ORDER_HEADER + b"O-1,A,1,pending\nO-2, B,1,pending\n", "sku"),
        (
            Kind.ORDERS,
            CHANNEL_HEADER + b"O-1,A,1,pending,K1,C1\nO-2,A,1,pending, K1,C1\n",
            "assembly",
        ),
        (
            Kind.ORDERS,
            CHANNEL_HEADER + b"O-1,A,1,pending,K1,C1\nO-2,A,1,pending,K1,C1 \n",
            "collection",
        ),
        (
            Kind.CONFIRMATIONS,
            CONFIRMATION_HEADER + b"O-1,A,1,2019-06-26T11:00:00Z\n O-1,B,1,2019-06-26T11:00:00Z\n",
            "order_id",
        ),
        (
            Kind.CONFIRMATIONS,
            CONFIRMATION_HEADER + b"O-1,A,1,2019-06-26T11:00:00Z\nO-1,B ,1,2019-06-26T11:00:00Z\n",
            "sku",
        ),
        (Kind.CAPS, CAP_HEADER + b"A,K1,C1,3\n A,K1,C1,3\n", "sku"),
        (Kind.CAPS, CAP_HEADER + b"A,K1,C1,3\nA,K1 ,C1,3\n", "assembly"),
        (Kind.CAPS, CAP_HEADER + b"A,K1,C1,3\nA,K1, C2,3\n", "collection"),
        (Kind.CAPS, CAP_HEADER + b"A,K1,C1,3\nA,K1, * ,3\n", "collection"),
        (Kind.ACKNOWLEDGEMENTS, b"order_id,status\nO-1,closed\nO-2 ,closed\n", "order_id"),
        (Kind.COLLECTIONS, COLLECTION_HEADER + b"K1,C1,,,\nK1,C2 ,,,\n", "collection"),
    ],
)
def test_a_padded_identifier_is_a_problem_at_its_line_never_trimmed(kind: Kind, data: bytes, column: str) -> None:
    """An identifier cell with leading or trailing white space is refused with its line, in every kind of file."""
    found, problems = read(kind, READERS[kind], data)
    assert [row.line for row in found] == [2]
    assert [(p.line, p.column, p.message) for p in problems] == [(3, column, "has leading or trailing whitespace")]


@pytest.mark.parametrize("sku", [" S50", "S50 ", "S50\u00a0", "\u3000S50", "S\x0050"])
def test_a_bad_sku_among_plain_rows_is_found_by_the_bulk_reader(sku: str) -> None:
    """The batches a snapshot is applied in check every SKU by the identifier rule, whatever else the batch holds."""
    rows = [f"S{i},{i}" for i in range(100)]
    rows[50] = f"{sku},50"
    table = open_table(Kind.STOCK, ("sku,quantity\n" + "\n".join(rows) + "\n").encode())
    batches = StockBatches(table, UTC, parse("2019-06-25T12:00:00Z"), size=5000)
    applied = [row[0] for batch in batches for row in batch]
    assert len(applied) == 99
    assert sku not in applied
    assert [(p.line, p.column, p.message) for p in table.problems.listed] == [(52, "sku", identifiers.problem(sku))]


def cell(row: object, column: str) -> object:
    """What a reader made of column `column` of `row` (an order row keeps its line's cells in `requested`)."""
    if isinstance(row, OrderRow) and column not in ("order_id", "status"):
        return getattr(row.requested, column)
    return getattr(row, column)


@pytest.mark.parametrize(
    "value",
    [
        "A",
        "a b",
        "café",
        "A\u00a0B",
        "A\u200bB",
        " A",
        "A ",
        "\u00a0A",
        "A\x00B",
        "A\x1b[2J",
        "A\x85B",
        "A\u2028B",
        "A\u2029",
        "x" * 129,
        "x" * 128,
    ],
)
@pytest.mark.parametrize("kind", list(Kind))
def test_every_identifier_cell_follows_the_one_identifier_rule(kind: Kind, value: str) -> None:
    """Each identifier column of each kind accepts exactly what identifiers.problem accepts, with its reason."""
    required, optional = COLUMNS[kind]
    good = {"quantity": "1", "status": "pending", "confirmed_quantity": "1", "confirmed_at": "2019-06-26T11:00:00Z"}
    good |= {"max": "3", "order_id": "O-1", "sku": "A", "assembly": "K1", "collection": "C1"}
    why = identifiers.problem(value)
    for column in [c for c in (*required, *optional) if c in IDENTIFIER_COLUMNS]:
        cells = [value if c == column else good.get(c, "") for c in (*required, *optional)]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([[*required, *optional], cells])
        found, problems = read(kind, READERS[kind], buffer.getvalue().encode())
        if why is None:
            assert not problems, (column, problems)
            assert cell(found[0], column) == value
        else:
            assert found == []
            assert [(p.line, p.column, p.message) for p in problems] == [(2, column, why)]


def test_an_empty_as_of_cell_means_no_instant() -> None:
    """as_of is optional per row too."""
    found, problems = stock(b"sku,quantity,as_of\nA,1,\nB,2,  \n")
    assert [(r.sku, r.as_of) for r in found] == [("A", None), ("B", None)]
    assert not problems


@pytest.mark.parametrize("text", ["four", "1.5", "1e3", "0x10", "", "²", "١٢", "1 000", "+3"])
def test_a_quantity_that_is_not_a_whole_number_is_a_problem(text: str) -> None:
    """Only ASCII digits make a quantity; the row is not yielded."""
    found, problems = stock(f"sku,quantity\nA,1\nB,{text}\nC,2\n".encode())
    assert [r.sku for r in found] == ["A", "C"]
    assert where(problems) == [(3, "quantity")]
    assert "whole number" in problems[0].message


def test_a_negative_quantity_is_a_problem_saying_so() -> None:
    """The fixture bad_quantity.csv: four and -2."""
    found, problems = stock((FIXTURES / "stock" / "bad_quantity.csv").read_bytes())
    assert [r.sku for r in found] == ["3700000000011"]
    assert where(problems) == [(3, "quantity"), (4, "quantity")]
    assert "'four'" in problems[0].message
    assert "a negative number" in problems[1].message


@pytest.mark.parametrize("text", ["9" * 5000, "100000000000000000000", str(2**63)])
def test_a_quantity_beyond_what_the_store_holds_is_a_problem(text: str) -> None:
    """Thousands of digits, or past a 64-bit column: a clean problem, never an exception."""
    found, problems = stock(f"sku,quantity\nA,1\nB,{text}\n".encode())
    assert [r.sku for r in found] == ["A"]
    assert where(problems) == [(3, "quantity")]


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (Kind.ORDERS, ORDER_HEADER + b"O-1,A," + b"9" * 5000 + b",pending\n"),
        (Kind.CONFIRMATIONS, CONFIRMATION_HEADER + b"O-1,A,100000000000000000000,2019-06-26T11:00:00Z\n"),
    ],
)
def test_an_order_or_confirmed_quantity_beyond_what_the_store_holds_is_a_problem(kind: Kind, data: bytes) -> None:
    """The same bound for every kind's quantities."""
    reader = read_orders if kind == Kind.ORDERS else read_confirmations
    found, problems = read(kind, reader, data)
    assert found == []
    assert where(problems) == [(2, "quantity" if kind == Kind.ORDERS else "confirmed_quantity")]


def test_a_large_but_plausible_quantity_is_accepted() -> None:
    """A million units is a number, not a problem."""
    found, problems = stock(b"sku,quantity\nA,1000000\n")
    assert found == [StockRow(2, "A", 1_000_000, None)]
    assert not problems


def test_a_bad_as_of_is_a_problem_quoting_it() -> None:
    """The fixture bad_timestamp.csv: 'yesterday' is not ISO 8601."""
    found, problems = stock((FIXTURES / "stock" / "bad_timestamp.csv").read_bytes())
    assert [r.sku for r in found] == ["3700000000011"]
    assert where(problems) == [(3, "as_of")]
    assert "'yesterday' is not an ISO 8601 timestamp" in problems[0].message


@pytest.mark.parametrize("text", ["2019-13-01T00:00:00Z", "2019-06-25T25:00", "25/06/2019", "2019-06-25T12:00+25:00"])
def test_an_impossible_timestamp_is_a_problem(text: str) -> None:
    """Month 13, hour 25, a day-first date, an offset beyond a day."""
    found, problems = stock(f"sku,quantity,as_of\nA,1,{text}\n".encode())
    assert found == []
    assert where(problems) == [(2, "as_of")]


def test_a_bad_as_of_repeated_is_a_problem_on_every_row() -> None:
    """The timestamp cache does not hide a repeated bad value."""
    found, problems = stock(b"sku,quantity,as_of\nA,1,soon\nB,2,soon\n")
    assert found == []
    assert where(problems) == [(2, "as_of"), (3, "as_of")]


def test_a_duplicate_sku_is_a_problem_naming_it() -> None:
    """The fixture bad_duplicate_sku.csv: the first occurrence is read, the second is a problem."""
    found, problems = stock((FIXTURES / "stock" / "bad_duplicate_sku.csv").read_bytes())
    assert [r.line for r in found] == [2, 3]
    assert where(problems) == [(4, "sku")]
    assert "3700000000011" in problems[0].message
    assert "more than once" in problems[0].message


@pytest.mark.parametrize(
    ("again", "line"),
    [
        pytest.param("S0099", 102, id="the-last-sku-of-a-batch-first-in-the-next"),
        pytest.param("S0050", 102, id="an-earlier-sku-first-in-an-ascending-batch"),
        pytest.param("S0000", 150, id="the-first-sku-of-the-file-inside-a-later-batch"),
    ],
)
def test_a_sku_repeated_in_a_later_batch_of_a_sorted_file_is_a_problem(again: str, line: int) -> None:
    """A file sorted by SKU checks each batch in bulk: a SKU of an earlier batch given again is still found,
    wherever it falls in the later batch."""
    skus = [f"S{i:04d}" for i in range(200)]
    skus.insert(line - 2, again)
    data = ("sku,quantity\n" + "".join(f"{sku},1\n" for sku in skus)).encode()
    table = open_table(Kind.STOCK, data)
    applied = [row[0] for batch in StockBatches(table, UTC, parse("2019-06-25T12:00:00Z"), size=100) for row in batch]
    assert [(p.line, p.column) for p in table.problems.listed] == [(line, "sku")]
    assert f"SKU {again} appears more than once" in table.problems.listed[0].message
    assert sorted(applied) == sorted(set(skus))


@pytest.mark.parametrize("keep_seen", [True, False])
def test_the_skus_of_a_sorted_file_are_all_seen_once_read_when_asked_for(keep_seen: bool) -> None:
    """A file sorted by SKU keeps its SKUs as lists while it is read: once every batch is given, `seen` holds
    them all when the caller keeps them (absent = "zero" needs them), and a repeat is found either way."""
    skus = [f"S{i:04d}" for i in range(450)] + ["S0007"] + [f"T{i:04d}" for i in range(49)]
    data = ("sku,quantity\n" + "".join(f"{sku},1\n" for sku in skus)).encode()
    table = open_table(Kind.STOCK, data)
    batches = StockBatches(table, UTC, parse("2019-06-25T12:00:00Z"), size=100, keep_seen=keep_seen)
    applied = [row[0] for batch in batches for row in batch]
    assert [(p.line, p.column) for p in table.problems.listed] == [(452, "sku")]
    assert len(applied) == 499
    if keep_seen:
        assert batches.seen == set(skus)


def test_a_padded_copy_of_a_sku_is_refused_for_its_padding_not_taken_as_the_same_sku() -> None:
    """'A' then ' A ': the second is not trimmed into a duplicate of the first, it is refused as padded."""
    _, problems = stock(b"sku,quantity\nA,1\n A ,2\n")
    assert [(p.line, p.column, p.message) for p in problems] == [(3, "sku", "has leading or trailing whitespace")]


def test_seen_collects_the_skus_read() -> None:
    """For snapshots that zero what they omit."""
    seen: set[str] = set()
    table = open_table(Kind.STOCK, b"sku,quantity\nA,1\nB,2\n")
    list(read_stock(table, UTC, seen))
    assert seen == {"A", "B"}


@pytest.mark.parametrize(
    ("sku", "message"),
    [("", "must not be empty"), ("X" * (MAX_ID_LENGTH + 1), "longer than"), ("A\x07B", "control characters")],
)
def test_a_sku_that_is_empty_too_long_or_has_control_characters_is_a_problem(sku: str, message: str) -> None:
    """Identifiers must be printable, non-empty and bounded."""
    found, problems = stock(f'sku,quantity\n"{sku}",1\n'.encode())
    assert found == []
    assert where(problems) == [(2, "sku")]
    assert message in problems[0].message


def test_a_sku_of_the_maximum_length_is_accepted() -> None:
    """The bound is inclusive."""
    found, problems = stock(f"sku,quantity\n{'X' * MAX_ID_LENGTH},1\n".encode())
    assert len(found) == 1
    assert not problems


def test_every_bad_cell_of_a_row_is_reported() -> None:
    """An empty SKU and a bad quantity on one row: two problems."""
    _, problems = stock(b"sku,quantity\n,x\n")
    assert where(problems) == [(2, "sku"), (2, "quantity")]


def test_a_timestamp_without_offset_is_read_in_the_partner_zone() -> None:
    """Europe/Paris: UTC+2 in summer, UTC+1 in winter."""
    found, _ = stock(b"sku,quantity,as_of\nA,1,2019-06-25T12:00:00\nB,1,2019-01-15T12:00:00\n", PARIS)
    assert [to_iso(r.as_of) for r in found] == ["2019-06-25T10:00:00Z", "2019-01-15T11:00:00Z"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-06-25T12:00:00Z", "2019-06-25T12:00:00Z"),
        ("2019-06-25T12:00:00+00:00", "2019-06-25T12:00:00Z"),
        ("2019-06-25T12:00:00+05:30", "2019-06-25T06:30:00Z"),
        ("2019-06-25T12:00:00-04:00", "2019-06-25T16:00:00Z"),
    ],
)
def test_a_timestamp_with_an_offset_keeps_it_whatever_the_zone(text: str, expected: str) -> None:
    """The file's own offset wins over the partner's zone."""
    found, problems = stock(f"sku,quantity,as_of\nA,1,{text}\n".encode(), PARIS)
    assert not problems
    assert to_iso(found[0].as_of) == expected


def test_the_same_naive_timestamp_repeated_keeps_the_zone() -> None:
    """The cache of parsed timestamps serves later rows with the same value."""
    found, _ = stock(b"sku,quantity,as_of\nA,1,2019-06-25T12:00\nB,2,2019-06-25T12:00\n", PARIS)
    assert [to_iso(r.as_of) for r in found] == ["2019-06-25T10:00:00Z"] * 2


def test_problem_rows_are_not_yielded_and_good_rows_are() -> None:
    """Mixed file: exactly the valid rows come out, each problem is listed."""
    data = b"sku,quantity,as_of\nA,1,\nB,x,\nC,2,never\nA,3,\nD,4,2019-06-25T12:00Z\nE\n"
    found, problems = stock(data)
    assert [(r.line, r.sku) for r in found] == [(2, "A"), (6, "D")]
    assert where(problems) == [(3, "quantity"), (4, "as_of"), (5, "sku"), (7, None)]


def test_a_stock_file_without_a_quantity_column_is_refused() -> None:
    """The fixture stock/bad_missing_column.csv."""
    with pytest.raises(Malformed, match="missing required column"):
        open_table(Kind.STOCK, (FIXTURES / "stock" / "bad_missing_column.csv").read_bytes())


def test_a_latin1_snapshot_is_read_when_latin1_is_configured() -> None:
    """The fixture bad_encoding.csv is fine as Latin-1."""
    found, problems = stock((FIXTURES / "stock" / "bad_encoding.csv").read_bytes(), encoding="latin-1")
    assert [r.sku for r in found] == ["3700000000011", "Café-Crème"]
    assert not problems


# orders


def test_valid_orders_yield_typed_rows() -> None:
    """The fixture orders/good.csv."""
    found, problems = orders((FIXTURES / "orders" / "good.csv").read_bytes())
    assert found == [
        OrderRow(2, "O-1001", OrderStatus.PENDING, RequestedLine("3700000000011", 2)),
        OrderRow(3, "O-1001", OrderStatus.PENDING, RequestedLine("3700000000028", 1)),
        OrderRow(4, "O-1002", OrderStatus.CONFIRMED, RequestedLine("3700000000011", 3)),
    ]
    assert not problems


def test_a_status_is_read_ignoring_case_and_space() -> None:
    """' Invoicing ' is invoicing."""
    found, problems = orders(ORDER_HEADER + b"O-1,A,1, Invoicing \n")
    assert found[0].status is OrderStatus.INVOICING
    assert not problems


def test_an_unknown_status_is_a_problem_listing_the_statuses() -> None:
    """The fixture bad_status_and_quantity.csv: 'shipped' and a quantity of 1.5."""
    found, problems = orders((FIXTURES / "orders" / "bad_status_and_quantity.csv").read_bytes())
    assert found == []
    assert where(problems) == [(2, "status"), (3, "quantity")]
    assert "'shipped'" in problems[0].message
    for status in OrderStatus:
        assert status.value in problems[0].message
    assert "'1.5'" in problems[1].message


def test_an_order_quantity_of_zero_is_refused_with_the_minimum() -> None:
    """An order line is at least one unit."""
    found, problems = orders(ORDER_HEADER + b"O-1,A,0,pending\nO-1,B,1,pending\n")
    assert [r.requested.sku for r in found] == ["B"]
    assert where(problems) == [(2, "quantity")]
    assert "at least 1" in problems[0].message


def test_a_negative_order_quantity_is_refused() -> None:
    """Minus one is not a quantity."""
    _, problems = orders(ORDER_HEADER + b"O-1,A,-1,pending\n")
    assert where(problems) == [(2, "quantity")]
    assert "negative" in problems[0].message


def test_an_empty_order_id_is_a_problem() -> None:
    """Every row names its order."""
    _, problems = orders(ORDER_HEADER + b",A,1,pending\n")
    assert where(problems) == [(2, "order_id")]


def test_every_bad_cell_of_an_order_row_is_reported() -> None:
    """Empty order, empty SKU, zero quantity, unknown status: four problems on one line."""
    _, problems = orders(ORDER_HEADER + b",,0,lost\n")
    assert where(problems) == [(2, "order_id"), (2, "sku"), (2, "quantity"), (2, "status")]


def test_assembly_and_collection_columns_are_optional() -> None:
    """Without them, rows carry None."""
    found, _ = orders(ORDER_HEADER + b"O-1,A,1,pending\n")
    assert (found[0].requested.assembly, found[0].requested.collection) == (None, None)


def test_assembly_and_collection_are_read_when_present() -> None:
    """Empty (or blank) cells are None; others are identifiers, taken as given."""
    data = CHANNEL_HEADER + b"O-1,A,1,pending,K1,C 1\nO-1,B,1,pending,,\nO-1,C,1,pending,  , \n"
    found, problems = orders(data)
    assert [(r.requested.assembly, r.requested.collection) for r in found] == [
        ("K1", "C 1"),
        (None, None),
        (None, None),
    ]
    assert not problems


def test_an_assembly_without_a_collection_is_a_problem() -> None:
    """A channel is an assembly and a collection: one without the other is refused."""
    found, problems = orders(b"order_id,sku,quantity,status,assembly\nO-1,A,1,pending,K1\n")
    assert found == []
    assert where(problems) == [(2, "collection")]
    assert "assembly needs a collection" in problems[0].message


def test_a_collection_without_an_assembly_is_a_problem() -> None:
    """A collection belongs to an assembly."""
    data = b"order_id,sku,quantity,status,assembly,collection\nO-1,A,1,pending,,C1\n"
    found, problems = orders(data)
    assert found == []
    assert where(problems) == [(2, "assembly")]
    assert "collection needs an assembly" in problems[0].message


def test_a_collection_column_without_an_assembly_column_is_a_problem_on_each_row() -> None:
    """No assembly column at all: every collection is orphaned."""
    found, problems = orders(b"order_id,sku,quantity,status,collection\nO-1,A,1,pending,C1\nO-1,B,1,pending,\n")
    assert [r.requested.sku for r in found] == ["B"]
    assert where(problems) == [(2, "assembly")]


def test_renamed_order_columns_are_honoured() -> None:
    """A partner's own names, matched ignoring case."""
    data = b"Commande;Article;Qte;Etat\nO-1;A;2;Confirmed\n"
    columns = {"order_id": "commande", "sku": "article", "quantity": "QTE", "status": "etat"}
    found, problems = orders(data, columns=columns)
    assert found == [OrderRow(2, "O-1", OrderStatus.CONFIRMED, RequestedLine("A", 2))]
    assert not problems


def test_an_orders_file_without_a_status_column_is_refused() -> None:
    """The fixture orders/bad_missing_column.csv."""
    with pytest.raises(Malformed, match="missing required column\\(s\\) status"):
        open_table(Kind.ORDERS, (FIXTURES / "orders" / "bad_missing_column.csv").read_bytes())


# confirmations


def test_a_valid_confirmation_yields_a_typed_row() -> None:
    """The fixture confirmations/good.csv."""
    found, problems = confirmations((FIXTURES / "confirmations" / "good.csv").read_bytes())
    assert found == [ConfirmationRow(2, "O-1001", "3700000000011", 2, parse("2019-06-26T11:00:00Z"))]
    assert not problems


def test_missing_confirmed_at_and_negative_quantity_are_problems() -> None:
    """The fixture confirmations/bad_rows.csv."""
    found, problems = confirmations((FIXTURES / "confirmations" / "bad_rows.csv").read_bytes())
    assert found == []
    assert where(problems) == [(2, "confirmed_at"), (3, "confirmed_quantity")]
    assert "must not be empty" in problems[0].message
    assert "negative" in problems[1].message


def test_a_confirmed_quantity_of_zero_is_accepted() -> None:
    """The partner may confirm none of a line."""
    found, problems = confirmations(CONFIRMATION_HEADER + b"O-1,A,0,2019-06-26T11:00:00Z\n")
    assert found[0].confirmed_quantity == 0
    assert not problems


def test_a_bad_confirmed_at_is_a_problem() -> None:
    """Not ISO 8601."""
    _, problems = confirmations(CONFIRMATION_HEADER + b"O-1,A,1,26/06/2019\n")
    assert where(problems) == [(2, "confirmed_at")]


def test_a_naive_confirmed_at_is_read_in_the_partner_zone() -> None:
    """Europe/Paris in June is UTC+2."""
    found, _ = confirmations(CONFIRMATION_HEADER + b"O-1,A,1,2019-06-26T13:00:00\n", PARIS)
    assert to_iso(found[0].confirmed_at) == "2019-06-26T11:00:00Z"


def test_a_confirmations_file_with_an_undecodable_byte_is_refused_naming_the_line() -> None:
    """Either at the header or while reading, the line of the byte is given."""
    data = CONFIRMATION_HEADER + b"O-1,A,1,2019-06-26T11:00:00Z\nO-\xe9,B,1,2019-06-26T11:00:00Z\n"
    try:
        table = open_table(Kind.CONFIRMATIONS, data)
    except Malformed as exc:
        problems = [exc.problem]
    else:
        list(read_confirmations(table, UTC))
        problems = table.problems.listed
    assert [p.line for p in problems] == [3]


# collections


def test_a_collections_row_reads_instants_in_the_partners_zone_and_empty_cells_as_no_date() -> None:
    """A time without an offset is Paris time; a pickup_on given as an instant counts by its date in that zone."""
    data = COLLECTION_HEADER + b"K1,C1,2026-12-04T18:00,,2026-12-11T23:30:00-05:00\nK1,C2,,2026-12-09T18:00Z,\n"
    found, problems = read(Kind.COLLECTIONS, read_collections, data, ZoneInfo("Europe/Paris"))
    assert problems == []
    assert [(r.line, r.collection, to_iso(r.opens_at), to_iso(r.closes_at), str(r.pickup_on)) for r in found] == [
        (2, "C1", "2026-12-04T17:00:00Z", None, "2026-12-12"),
        (3, "C2", None, "2026-12-09T18:00:00Z", "None"),
    ]


def test_a_collection_given_twice_in_one_file_is_a_problem_naming_the_first_line() -> None:
    """Which row is the last word cannot be known: the file is refused rather than one of them guessed."""
    found, problems = read(Kind.COLLECTIONS, read_collections, COLLECTION_HEADER + b"K1,C1,,,\nK1,C1,,,2026-12-11\n")
    assert [r.line for r in found] == [2]
    assert [(p.line, p.column) for p in problems] == [(3, "collection")]
    assert "first at line 2" in problems[0].message
