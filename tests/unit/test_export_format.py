"""The order export CSV: its header, one row per order line, the delimiter, quoting, and no cell a spreadsheet runs."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.atp import SchedulePoint
from gateway.domain.messages import MessageKind, OutboxState
from gateway.formats.export import ATS_COLUMNS, EXPORT_COLUMNS, export_csv, message_csv, safe_cell
from gateway.store.records import OutboxRecord

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def line(
    sku: Any = "S1",
    quantity: Any = 2,
    confirmed_quantity: Any = 2,
    assembly: Any = None,
    collection: Any = None,
) -> dict[str, Any]:
    return {
        "sku": sku,
        "quantity": quantity,
        "confirmed_quantity": confirmed_quantity,
        "assembly": assembly,
        "collection": collection,
    }


def payload(
    order_id: Any = "O1",
    lines: list[dict[str, Any]] | None = None,
    status: str = "invoicing",
    updated_at: str = "2026-01-01T00:00:00Z",
) -> str:
    """An order export body as the engine queues it."""
    body = {
        "order_id": order_id,
        "status": status,
        "updated_at": updated_at,
        "lines": [line()] if lines is None else lines,
    }
    return json.dumps(body, sort_keys=True)


def parse(data: bytes, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=delimiter))


# safe_cell


@pytest.mark.parametrize("first", DANGEROUS)
def test_text_starting_like_a_formula_gets_a_leading_quote(first: str) -> None:
    """=, +, -, @, tab and carriage return at the start: the cell is prefixed with '."""
    assert safe_cell(first + "SUM(A1:A9)") == "'" + first + "SUM(A1:A9)"
    assert safe_cell(first) == "'" + first


@pytest.mark.parametrize("text", ["O-1", "ORDER=1", "a+b", "mail@example.com", "'quoted", " =1", "\n=1", "", "Café"])
def test_safe_text_is_kept_as_it_is(text: str) -> None:
    """A dangerous character anywhere but first, or any other first character, changes nothing."""
    assert safe_cell(text) == text


@pytest.mark.parametrize(
    ("value", "text"), [(3, "3"), (0, "0"), (-5, "-5"), (-1.5, "-1.5"), (2.0, "2.0"), (True, "True")]
)
def test_numbers_are_written_as_numbers(value: object, text: str) -> None:
    """A number is not text a spreadsheet would run: a negative number keeps its sign, with no leading quote."""
    assert safe_cell(value) == text


def test_none_is_an_empty_cell() -> None:
    """A missing value is an empty cell, not 'None'."""
    assert safe_cell(None) == ""


def test_a_negative_number_given_as_text_is_quoted() -> None:
    """Only text is neutralised: '-5' as a string is treated like any text starting with '-'."""
    assert safe_cell("-5") == "'-5"


# export_csv


def test_the_header_is_exactly_the_export_columns() -> None:
    """Even with no order, the file has its header row, in the documented order."""
    assert EXPORT_COLUMNS == (
        "order_id",
        "status",
        "updated_at",
        "sku",
        "quantity",
        "confirmed_quantity",
        "assembly",
        "collection",
    )
    assert export_csv([]) == (",".join(EXPORT_COLUMNS) + "\r\n").encode("utf-8")


def test_one_row_per_order_line() -> None:
    """Each line of each order is a row, with its order's fields repeated; None cells are empty."""
    data = export_csv(
        [
            payload("O1", [line("S1", 2, 1), line("S2", 3, None, "A1", "C1")]),
            payload("O2", [line("S3", 1, 0)], updated_at="2026-01-02T00:00:00Z"),
        ]
    )
    assert parse(data) == [
        list(EXPORT_COLUMNS),
        ["O1", "invoicing", "2026-01-01T00:00:00Z", "S1", "2", "1", "", ""],
        ["O1", "invoicing", "2026-01-01T00:00:00Z", "S2", "3", "", "A1", "C1"],
        ["O2", "invoicing", "2026-01-02T00:00:00Z", "S3", "1", "0", "", ""],
    ]


def test_an_order_without_lines_gives_no_row() -> None:
    """No line, no row; an empty payload ('{}', as for a message without one) neither."""
    assert parse(export_csv([payload("O1", []), "{}"])) == [list(EXPORT_COLUMNS)]


