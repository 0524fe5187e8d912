"""API pages checked into rows: the envelope, stock items and acknowledgement items; every problem names its item.

Also the two small rules around a page: when to ask for the next one (`_more`) and how long a Retry-After
header says to wait.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain.instant import parse
from gateway.domain.status import OrderStatus
from gateway.formats.pages import (
    MAX_CURSOR_LENGTH,
    Acknowledgements,
    Page,
    StatusItem,
    acknowledgement_items,
    decode,
    envelope,
    stock_items,
)
from gateway.formats.problems import MAX_LISTED, Problem, Problems
from gateway.formats.rows import MAX_ID_LENGTH, MAX_QUANTITY_DIGITS, ConfirmationRow, StockRow
from gateway.service.feeds import _more
from gateway.transport.http import retry_after_seconds

PARIS = ZoneInfo("Europe/Paris")

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def page(items: list[Any], next_cursor: str | None = None, has_more: bool | None = None) -> Page:
    return Page(items, next_cursor, has_more)


def stock(items: list[Any], zone: Any = UTC) -> tuple[list[StockRow], Problems]:
    problems = Problems()
    return stock_items(page(items), zone, problems), problems


def acks(items: list[Any], zone: Any = UTC) -> tuple[Acknowledgements, Problems]:
    problems = Problems()
    return acknowledgement_items(page(items), zone, problems), problems


def found(problems: Problems) -> list[tuple[int | None, str | None, str]]:
    """(item, field, message) of each listed problem; every one is labelled by item."""
    assert all(problem.unit == "item" for problem in problems.listed)
    return [(problem.line, problem.column, problem.message) for problem in problems.listed]


def read_envelope(document: Any) -> tuple[Page | None, Problems]:
    problems = Problems()
    return envelope(document, problems), problems


# decode


def test_decode_returns_the_json_document() -> None:
    """A JSON body is returned as data, with no problem."""
    problems = Problems()
    assert decode(b'{"items": [], "next_cursor": "c"}', problems) == {"items": [], "next_cursor": "c"}
    assert not problems


def test_decode_says_when_the_body_is_not_json() -> None:
    """A syntax error is one page-level problem, with its position."""
    problems = Problems()
    assert decode(b'{"items": [', problems) is None
    [(item, field, message)] = found(problems)
    assert (item, field) == (None, None)
    assert message.startswith("the page is not JSON: ")
    assert "line 1 column" in message
    assert problems.listed[0].describe().startswith("page: the page is not JSON")


def test_decode_says_when_the_body_is_not_utf8() -> None:
    """Bytes that are not UTF-8 are said to be so, not reported as a JSON syntax error."""
    problems = Problems()
    assert decode(b'{"items": ["\xff\xfe\xfa"]}', problems) is None
    assert found(problems) == [(None, None, "the page is not UTF-8 text")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"items": []}'.encode("utf-16"), "the page is not UTF-8 text"),
        ('{"items": []}'.encode("utf-32"), "the page is not UTF-8 text"),
        ('{"items": []}'.encode("utf-16-be"), "the page is not JSON: "),  # NUL bytes are UTF-8, but not JSON
        (b'{"items": [{"sku": "A\xed\xa0\x80", "quantity": 1}]}', "the page is not UTF-8 text"),  # a surrogate
    ],
)
def test_decode_takes_utf8_alone(body: bytes, message: str) -> None:
    """UTF-16, UTF-32 and encoded surrogates are refused, though Python's JSON reader would take them."""
    problems = Problems()
    assert decode(body, problems) is None
    [(item, field, said)] = found(problems)
    assert (item, field) == (None, None)
    assert said.startswith(message)


def test_decode_lets_a_utf8_byte_order_mark_pass() -> None:
    """The partner API guide tolerates a byte-order mark before the JSON."""
    problems = Problems()
    assert decode(b'\xef\xbb\xbf{"items": []}', problems) == {"items": []}
    assert not problems


