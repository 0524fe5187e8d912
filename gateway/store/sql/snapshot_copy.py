"""PostgreSQL reads a snapshot file itself: the raw CSV by `COPY ... FROM STDIN` into a temporary table of text
cells, each distinct as_of text checked and converted once, then one INSERT into the level loader's table that
compares every row with the stock, keeps those that change something and checks their cells, and a check that no
SKU is given twice: no Python object per row. All of it under a savepoint: any failure rolls it back, and the
caller reads the file with the Python reader.

The path takes a strict subset of what the Python reader (formats/csvfile.py, formats/stock_rows.py) takes, and gives
exactly the same values: a file it does not take is read again from the start by the Python reader, which applies
it as before or refuses it with its line-by-line report. What it takes:

- UTF-8 text (a byte-order mark in the header line, which COPY skips, is allowed) with no `"` and no `\\` anywhere
  (so no quoting, whose rules differ between the two readers, and no `\\.` end-of-data line), `\\r` only in `\\r\\n`,
  and no line longer than the partner's `files.max_line_bytes` (line breaks counted: a stricter bound);
- every row exactly as wide as the header (COPY refuses any other, a blank line included);
- a SKU of 1 to 128 characters with no control character (C0, DEL, C1, U+2028, U+2029) and neither starting nor
  ending with white space as Python's str.strip() sees it: the identifier rule (domain/identifiers.py);
- a quantity of 1 to 12 ASCII digits, nothing around them;
- every SKU once (a count of distinct SKUs, or for a first snapshot the unique index built on its rows);
- an as_of that is empty (the file's instant), or `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}]` with `Z` or `+HH:MM`/`-HH:MM`
  (hours up to 13), or, for a partner whose zone is UTC, without an offset: shapes datetime.fromisoformat reads
  to the same instant PostgreSQL does, and hours, minutes and seconds bounded so that PostgreSQL rolls nothing
  over (24:00, :60); an impossible date (February 30) makes the cast fail, and the file goes to Python, which
  refuses it; the instant must fall in the years 1 to 9999 in UTC and not after `latest_as_of`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from gateway.domain import identifiers, instant
from gateway.store.records import SnapshotFile

BLOCK = 1 << 20  # the file is sent in blocks of 1 MiB
SAVEPOINT = "gateway_snapshot_copy"

# the identifier rule as one pattern: control characters nowhere, white space (str.isspace) at neither end
_CONTROL = "\x01-\x1f\x7f-\x9f\u2028\u2029"  # NUL never reaches a text column: COPY refuses it
_SPACE = "".join(chr(c) for c in (0x20, 0x85, 0xA0, 0x1680, 0x202F, 0x205F, 0x3000)) + "\u2000-\u200a"
_EDGE = f"[^{_CONTROL}{_SPACE}]"
SKU_PATTERN = f"^{_EDGE}([^{_CONTROL}]*{_EDGE})?$"  # and at most MAX_SKU characters (a bound is slow here)
MAX_SKU = identifiers.MAX_LENGTH
QUANTITY_PATTERN = "^[0-9]+$"  # and at most 12 of them (a bound is slow here)
MAX_QUANTITY = 10**12 - 1  # the largest quantity of 12 digits
_DATE = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_STAMP = _DATE + r"[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
ZONED_PATTERN = _STAMP + "(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
NAIVE_PATTERN = _STAMP + "$"
NEVER = "^$x"  # matches nothing: no naive timestamp is taken


class NotPlain(Exception):
    """The file's bytes hold something the path does not take (see the module's docstring)."""


class _Scan:
    """Checks the bytes as they are sent: no quote, no backslash, `\\r` only before `\\n`, no long line."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.since = 0  # bytes since the last line break
        self.held_cr = False  # the last block ended in `\r`

    def block(self, data: bytes) -> None:
        if not data:
            return
        if b'"' in data or b"\\" in data:
            raise NotPlain("a quote or a backslash")
        if self.held_cr and not data.startswith(b"\n"):
            raise NotPlain("a carriage return not before a line feed")
        crs = data.count(b"\r")
        self.held_cr = data.endswith(b"\r")
        if crs and crs - self.held_cr != data.count(b"\r\n"):
            raise NotPlain("a carriage return not before a line feed")
        first = data.find(b"\n")
        if first < 0:
            self.since += len(data)
            if self.since > self.limit:
                raise NotPlain("a long line")
            return
        if self.since + first > self.limit:
            raise NotPlain("a long line")
        last = data.rfind(b"\n")
        if last - first > self.limit and max(map(len, data[first + 1 : last].split(b"\n"))) > self.limit:
            raise NotPlain("a long line")
        self.since = len(data) - last - 1

    def end(self) -> None:
        if self.held_cr:
            raise NotPlain("a carriage return not before a line feed")
        if self.since > self.limit:
            raise NotPlain("a long line")


