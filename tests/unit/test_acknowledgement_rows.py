"""Status-only acknowledgement files (`order_id,status[,updated_at]`): typed rows, one per order."""

from __future__ import annotations

import io
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.instant import parse, to_iso
from gateway.domain.status import OrderStatus
from gateway.formats.csvfile import CsvOptions, CsvTable
from gateway.formats.problems import Malformed, Problem
from gateway.formats.rows import COLUMNS, AcknowledgementRow, Kind, read_acknowledgements
from tests.conftest import FIXTURES

S = OrderStatus


def acknowledgements(data: bytes, zone: tzinfo = UTC, **options: Any) -> tuple[list[AcknowledgementRow], list[Problem]]:
    required, optional = COLUMNS[Kind.ACKNOWLEDGEMENTS]
    table = CsvTable(io.BytesIO(data), CsvOptions(**options), required, optional)
    return list(read_acknowledgements(table, zone)), table.problems.listed


def test_the_good_fixture_closes_two_orders_one_with_its_instant() -> None:
    """fixtures/acknowledgements/good.csv: `updated_at` given on one row, empty on the other."""
    found, problems = acknowledgements((FIXTURES / "acknowledgements" / "good.csv").read_bytes())
    assert found == [
        AcknowledgementRow(2, "O-1001", S.CLOSED, parse("2019-06-26T12:00:00Z")),
        AcknowledgementRow(3, "O-1002", S.CLOSED, None),
    ]
    assert not problems


def test_the_bad_fixture_lists_every_problem_with_its_line() -> None:
    """fixtures/acknowledgements/bad_rows.csv: an unknown status, an order given twice (both lines named), a
    timestamp that is not ISO 8601."""
    found, problems = acknowledgements((FIXTURES / "acknowledgements" / "bad_rows.csv").read_bytes())
    assert [row.line for row in found] == [2]
    assert [(p.line, p.column) for p in problems] == [(3, "status"), (4, "order_id"), (5, "updated_at")]
    assert problems[1].message == "order O-1001 is acknowledged again (first at line 2): one row per order"


def test_a_file_without_a_status_column_is_refused() -> None:
    """fixtures/acknowledgements/bad_missing_column.csv."""
    with pytest.raises(Malformed, match="missing required column\\(s\\) status"):
        acknowledgements((FIXTURES / "acknowledgements" / "bad_missing_column.csv").read_bytes())


def test_the_updated_at_column_is_optional() -> None:
    """`order_id,status` alone is a whole acknowledgements file; statuses are read like an orders file's."""
    found, problems = acknowledgements(b"order_id,status\nO-1, Closed \nO-2,cancelled\n")
    assert [(r.order_id, r.status, r.updated_at) for r in found] == [
        ("O-1", S.CLOSED, None),
        ("O-2", S.CANCELLED, None),
    ]
    assert not problems


def test_an_order_given_twice_is_a_problem_even_with_the_same_status() -> None:
    """One row per order: a second row for it is refused whatever it says, naming the first row's line."""
    found, problems = acknowledgements(b"order_id,status\nO-1,closed\nO-2,closed\nO-1,closed\n")
    assert [row.line for row in found] == [2, 3]
    assert [(p.line, p.column, p.message) for p in problems] == [
        (4, "order_id", "order O-1 is acknowledged again (first at line 2): one row per order")
    ]


def test_an_order_given_twice_is_named_even_when_its_first_row_is_bad() -> None:
    """The first row's own problem does not hide the second row: both are listed."""
    _, problems = acknowledgements(b"order_id,status\nO-1,shipped\nO-1,closed\n")
    assert [(p.line, p.column) for p in problems] == [(2, "status"), (3, "order_id")]


def test_order_ids_follow_the_identifier_rule_and_are_never_trimmed() -> None:
    """`O-1 ` is not `O-1`: refused at its line, not taken as a second row of O-1."""
    found, problems = acknowledgements(b"order_id,status\nO-1,closed\nO-1 ,closed\n")
    assert [row.line for row in found] == [2]
    assert [(p.line, p.column, p.message) for p in problems] == [(3, "order_id", "has leading or trailing whitespace")]


def test_a_naive_updated_at_is_read_in_the_partner_zone() -> None:
    """Europe/Paris in June is UTC+2, as for every other timestamp of a file."""
    found, _ = acknowledgements(
        b"order_id,status,updated_at\nO-1,closed,2019-06-26T14:00:00\n", ZoneInfo("Europe/Paris")
    )
    assert found[0].updated_at is not None
    assert to_iso(found[0].updated_at) == "2019-06-26T12:00:00Z"


def test_renamed_columns_and_another_delimiter_are_read() -> None:
    """A partner's own header names, configured per kind like the others."""
    data = b"Commande;Etat\nO-1;closed\n"
    found, problems = acknowledgements(data, columns={"order_id": "Commande", "status": "Etat"})
    assert [(r.order_id, r.status) for r in found] == [("O-1", S.CLOSED)]
    assert not problems