def test_every_line_ends_with_crlf_and_the_bytes_are_utf8() -> None:
    """UTF-8 bytes, `\\r\\n` after every row, the last one included."""
    data = export_csv([payload("Café-ü", [line("Größe-42")])])
    assert isinstance(data, bytes)
    assert data.endswith(b"\r\n")
    rows = data.split(b"\r\n")
    assert rows[-1] == b""
    assert len(rows) == 3
    assert "Café-ü".encode() in rows[1]
    assert "Größe-42".encode() in rows[1]
    assert b"\n" not in data.replace(b"\r\n", b"")


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_the_delimiter_separates_every_cell(delimiter: str) -> None:
    """The chosen delimiter in the header and the rows; the file reads back with it."""
    data = export_csv([payload("O1", [line("S1", 2, 2, "A", "C")])], delimiter)
    text = data.decode("utf-8")
    assert text.startswith(delimiter.join(EXPORT_COLUMNS) + "\r\n")
    assert parse(data, delimiter) == [
        list(EXPORT_COLUMNS),
        ["O1", "invoicing", "2026-01-01T00:00:00Z", "S1", "2", "2", "A", "C"],
    ]


@pytest.mark.parametrize(
    ("delimiter", "order_id", "written"),
    [
        (",", "a,b", '"a,b"'),
        (";", "a;b", '"a;b"'),
        (";", "a,b", "a,b"),
        ("\t", "a\tb", '"a\tb"'),
        ("\t", "a;b", "a;b"),
        (",", 'say "hi"', '"say ""hi"""'),
        (",", "two\nlines", '"two\nlines"'),
        (",", "two\r\nlines", '"two\r\nlines"'),
    ],
)
def test_cells_holding_the_delimiter_quotes_or_newlines_are_quoted(delimiter: str, order_id: str, written: str) -> None:
    """Quoted only when needed, quotes doubled; the cell reads back unchanged."""
    data = export_csv([payload(order_id)], delimiter)
    second = data.decode("utf-8").split("\r\n", 1)[1]
    assert second.startswith(written + delimiter)
    assert parse(data, delimiter)[1][0] == order_id


def test_formula_like_cells_are_neutralised_in_the_file() -> None:
    """A dangerous order id or SKU is written with a leading ', and the quoting still reads back."""
    data = export_csv([payload('=HYPERLINK("http://x","y")', [line("+1;2", -1, None, "@a", "-b")])], ";")
    assert parse(data, ";")[1] == [
        '\'=HYPERLINK("http://x","y")',
        "invoicing",
        "2026-01-01T00:00:00Z",
        "'+1;2",
        "-1",
        "",
        "'@a",
        "'-b",
    ]


def test_a_negative_quantity_is_written_as_a_plain_number() -> None:
    """Quantities are JSON numbers: a negative one is the number, not quoted as a formula."""
    data = export_csv([payload("O1", [line("S", -3, -2)])])
    assert parse(data)[1][4:6] == ["-3", "-2"]


def test_round_trip_of_several_awkward_cells() -> None:
    """Whatever safe text goes in comes back cell for cell through csv.reader."""
    awkward = ['a"b', "a,b", "a;b", "a\tb", "a\nb", "a\r\nb", "ü€😀", " padded ", "'", ""]
    payloads = [payload(text, [line(text[::-1])]) for text in awkward]
    for delimiter in (",", ";", "\t"):
        rows = parse(export_csv(payloads, delimiter), delimiter)
        assert [(row[0], row[3]) for row in rows[1:]] == [(text, text[::-1]) for text in awkward]


_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    orders=st.lists(st.tuples(_TEXT, st.lists(_TEXT, min_size=1, max_size=3)), max_size=5),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_no_cell_of_the_file_starts_like_a_formula(orders: list[tuple[str, list[str]]], delimiter: str) -> None:
    """For any order ids and SKUs, no parsed cell starts with a dangerous character, and the rest reads back."""
    payloads = [payload(order_id, [line(sku) for sku in skus]) for order_id, skus in orders]
    rows = parse(export_csv(payloads, delimiter), delimiter)
    assert rows[0] == list(EXPORT_COLUMNS)
    assert len(rows) == 1 + sum(len(skus) for _, skus in orders)
    for row in rows[1:]:
        assert len(row) == len(EXPORT_COLUMNS)
        for cell in row:
            assert not cell.startswith(DANGEROUS), (row, cell)
    expected = [(safe_cell(order_id), safe_cell(sku)) for order_id, skus in orders for sku in skus]
    assert [(row[0], row[3]) for row in rows[1:]] == expected


def test_an_ats_file_carries_no_schedule_a_sku_with_dated_supply_is_written_as_any() -> None:
    """ATS files stay as they are: a message with a schedule gives the very bytes of one without."""
    plain = OutboxRecord(1, "acme", MessageKind.ATS, "COAT", 0, 0, None, None, 0, OutboxState.PENDING, 0)
    dated = plain._replace(schedule=(SchedulePoint(date(2026, 12, 15), 17),))
    assert message_csv(MessageKind.ATS, [dated]) == message_csv(MessageKind.ATS, [plain])
    assert message_csv(MessageKind.ATS, [dated]).decode().splitlines()[0] == ",".join(ATS_COLUMNS)
