"""Whatever bytes arrive, the readers either refuse them cleanly or yield valid rows: never another exception.

A clean refusal is Malformed raised when the table is opened, or problems recorded while rows are read.
A valid parse is rows of the kind's type, with identifiers that follow the identifier rule and quantities in range.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain import identifiers
from gateway.domain.status import OrderStatus
from gateway.formats.csvfile import CsvOptions, CsvTable
from gateway.formats.problems import Malformed, Problem
from gateway.formats.rows import (
    COLUMNS,
    MAX_ID_LENGTH,
    AcknowledgementRow,
    CapRowIn,
    CollectionRowIn,
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
from gateway.formats.stock_rows import read_stock
from tests.conftest import FIXTURES

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ZONES: tuple[tzinfo, ...] = (UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"))

Reader = Callable[[CsvTable, tzinfo], Iterator[Any]]
READERS: dict[Kind, tuple[Reader, type]] = {
    Kind.STOCK: (read_stock, StockRow),
    Kind.ORDERS: (read_orders, OrderRow),
    Kind.CONFIRMATIONS: (read_confirmations, ConfirmationRow),
    Kind.CAPS: (read_caps, CapRowIn),
    Kind.ACKNOWLEDGEMENTS: (read_acknowledgements, AcknowledgementRow),
    Kind.COLLECTIONS: (read_collections, CollectionRowIn),
}

RENAMED = {
    Kind.STOCK: {"sku": "EAN", "quantity": "Qty"},
    Kind.ORDERS: {"order_id": "Commande", "sku": "EAN", "quantity": "Qty", "status": "Etat"},
    Kind.CONFIRMATIONS: {"order_id": "Commande", "sku": "EAN", "confirmed_quantity": "Qty", "confirmed_at": "Le"},
    Kind.CAPS: {"sku": "EAN", "assembly": "Ruche", "collection": "Distribution", "max": "Maximum"},
    Kind.ACKNOWLEDGEMENTS: {"order_id": "Commande", "status": "Etat", "updated_at": "Le"},
    Kind.COLLECTIONS: {"assembly": "Ruche", "collection": "Distribution", "closes_at": "Fin", "pickup_on": "Retrait"},
}


def variants(kind: Kind) -> list[CsvOptions]:
    """Default options and a few partner set-ups."""
    return [
        CsvOptions(),
        CsvOptions(delimiter=";"),
        CsvOptions(encoding="latin-1"),
        CsvOptions(delimiter="\t", encoding="cp1252"),
        CsvOptions(delimiter=",", encoding="utf-8"),
        CsvOptions(delimiter=";", columns=RENAMED[kind]),
    ]


# inline samples, used when the fixtures folder has none for a kind
INLINE: dict[Kind, list[bytes]] = {
    Kind.STOCK: [
        b"sku,quantity,as_of\n3700000000011,10,2019-06-25T12:00:00Z\n3700000000028,4,2019-06-25T14:00:00\n"
        b"3700000000035,0,\n",
        b"\xef\xbb\xbfsku;quantity\r\n3700000000011;12\r\n3700000000042;3\r\n",
        b'sku\tquantity\n"37,00"\t1\n"A ""B"""\t2\n',
    ],
    Kind.ORDERS: [
        b"order_id,sku,quantity,status,assembly,collection\nO-1,3700000000011,2,pending,K1,C1\n"
        b"O-1,3700000000028,1,pending,K1,C2\nO-2,3700000000011,3,confirmed,,\n",
        b"order_id;sku;quantity;status\nO-1;3700000000011;2;invoicing\n",
    ],
    Kind.CAPS: [
        b"sku,assembly,collection,max\n3700000000011,K1,*,10\n3700000000011,K1,C1,none\n3700000000028,K2,C1,0\n",
        b"sku;assembly;collection;max\r\n3700000000011;K1;C1;NONE\r\n",
    ],
    Kind.CONFIRMATIONS: [
        b"order_id,sku,confirmed_quantity,confirmed_at\nO-1,3700000000011,2,2019-06-26T11:00:00Z\n"
        b"O-1,3700000000028,0,2019-06-26T13:00:00\n",
        b"order_id\tsku\tconfirmed_quantity\tconfirmed_at\r\nO-1\t3700000000011\t2\t2019-06-26T11:00:00+02:00\r\n",
    ],
    Kind.ACKNOWLEDGEMENTS: [
        b"order_id,status,updated_at\nO-1,closed,2019-06-26T12:00:00Z\nO-2,Cancelled ,\nO-3,invoicing,2019-06-26\n",
        b"order_id;status\r\nO-1;closed\r\nO-1;closed\r\n",
    ],
    Kind.COLLECTIONS: [
        b"assembly,collection,opens_at,closes_at,pickup_on\nK1,C1,2026-12-04T18:00:00,2026-12-09T18:00Z,2026-12-11\n"
        b"K1,C2,,,\nK2,C1,,2026-12-09,2026-12-09T10:00:00+01:00\n",
        b"assembly;collection;opens_at;closes_at;pickup_on\r\nK1;C1;;;2026-12-11\r\nK1;C1;;;\r\n",
    ],
}