def copy_file(cursor: Any, file: SnapshotFile, levels: str, partner_id: int) -> tuple[int, int] | None:
    """Load `file`'s rows into the table `levels` (sku, quantity, as_of), checked: the count of rows in the file
    and of those put in `levels`, or None (the table as it was) when the file is not plainly valid. Runs under a
    savepoint of the caller's transaction.

    A row that sets exactly the level and as_of the store holds for its SKU changes nothing in the merge (it is
    neither new, nor stale, nor a move, nor oversold), so only the other rows are kept in `levels`: a routine
    snapshot is compared with the stock once, here, and the merge reads the few rows that change something."""
    cursor.execute(f"SAVEPOINT {SAVEPOINT}")
    try:
        rows = _load(cursor, file, levels, partner_id)
    except (psycopg.Error, NotPlain):
        cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
        return None
    cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
    return rows


_RAW = sql.Identifier("gateway_snapshot_raw")
_STAMPS = sql.Identifier("gateway_snapshot_stamps")


def _load(cursor: Any, file: SnapshotFile, levels: str, partner_id: int) -> tuple[int, int]:
    latest = min(instant.LAST, file.latest_as_of)
    if not instant.FIRST <= file.default_as_of <= latest:
        raise NotPlain("the file's instant is out of bounds")
    cells = [sql.Identifier(f"c{i}") for i in range(file.width)]
    cursor.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            _RAW, sql.SQL(", ").join(sql.SQL("{} text").format(cell) for cell in cells)
        )
    )
    copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true, DELIMITER {}, ENCODING 'UTF8')").format(
        _RAW, sql.Literal(file.delimiter)
    )
    scan = _Scan(file.max_line_bytes)
    stream = file.stream
    with cursor.copy(copy_sql) as copy:
        while data := stream.read(BLOCK):
            scan.block(data)
            copy.write(data)
        scan.end()
    rows = int(cursor.rowcount)
    i_sku, i_quantity, i_as_of = file.positions
    default = sql.Literal(file.default_as_of)
    as_of: sql.Composable = default
    stamps: sql.Composable = sql.SQL("")
    if i_as_of is not None:
        # each distinct as_of text is checked and converted once (a file repeats a few), then joined to its rows;
        # one out of shape or out of bounds is NULL there, and so are its rows' as_of
        stamp = cells[i_as_of]
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE {stamps} ON COMMIT DROP AS SELECT a, CASE WHEN x BETWEEN {first} AND {latest}"
                " THEN x END AS x FROM (SELECT a, CASE"
                " WHEN a ~ %(zoned)s THEN CAST(extract(epoch FROM CAST(a AS timestamptz)) * 1000000 AS bigint)"
                " WHEN a ~ %(naive)s THEN CAST(extract(epoch FROM CAST(a || '+00:00' AS timestamptz)) * 1000000"
                " AS bigint) END AS x FROM (SELECT DISTINCT {stamp} AS a FROM {raw} WHERE {stamp} IS NOT NULL) AS d"
                " OFFSET 0) AS c"
            ).format(
                stamps=_STAMPS, stamp=stamp, raw=_RAW, first=sql.Literal(instant.FIRST), latest=sql.Literal(latest)
            ),
            {"zoned": ZONED_PATTERN, "naive": NAIVE_PATTERN if file.naive_utc else NEVER},
        )
        as_of = sql.SQL("CASE WHEN r.{a} IS NULL THEN {default} ELSE t.x END").format(a=stamp, default=default)
        stamps = sql.SQL(" LEFT JOIN {stamps} AS t ON t.a = r.{a}").format(stamps=_STAMPS, a=stamp)
    # A row kept is new or differs from the stored level: its cells are checked (one out of shape is NULL, and
    # fails NOT NULL). A row not kept names a stored SKU (an identifier: the store holds no other), with exactly
    # the digits of the stored level (when that is one a file may give), and an as_of whose text converted to the
    # stored instant: all three valid.
    insert = sql.SQL(
        "INSERT INTO {table} (sku, quantity, as_of)"
        " SELECT CASE WHEN r.{sku} ~ %(sku)s AND char_length(r.{sku}) <= {longest} THEN r.{sku} END,"
        "  CASE WHEN r.{quantity} ~ %(quantity)s AND octet_length(r.{quantity}) <= 12"
        "  THEN CAST(r.{quantity} AS bigint) END, {as_of}"
        " FROM {raw} AS r{stamps} LEFT JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = r.{sku}"
        " WHERE s.sku IS NULL OR s.quantity NOT BETWEEN 0 AND {most}"
        "  OR r.{quantity} IS DISTINCT FROM CAST(s.quantity AS text)"
        "  OR s.as_of IS DISTINCT FROM {as_of}"
    ).format(
        table=sql.Identifier(levels),
        sku=cells[i_sku],
        quantity=cells[i_quantity],
        longest=sql.Literal(MAX_SKU),
        most=sql.Literal(MAX_QUANTITY),
        as_of=as_of,
        raw=_RAW,
        stamps=stamps,
    )
    cursor.execute(insert, {"sku": SKU_PATTERN, "quantity": QUANTITY_PATTERN, "p": partner_id})
    kept = int(cursor.rowcount)
    if kept == rows:  # every row is in `levels` (a first snapshot): its key is built there, and fails on a SKU twice
        cursor.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (sku)").format(sql.Identifier(levels)))
        return rows, kept
    cursor.execute(sql.SQL("SELECT count(DISTINCT {}) FROM {}").format(cells[i_sku], _RAW))
    [(distinct,)] = cursor.fetchall()
    if distinct != rows:
        raise NotPlain("a SKU given twice")
    return rows, kept