def test_a_status_item_with_a_padded_order_id_is_refused_not_trimmed() -> None:
    """' O2 ' is not order O2: the item is a problem on its order_id."""
    found_acks, problems = acks([{"order_id": "O1", "status": "closed"}, {"order_id": " O2 ", "status": "closed"}])
    assert found_acks.statuses == [StatusItem(1, "O1", OrderStatus.CLOSED)]
    assert found(problems) == [(2, "order_id", "has leading or trailing whitespace")]


@pytest.mark.parametrize(
    ("text", "shown"),
    [("true", "true"), ('"5"', "'5'"), ("5.0", "5.0"), ("1e2", "100.0"), ("-0.0", "-0.0"), ("null", "null")],
)
def test_a_quantity_in_a_page_is_a_json_integer_and_nothing_else(text: str, shown: str) -> None:
    """As sent over the wire: true, "5", 5.0 and 1e2 are not quantities, though each may stand for one."""
    problems = Problems()
    body = f'{{"items": [{{"sku": "A", "quantity": {text}}}, {{"sku": "B", "quantity": 5}}]}}'.encode()
    read = envelope(decode(body, problems), problems)
    assert read is not None
    rows = stock_items(read, UTC, problems)
    assert rows == [StockRow(2, "B", 5, None)]
    assert found(problems) == [(1, "quantity", f"must be a whole number of at least 0, got {shown}")]


def test_decode_of_an_empty_body_is_a_problem() -> None:
    """An empty answer is not a page."""
    problems = Problems()
    assert decode(b"", problems) is None
    assert len(problems) == 1


def test_decode_of_a_huge_number_is_a_problem_not_a_crash() -> None:
    """A number too long for Python's int conversion limit is refused as a page problem."""
    problems = Problems()
    assert decode(b'{"items": [{"sku": "A", "quantity": ' + b"9" * 5000 + b"}]}", problems) is None
    assert len(problems) == 1


def test_decode_of_a_deeply_nested_body_is_a_problem_not_a_crash() -> None:
    """A page nested deeper than the decoder can follow is refused as a page problem."""
    problems = Problems()
    assert decode(b"[" * 100_000, problems) is None
    assert len(problems) == 1


# envelope


def test_a_valid_envelope_gives_its_items_cursor_and_has_more() -> None:
    """`items`, `next_cursor` and `has_more` as sent; the last two are optional."""
    assert read_envelope({"items": [1], "next_cursor": "c2", "has_more": True})[0] == Page([1], "c2", True)
    assert read_envelope({"items": [], "next_cursor": None, "has_more": False})[0] == Page([], None, False)
    full, problems = read_envelope({"items": []})
    assert full == Page([], None, None)
    assert not problems


@pytest.mark.parametrize(
    ("document", "shown"),
    [([], "a list"), ("page", "'page'"), (None, "null"), (3, "3"), (True, "true")],
)
def test_a_page_that_is_not_an_object_is_refused(document: Any, shown: str) -> None:
    """Anything but a JSON object is one page-level problem saying what came instead."""
    result, problems = read_envelope(document)
    assert result is None
    assert found(problems) == [
        (None, None, f'a page is a JSON object with "items" and "next_cursor", got {shown}'),
    ]


@pytest.mark.parametrize(
    ("items", "shown"),
    [({}, "an object"), ("x", "'x'"), (None, "null"), (5, "5")],
)
def test_items_must_be_a_list(items: Any, shown: str) -> None:
    """`items` is a list; anything else (or nothing) is a problem on the field."""
    result, problems = read_envelope({"items": items})
    assert result is None
    assert found(problems) == [(None, "items", f'"items" must be a list, got {shown}')]


def test_missing_items_are_refused() -> None:
    """A page without `items` says so."""
    result, problems = read_envelope({"next_cursor": "c"})
    assert result is None
    assert found(problems) == [(None, "items", '"items" must be a list, got null')]