def samples(kind: Kind) -> list[bytes]:
    """Every fixture file of the kind (good and bad), plus the inline samples."""
    folder = FIXTURES / kind.value
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    return [path.read_bytes() for path in files] + INLINE[kind]


def header(kind: Kind, delimiter: str = ",") -> bytes:
    required, optional = COLUMNS[kind]
    return (delimiter.join((*required, *optional)) + "\n").encode()


# the property


def physical_lines(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") + 1


def check_problem(problem: Problem, data: bytes) -> None:
    assert isinstance(problem, Problem)
    assert isinstance(problem.message, str)
    assert problem.message
    assert problem.line is None or 1 <= problem.line <= physical_lines(data)
    problem.describe()
    problem.as_dict()


INT64_MAX = 2**63 - 1  # the store's integer columns


def check_identifier(identifier: object) -> None:
    assert isinstance(identifier, str)
    assert identifiers.problem(identifier) is None, (identifier, identifiers.problem(identifier))


def check_row(kind: Kind, row: object) -> None:
    assert type(row) is READERS[kind][1]
    if isinstance(row, StockRow):
        check_identifier(row.sku)
        assert type(row.quantity) is int
        assert 0 <= row.quantity <= INT64_MAX
        assert row.as_of is None or type(row.as_of) is int
    elif isinstance(row, OrderRow):
        check_identifier(row.order_id)
        assert isinstance(row.status, OrderStatus)
        line = row.requested
        check_identifier(line.sku)
        assert type(line.quantity) is int
        assert 1 <= line.quantity <= INT64_MAX
        assert line.assembly is None or identifiers.is_valid(line.assembly)
        assert line.collection is None or identifiers.is_valid(line.collection)
        assert (line.collection is None) == (line.assembly is None)
    elif isinstance(row, AcknowledgementRow):
        check_identifier(row.order_id)
        assert isinstance(row.status, OrderStatus)
        assert row.updated_at is None or type(row.updated_at) is int
    elif isinstance(row, CapRowIn):
        check_identifier(row.sku)
        check_identifier(row.assembly)
        assert row.collection is None or (identifiers.is_valid(row.collection) and "*" not in row.collection)
        assert row.limit is None or (type(row.limit) is int and 0 <= row.limit <= INT64_MAX)
    elif isinstance(row, CollectionRowIn):
        check_identifier(row.assembly)
        check_identifier(row.collection)
        assert row.opens_at is None or type(row.opens_at) is int
        assert row.closes_at is None or type(row.closes_at) is int
        assert row.pickup_on is None or type(row.pickup_on) is date
    else:
        assert isinstance(row, ConfirmationRow)
        check_identifier(row.order_id)
        check_identifier(row.sku)
        assert type(row.confirmed_quantity) is int
        assert 0 <= row.confirmed_quantity <= INT64_MAX
        assert type(row.confirmed_at) is int
    assert type(row.line) is int
    assert row.line >= 2


def read_or_refuse(kind: Kind, data: bytes, options: CsvOptions, zone: tzinfo) -> tuple[list[Any], list[Problem]]:
    """Open and read `data`; any exception but Malformed fails the test."""
    required, optional = COLUMNS[kind]
    stream = io.BytesIO(data)
    try:
        table = CsvTable(stream, options, required, optional)
    except Malformed as exc:
        check_problem(exc.problem, data)
        assert not stream.closed
        return [], [exc.problem]
    reader = READERS[kind][0]
    found = list(reader(table, zone))
    assert not stream.closed
    return found, table.problems.listed


def check(kind: Kind, data: bytes, options: CsvOptions, zone: tzinfo) -> None:
    found, problems = read_or_refuse(kind, data, options, zone)
    for problem in problems:
        check_problem(problem, data)
    for row in found:
        check_row(kind, row)
    lines = [row.line for row in found]
    assert lines == sorted(set(lines)), "rows come out once each, in file order"
    assert not set(lines) & {p.line for p in problems}, "a row with a problem is not yielded"
    if kind == Kind.STOCK:
        skus = [row.sku for row in found]
        assert len(skus) == len(set(skus)), "a snapshot names each SKU once"
    if kind == Kind.ACKNOWLEDGEMENTS:
        orders = [row.order_id for row in found]
        assert len(orders) == len(set(orders)), "an acknowledgements file names each order once"
    if kind == Kind.COLLECTIONS:
        named = [(row.assembly, row.collection) for row in found]
        assert len(named) == len(set(named)), "a collections file names each collection once"


# strategies


@st.composite
def mangled(draw: st.DrawFn, kind: Kind) -> bytes:
    """A sample file damaged by a few byte flips, deletions, insertions, truncations or repeated lines."""
    data = bytearray(draw(st.sampled_from(samples(kind))))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "delete", "insert", "special", "truncate", "repeat", "swap"]))
        at = draw(st.integers(0, len(data)))
        if operation == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= draw(st.integers(1, 255))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "special":
            data[at:at] = draw(st.sampled_from([b'"', b",", b";", b"\t", b"\r", b"\n", b"\x00", b"\xef\xbb\xbf", b"-"]))
        elif operation == "truncate":
            del data[at:]
        elif operation in ("repeat", "swap"):
            lines = bytes(data).splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                j = draw(st.integers(0, len(lines) - 1))
                if operation == "repeat":
                    lines.insert(j, lines[i])
                else:
                    lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"".join(lines))
    return bytes(data)


DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=30)
QUANTITIES = st.one_of(
    st.integers(0, 10**6).map(str),
    st.integers(-(10**6), -1).map(str),
    DIGITS,
    st.sampled_from(["", " 7 ", "1.5", "1e3", "+1", "²", "١٢", "0x1", "٣"]),
    st.text(max_size=8),
    st.integers(4000, 5000).map(lambda n: "9" * n),  # past Python's int-from-text digit limit
    st.integers(2**62, 2**70).map(str),  # around a 64-bit column's limit
)
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(datetime.isoformat),
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]),
    ).map(datetime.isoformat),
    st.sampled_from(["", "2019-06-25T12:00:00Z", "2019-06-25", "2019-02-30T00:00", "0001-01-01T00:00:00+14:00"]),
    st.text(alphabet="0123456789-:TZ+. ", max_size=30),
    st.text(max_size=12),
)
IDENTIFIERS = st.one_of(
    st.text(alphabet="AOS-0123456789", min_size=1, max_size=14),
    st.text(max_size=10),
    st.just("X" * (MAX_ID_LENGTH + 1)),
)
STATUSES = st.one_of(st.sampled_from([*[s.value for s in OrderStatus], "Pending ", "shipped", ""]), st.text(max_size=8))


def cells(kind: Kind) -> st.SearchStrategy[list[str]]:
    if kind == Kind.STOCK:
        return st.tuples(IDENTIFIERS, QUANTITIES, MOMENTS).map(list)
    if kind == Kind.ORDERS:
        optional = st.one_of(st.just(""), IDENTIFIERS)
        return st.tuples(IDENTIFIERS, IDENTIFIERS, QUANTITIES, STATUSES, optional, optional).map(list)
    if kind == Kind.CAPS:
        collections = st.one_of(st.sampled_from(["*", "**", "C*", "", " * "]), IDENTIFIERS)
        limits = st.one_of(st.sampled_from(["none", "None", " NONE ", "-1"]), QUANTITIES)
        return st.tuples(IDENTIFIERS, IDENTIFIERS, collections, limits).map(list)
    if kind == Kind.ACKNOWLEDGEMENTS:
        return st.tuples(IDENTIFIERS, STATUSES, MOMENTS).map(list)
    if kind == Kind.COLLECTIONS:
        return st.tuples(IDENTIFIERS, IDENTIFIERS, MOMENTS, MOMENTS, MOMENTS).map(list)
    return st.tuples(IDENTIFIERS, IDENTIFIERS, QUANTITIES, MOMENTS).map(list)