@pytest.mark.parametrize("cursor", ["", "x" * (MAX_CURSOR_LENGTH + 1), 5, True, ["c"], {"c": 1}])
def test_next_cursor_must_be_a_short_non_empty_string(cursor: Any) -> None:
    """Empty, too long or not a string: a problem on next_cursor."""
    result, problems = read_envelope({"items": [], "next_cursor": cursor})
    assert result is None
    assert found(problems) == [
        (None, "next_cursor", f"must be a non-empty string of at most {MAX_CURSOR_LENGTH} characters or null")
    ]


def test_a_cursor_of_the_longest_length_is_accepted() -> None:
    """Exactly MAX_CURSOR_LENGTH characters is fine."""
    result, problems = read_envelope({"items": [], "next_cursor": "x" * MAX_CURSOR_LENGTH})
    assert result is not None
    assert not problems


@pytest.mark.parametrize(("has_more", "shown"), [("yes", "'yes'"), (1, "1"), (0, "0"), ([], "a list")])
def test_has_more_must_be_a_bool(has_more: Any, shown: str) -> None:
    """`has_more` is true, false or absent/null; 1 and 0 are not booleans."""
    result, problems = read_envelope({"items": [], "has_more": has_more})
    assert result is None
    assert found(problems) == [(None, "has_more", f"must be true or false, got {shown}")]


def test_every_envelope_problem_is_listed() -> None:
    """Three wrong fields: three problems, in field order."""
    result, problems = read_envelope({"items": 1, "next_cursor": "", "has_more": "y"})
    assert result is None
    assert [field for _, field, _ in found(problems)] == ["items", "next_cursor", "has_more"]


def test_page_level_problems_describe_the_page() -> None:
    """Without an item, a problem is the page's: 'page, field F: ...' and item None in its data."""
    _, problems = read_envelope({"items": [], "has_more": "y"})
    [problem] = problems.listed
    assert problem.describe() == "page, field has_more: must be true or false, got 'y'"
    assert problem.as_dict() == {"item": None, "field": "has_more", "message": "must be true or false, got 'y'"}


# stock items


def test_valid_stock_items_become_rows_in_page_order() -> None:
    """sku, quantity and as_of; the row's line is the item's position from 1; as_of absent or null is None."""
    rows, problems = stock(
        [
            {"sku": "A", "quantity": 3, "as_of": "2026-01-01T00:00:00Z"},
            {"sku": "B", "quantity": 0},
            {"sku": "C", "quantity": 10**MAX_QUANTITY_DIGITS - 1, "as_of": None},
            {"sku": "D D", "quantity": 1, "as_of": ""},
        ]
    )
    assert not problems
    assert rows == [
        StockRow(1, "A", 3, parse("2026-01-01T00:00:00Z")),
        StockRow(2, "B", 0, None),
        StockRow(3, "C", 10**MAX_QUANTITY_DIGITS - 1, None),
        StockRow(4, "D D", 1, None),
    ]


def test_a_timestamp_without_offset_is_read_in_the_given_zone() -> None:
    """Noon in Paris in July is 10:00 UTC; with an offset, the offset wins."""
    rows, problems = stock(
        [
            {"sku": "A", "quantity": 1, "as_of": "2026-07-01T12:00:00"},
            {"sku": "B", "quantity": 1, "as_of": "2026-07-01T12:00:00+00:00"},
        ],
        PARIS,
    )
    assert not problems
    assert [row.as_of for row in rows] == [parse("2026-07-01T10:00:00Z"), parse("2026-07-01T12:00:00Z")]


@pytest.mark.parametrize(
    ("sku", "message"),
    [
        ("", "must not be empty"),
        ("   ", "has leading or trailing whitespace"),
        (" A", "has leading or trailing whitespace"),
        ("A\u00a0", "has leading or trailing whitespace"),
        ("x" * (MAX_ID_LENGTH + 1), f"longer than {MAX_ID_LENGTH} characters"),
        ("a\x00b", "contains control characters"),
        ("a\tb", "contains control characters"),
        ("a\x9bb", "contains control characters"),
        ("a\u2028b", "contains control characters"),
        ("a\ud800b", "contains a lone surrogate (\\ud800 to \\udfff), which is not text"),
        (5, "must be a string, got 5"),
        (None, "must be a string, got null"),
        (["A"], "must be a string, got a list"),
        ({"A": 1}, "must be a string, got an object"),
    ],
)
def test_bad_skus_are_problems_on_the_item(sku: Any, message: str) -> None:
    """Each SKU rule of the flat files, with the flat files' message, on the item's position and field sku."""
    rows, problems = stock([{"sku": "OK", "quantity": 1}, {"sku": sku, "quantity": 1}])
    assert rows == [StockRow(1, "OK", 1, None)]
    assert found(problems) == [(2, "sku", message)]


def test_a_sku_of_the_longest_length_is_accepted() -> None:
    """Exactly MAX_ID_LENGTH characters is fine."""
    rows, problems = stock([{"sku": "x" * MAX_ID_LENGTH, "quantity": 1}])
    assert not problems
    assert rows[0].sku == "x" * MAX_ID_LENGTH


def test_a_missing_sku_is_a_problem() -> None:
    """No `sku` key at all reads as null."""
    rows, problems = stock([{"quantity": 1}])
    assert rows == []
    assert found(problems) == [(1, "sku", "must be a string, got null")]


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (-1, "must be a whole number of at least 0, got a negative number"),
        (True, "must be a whole number of at least 0, got true"),
        (False, "must be a whole number of at least 0, got false"),
        (1.0, "must be a whole number of at least 0, got 1.0"),
        (2.5, "must be a whole number of at least 0, got 2.5"),
        ("3", "must be a whole number of at least 0, got '3'"),
        (None, "must be a whole number of at least 0, got null"),
        (10**MAX_QUANTITY_DIGITS, f"must have at most {MAX_QUANTITY_DIGITS} digits"),
    ],
)
def test_bad_quantities_are_problems_on_the_item(quantity: Any, message: str) -> None:
    """A quantity is a JSON integer (not a bool, a float or a string) from 0 to twelve digits."""
    rows, problems = stock([{"sku": "A", "quantity": quantity}])
    assert rows == []
    assert found(problems) == [(1, "quantity", message)]


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("yesterday", "'yesterday' is not an ISO 8601 timestamp"),
        ("2026-13-01T00:00:00Z", "'2026-13-01T00:00:00Z' is not an ISO 8601 timestamp"),
        (1767225600, "must be a string, got 1767225600"),
        (True, "must be a string, got true"),
    ],
)
def test_bad_timestamps_are_problems_on_the_item(as_of: Any, message: str) -> None:
    """as_of, when given, is an ISO 8601 text."""
    _, problems = stock([{"sku": "A", "quantity": 1, "as_of": as_of}])
    assert found(problems) == [(1, "as_of", message)]


def test_all_problems_of_one_item_are_listed() -> None:
    """A wrong sku, quantity and as_of on one item: three problems, field by field."""
    _, problems = stock([{"sku": "", "quantity": -1, "as_of": "nope"}])
    assert [(item, field) for item, field, _ in found(problems)] == [(1, "sku"), (1, "quantity"), (1, "as_of")]


@pytest.mark.parametrize(("item", "shown"), [(1, "1"), ("A", "'A'"), (None, "null"), ([], "a list")])
def test_an_item_that_is_not_an_object_is_refused(item: Any, shown: str) -> None:
    """Each item is a JSON object; anything else is a problem on its position, with no field."""
    rows, problems = stock([{"sku": "A", "quantity": 1}, item])
    assert rows == [StockRow(1, "A", 1, None)]
    assert found(problems) == [(2, None, f"an item is a JSON object, got {shown}")]