@st.composite
def written(draw: st.DrawFn, kind: Kind) -> tuple[bytes, CsvOptions]:
    """A well-quoted file of the kind whose cells are anything: the row checks alone decide."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "cp1252"]))
    required, optional = COLUMNS[kind]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow((*required, *optional))
    writer.writerows(draw(st.lists(cells(kind), max_size=6)))
    data = buffer.getvalue().encode(encoding, errors="replace")
    return data, CsvOptions(delimiter=draw(st.sampled_from([None, delimiter])), encoding=encoding)


KINDS = pytest.mark.parametrize("kind", list(Kind))


@KINDS
@FUZZ
@given(data=st.data())
def test_arbitrary_bytes_are_refused_cleanly_or_read_as_valid_rows(kind: Kind, data: st.DataObject) -> None:
    """Random bytes, alone or after a valid header, with any option variant."""
    options = data.draw(st.sampled_from(variants(kind)))
    zone = data.draw(st.sampled_from(ZONES))
    body = data.draw(st.binary(max_size=400))
    prefix = data.draw(st.sampled_from([b"", header(kind), header(kind, ";"), b"\xef\xbb\xbf" + header(kind)]))
    check(kind, prefix + body, options, zone)


@KINDS
@FUZZ
@given(data=st.data())
def test_mangled_sample_files_are_refused_cleanly_or_read_as_valid_rows(kind: Kind, data: st.DataObject) -> None:
    """Fixture files with flipped, deleted, inserted or repeated bytes and lines, with any option variant."""
    options = data.draw(st.sampled_from(variants(kind)))
    zone = data.draw(st.sampled_from(ZONES))
    check(kind, data.draw(mangled(kind)), options, zone)


@KINDS
@FUZZ
@given(data=st.data())
def test_well_formed_files_with_arbitrary_cells_are_refused_cleanly_or_read_as_valid_rows(
    kind: Kind, data: st.DataObject
) -> None:
    """Correct CSV whose cells are odd numbers, timestamps, identifiers and statuses."""
    content, options = data.draw(written(kind))
    zone = data.draw(st.sampled_from(ZONES))
    check(kind, content, options, zone)


@FUZZ
@given(
    skus=st.lists(st.text(alphabet="ABC0123456789-", min_size=1, max_size=12), min_size=1, max_size=30, unique=True),
    ends=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=31, max_size=31),
    padding=st.sampled_from([0, 0, 1500]),
    bad=st.data(),
)
def test_line_numbers_of_rows_and_of_an_undecodable_byte_are_exact(
    skus: list[str], ends: list[str], padding: int, bad: st.DataObject
) -> None:
    """Mixed line ends, an optional long run of rows first: every row and the bad byte keep their true line."""
    encoding, byte = bad.draw(st.sampled_from([("utf-8", b"\xff"), ("utf-8", b"\xc3("), ("cp1252", b"\x81")]))
    lines = ["sku,quantity" + ends[0]]
    lines += [f"pad{i},1{ends[i % 3 + 1]}" for i in range(padding)]
    lines += [f"{sku},{n}{end}" for n, (sku, end) in enumerate(zip(skus, ends[1:], strict=False))]
    target = bad.draw(st.integers(1, len(lines) - 1))  # 0-based index of the damaged line
    body = [line.encode(encoding) for line in lines]
    body[target] = body[target][:1] + byte + body[target][1:]
    found, problems = read_or_refuse(Kind.STOCK, b"".join(body), CsvOptions(encoding=encoding), UTC)
    assert [p.line for p in problems] == [target + 1]
    for row in found:
        assert row.line < target + 1
        assert lines[row.line - 1].startswith(f"{row.sku},")


@KINDS
def test_every_sample_file_is_refused_cleanly_or_read_as_valid_rows(kind: Kind) -> None:
    """The unmangled samples themselves, with every option variant."""
    for sample in samples(kind):
        for options in variants(kind):
            check(kind, sample, options, UTC)


def test_the_fixture_folder_provides_samples_for_every_kind() -> None:
    """Mangling starts from real fixture files when they exist."""
    assert Path(FIXTURES).is_dir()
    for kind in Kind:
        assert len(samples(kind)) > len(INLINE[kind])