def test_a_sku_given_twice_names_the_first_item() -> None:
    """The second (and any later) item of one SKU is a problem pointing back at the first; a padded copy is
    refused for its padding, never trimmed into the same SKU."""
    rows, problems = stock(
        [
            {"sku": "A", "quantity": 1},
            {"sku": "B", "quantity": 2},
            {"sku": "A", "quantity": 3},
            {"sku": " A ", "quantity": 4},
            {"sku": "A", "quantity": 5},
        ]
    )
    assert rows == [StockRow(1, "A", 1, None), StockRow(2, "B", 2, None)]
    assert found(problems) == [
        (3, "sku", "SKU A is given again (first at item 1)"),
        (4, "sku", "has leading or trailing whitespace"),
        (5, "sku", "SKU A is given again (first at item 1)"),
    ]


def test_item_problems_describe_the_item_and_field() -> None:
    """'item N, field F: ...' in words, item and field in data: never 'line' or 'column'."""
    _, problems = stock([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": -4}])
    [problem] = problems.listed
    assert problem == Problem(2, problem.message, "quantity", unit="item")
    assert problem.describe() == "item 2, field quantity: must be a whole number of at least 0, got a negative number"
    assert problem.as_dict() == {
        "item": 2,
        "field": "quantity",
        "message": "must be a whole number of at least 0, got a negative number",
    }


def test_an_item_problem_without_a_field_describes_the_item() -> None:
    """A problem with the item as a whole: 'item N: ...'."""
    _, problems = stock([7])
    [problem] = problems.listed
    assert problem.describe() == "item 1: an item is a JSON object, got 7"
    assert problem.as_dict() == {"item": 1, "field": None, "message": "an item is a JSON object, got 7"}


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"sku": "", "quantity": 1}, id="cell-check"),  # added by the flat file checks, re-labelled
        pytest.param({"sku": 1, "quantity": 1}, id="type-check"),  # added by the page checks
    ],
)
def test_at_most_max_listed_problems_are_listed_then_counted(bad: dict[str, Any]) -> None:
    """Past MAX_LISTED problems, the rest are counted, not listed; the listed ones stay labelled by item."""
    extra = 250
    rows, problems = stock([dict(bad) for _ in range(MAX_LISTED + extra)])
    assert rows == []
    assert len(problems) == MAX_LISTED + extra
    assert len(problems.listed) == MAX_LISTED
    assert problems.unlisted == extra
    listed = found(problems)
    assert [item for item, _, _ in listed] == list(range(1, MAX_LISTED + 1))
    assert {field for _, field, _ in listed} == {"sku"}


def test_the_cap_holds_across_item_kinds_of_problem() -> None:
    """Items with two problems each: the count is exact, the list stops at MAX_LISTED."""
    count = MAX_LISTED // 2 + 10
    _, problems = stock([{"sku": "", "quantity": -1} for _ in range(count)])
    assert len(problems) == 2 * count
    assert len(problems.listed) == MAX_LISTED
    assert problems.unlisted == 2 * count - MAX_LISTED
    assert all(problem.unit == "item" for problem in problems.listed)


# acknowledgement items


def test_a_status_item_moves_an_order() -> None:
    """{order_id, status}: a status move, case and spaces in the status ignored."""
    found_acks, problems = acks([{"order_id": "O1", "status": "closed"}, {"order_id": "O2", "status": " Cancelled "}])
    assert not problems
    assert found_acks.statuses == [
        StatusItem(1, "O1", OrderStatus.CLOSED),
        StatusItem(2, "O2", OrderStatus.CANCELLED),
    ]
    assert found_acks.confirmations == []


def test_an_unknown_status_is_a_problem_naming_the_known_ones() -> None:
    """The flat files' message, on the item and field status."""
    found_acks, problems = acks([{"order_id": "O1", "status": "shipped"}])
    assert found_acks.statuses == []
    [(item, field, message)] = found(problems)
    assert (item, field) == (1, "status")
    assert message.startswith("unknown status 'shipped' (expected one of pending, confirmed")


@pytest.mark.parametrize(("status", "shown"), [(3, "3"), (None, "null"), (True, "true"), (["closed"], "a list")])
def test_a_status_that_is_not_text_is_a_problem(status: Any, shown: str) -> None:
    """`status` is a string."""
    _, problems = acks([{"order_id": "O1", "status": status}])
    assert found(problems) == [(1, "status", f"must be a string, got {shown}")]


def test_a_confirmation_item_confirms_a_line() -> None:
    """{order_id, sku, confirmed_quantity, confirmed_at}; a timestamp without offset is read in the zone."""
    found_acks, problems = acks(
        [
            {"order_id": "O1", "sku": "S1", "confirmed_quantity": 2, "confirmed_at": "2026-01-15T10:00:00"},
            {"order_id": "O1", "sku": "S2", "confirmed_quantity": 0, "confirmed_at": "2026-01-15T10:00:00Z"},
        ],
        PARIS,
    )
    assert not problems
    assert found_acks.statuses == []
    assert found_acks.confirmations == [
        ConfirmationRow(1, "O1", "S1", 2, parse("2026-01-15T09:00:00Z")),
        ConfirmationRow(2, "O1", "S2", 0, parse("2026-01-15T10:00:00Z")),
    ]


def test_statuses_and_confirmations_keep_their_positions() -> None:
    """A mixed page: each kept with its item's position."""
    found_acks, problems = acks(
        [
            {"order_id": "O1", "sku": "S", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T00:00:00Z"},
            {"order_id": "O1", "status": "closed"},
            {"order_id": "O2", "sku": "S", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T00:00:00Z"},
        ]
    )
    assert not problems
    assert [row.line for row in found_acks.confirmations] == [1, 3]
    assert [row.line for row in found_acks.statuses] == [2]


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(
            {
                "order_id": "O1",
                "status": "closed",
                "sku": "S",
                "confirmed_quantity": 1,
                "confirmed_at": "2026-01-01T00:00:00Z",
            },
            id="both",
        ),
        pytest.param({"order_id": "O1", "status": "closed", "confirmed_quantity": 1}, id="status-and-quantity"),
        pytest.param({"order_id": "O1"}, id="neither"),
        pytest.param({"order_id": "O1", "sku": "S", "confirmed_at": "2026-01-01T00:00:00Z"}, id="no-quantity"),
    ],
)
def test_an_item_with_both_shapes_or_neither_is_one_problem(item: dict[str, Any]) -> None:
    """Neither a status move nor a confirmation (or both at once): one problem on the item, no field."""
    found_acks, problems = acks([item])
    assert (found_acks.statuses, found_acks.confirmations) == ([], [])
    [(position, field, message)] = found(problems)
    assert (position, field) == (1, None)
    assert message.startswith('an acknowledgement has either "status"')


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"order_id": None}, "order_id", "must be a string, got null"),
        ({"order_id": 12}, "order_id", "must be a string, got 12"),
        ({"order_id": ""}, "order_id", "must not be empty"),
        ({"sku": 5}, "sku", "must be a string, got 5"),
        ({"sku": "a\nb"}, "sku", "contains control characters"),
        ({"order_id": "O1 "}, "order_id", "has leading or trailing whitespace"),
        ({"sku": "\u2003A"}, "sku", "has leading or trailing whitespace"),
        ({"confirmed_quantity": True}, "confirmed_quantity", "must be a whole number of at least 0, got true"),
        ({"confirmed_quantity": "2"}, "confirmed_quantity", "must be a whole number of at least 0, got '2'"),
        ({"confirmed_quantity": 1.5}, "confirmed_quantity", "must be a whole number of at least 0, got 1.5"),
        (
            {"confirmed_quantity": -2},
            "confirmed_quantity",
            "must be a whole number of at least 0, got a negative number",
        ),
        ({"confirmed_at": None}, "confirmed_at", "must be a string, got null"),
        ({"confirmed_at": ""}, "confirmed_at", "must not be empty"),
        ({"confirmed_at": 0}, "confirmed_at", "must be a string, got 0"),
        ({"confirmed_at": "soon"}, "confirmed_at", "'soon' is not an ISO 8601 timestamp"),
    ],
)
def test_confirmation_fields_are_checked(change: dict[str, Any], field: str, message: str) -> None:
    """Each field of a confirmation item has its type and its flat file rule; confirmed_at is required."""
    item = {"order_id": "O1", "sku": "S", "confirmed_quantity": 1, "confirmed_at": "2026-01-01T00:00:00Z"} | change
    found_acks, problems = acks([{"order_id": "O0", "status": "closed"}, item])
    assert found_acks.confirmations == []
    assert found_acks.statuses == [StatusItem(1, "O0", OrderStatus.CLOSED)]
    assert found(problems) == [(2, field, message)]


def test_a_missing_confirmed_at_is_a_problem() -> None:
    """A confirmation without its time is refused."""
    found_acks, problems = acks([{"order_id": "O1", "sku": "S", "confirmed_quantity": 1}])
    assert found_acks.confirmations == []
    assert found(problems) == [(1, "confirmed_at", "must be a string, got null")]


def test_a_status_item_without_order_id_is_a_problem() -> None:
    """The order a move applies to is required."""
    found_acks, problems = acks([{"status": "closed"}])
    assert found_acks.statuses == []
    assert found(problems) == [(1, "order_id", "must be a string, got null")]


def test_acknowledgement_items_that_are_not_objects_are_refused() -> None:
    """As for stock pages."""
    _, problems = acks(["closed"])
    assert found(problems) == [(1, None, "an item is a JSON object, got 'closed'")]


# properties

_SKU_CHARACTERS = st.characters(codec="utf-8").filter(lambda c: c.isprintable() and not c.isspace())
_VALID_STOCK_ITEM = st.fixed_dictionaries(
    {
        "sku": st.text(_SKU_CHARACTERS, min_size=1, max_size=MAX_ID_LENGTH),
        "quantity": st.integers(min_value=0, max_value=10**MAX_QUANTITY_DIGITS - 1),
    }
)


@PROPERTY
@given(items=st.lists(_VALID_STOCK_ITEM, max_size=30, unique_by=lambda item: item["sku"]))
def test_valid_stock_items_are_returned_in_order_without_problems(items: list[dict[str, Any]]) -> None:
    """Any list of valid items with distinct SKUs, sent as JSON, comes back as the same rows in page order."""
    problems = Problems()
    body = json.dumps({"items": items, "next_cursor": "c"}).encode("utf-8")
    read = envelope(decode(body, problems), problems)
    assert read is not None
    rows = stock_items(read, UTC, problems)
    assert not problems, [problem.describe() for problem in problems.listed]
    assert rows == [
        StockRow(position, item["sku"], item["quantity"], None) for position, item in enumerate(items, start=1)
    ]


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_FIELD = st.one_of(
    _JSON,
    st.text(max_size=140),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.sampled_from(["2026-01-01T00:00:00", "2026-01-01T00:00:00+02:00", "closed", "shipped", " A ", ""]),
)
_ITEM = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {},
        optional={
            name: _FIELD
            for name in ("sku", "quantity", "as_of", "order_id", "status", "confirmed_quantity", "confirmed_at")
        },
    ),
)
_DOCUMENT = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {},
        optional={"items": st.one_of(st.lists(_ITEM, max_size=8), _JSON), "next_cursor": _JSON, "has_more": _JSON},
    ),
)


@PROPERTY
@given(document=_DOCUMENT, zone=st.sampled_from([UTC, PARIS]))
def test_any_json_document_gives_rows_or_problems_never_an_exception(document: Any, zone: Any) -> None:
    """Whatever the partner sends, the checks answer with rows or problems; a clean page gives a row per item."""
    problems = Problems()
    read = envelope(document, problems)
    if read is None:
        assert problems
        return
    assert not problems
    rows = stock_items(read, zone, problems)
    if not problems:
        assert len(rows) == len(read.items)
        assert len({row.sku for row in rows}) == len(rows)
        assert all(0 <= row.quantity < 10**MAX_QUANTITY_DIGITS for row in rows)
    assert all(problem.unit == "item" for problem in problems.listed)
    ack_problems = Problems()
    found_acks = acknowledgement_items(read, zone, ack_problems)
    if not ack_problems:
        assert len(found_acks.statuses) + len(found_acks.confirmations) == len(read.items)


# when to ask for the next page


@pytest.mark.parametrize(
    ("items", "next_cursor", "has_more", "cursor", "expected"),
    [
        # has_more given: it decides, but only when the cursor moved
        ([1], "c2", True, "c1", True),
        ([], "c2", True, "c1", True),
        ([1], "c1", True, "c1", False),
        ([1], None, True, "c1", False),
        ([1], "c1", True, None, True),
        ([1], "c2", False, "c1", False),
        ([], None, False, None, False),
        # no has_more: while items come and the cursor moves
        ([1], "c2", None, "c1", True),
        ([1], "c1", None, None, True),
        ([], "c2", None, "c1", False),
        ([1], "c1", None, "c1", False),
        ([1], None, None, "c1", False),
        ([1], None, None, None, False),
    ],
)
def test_more_pages_are_asked_for_only_when_the_cursor_moves(
    items: list[Any], next_cursor: str | None, has_more: bool | None, cursor: str | None, expected: bool
) -> None:
    """A partner that repeats its cursor (or sends none) is never asked again in a loop."""
    assert _more(Page(items, next_cursor, has_more), cursor) is expected


# Retry-After

NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("007", 7.0)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    """A whole number of seconds is that many seconds."""
    assert retry_after_seconds(value, NOW) == seconds


def test_retry_after_as_an_http_date_in_the_future() -> None:
    """An HTTP date is the time from now until then."""
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 60.0
    assert retry_after_seconds("Wed, 21 Oct 2015 09:28:00 +0200", NOW) == 60.0


def test_retry_after_as_an_http_date_without_zone_is_utc() -> None:
    """A date without a zone is read as UTC."""
    assert retry_after_seconds("Wed, 21 Oct 2015 07:29:00", NOW) == 120.0


def test_retry_after_as_an_http_date_in_the_past_is_no_wait() -> None:
    """A date already gone means try now, never a negative wait."""
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", NOW) == 0.0


def test_retry_after_defaults_to_the_current_time() -> None:
    """Without `now`, the wait is measured from the real clock."""
    later = datetime.now(UTC) + timedelta(hours=1)
    header = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = retry_after_seconds(header)
    assert seconds is not None
    assert 3500 < seconds <= 3600


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "1.5", "-3", "+3", "1e3", "Wed, 32 Oct 2015 07:28:00 GMT"])
def test_retry_after_that_is_absent_or_unreadable_is_none(value: str | None) -> None:
    """Nothing usable: None, so the caller's own backoff applies."""
    assert retry_after_seconds(value, NOW) is None


def test_retry_after_with_a_non_ascii_digit_is_none() -> None:
    """A Latin-1 superscript two is not a number of seconds."""
    assert retry_after_seconds("\u00b2", NOW) is None


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_retry_after_never_raises_on_ascii_text(value: str) -> None:
    """Any ASCII header value gives a wait of at least 0 seconds, or None."""
    ascii_value = value.encode("ascii", "ignore").decode("ascii")
    seconds = retry_after_seconds(ascii_value, NOW)
    assert seconds is None or seconds >= 0
