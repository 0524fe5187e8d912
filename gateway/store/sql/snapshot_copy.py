"""PostgreSQL reads a snapshot file itself: the raw CSV by `COPY ... FROM STDIN` into a temporary table of text
cells, then one INSERT into the level loader's table that checks and converts every cell, a unique index that
catches a SKU given twice, and the file is taken: no Python object per row.

The path takes a strict subset of what the Python reader (formats/csvfile.py, formats/rows.py) takes, and gives
exactly the same values: a file it does not take is read again from the start by the Python reader, which applies
it as before or refuses it with its line-by-line report. What it takes:

- UTF-8 text (a byte-order mark in the header line, which COPY skips, is allowed) with no `"` and no `\\` anywhere
  (so no quoting, whose rules differ between the two readers, and no `\\.` end-of-data line), `\\r` only in `\\r\\n`,
  and no line longer than the partner's `files.max_line_bytes` (line breaks counted: a stricter bound);
- every row exactly as wide as the header (COPY refuses any other, a blank line included);
- a SKU of 1 to 128 characters with no control character (C0, DEL, C1, U+2028, U+2029) and neither starting nor
  ending with white space as Python's str.strip() sees it: the identifier rule (domain/identifiers.py);
- a quantity of 1 to 12 ASCII digits, nothing around them;
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

from gateway.domain import instant
from gateway.store.records import SnapshotFile

BLOCK = 1 << 20  # the file is sent in blocks of 1 MiB
SAVEPOINT = "gateway_snapshot_copy"

# the identifier rule as one pattern: control characters nowhere, white space (str.isspace) at neither end
_CONTROL = "\x01-\x1f\x7f-\x9f\u2028\u2029"  # NUL never reaches a text column: COPY refuses it
_SPACE = "".join(chr(c) for c in (0x20, 0x85, 0xA0, 0x1680, 0x202F, 0x205F, 0x3000)) + "\u2000-\u200a"
_EDGE = f"[^{_CONTROL}{_SPACE}]"
SKU_PATTERN = f"^{_EDGE}([^{_CONTROL}]{{0,126}}{_EDGE})?$"
QUANTITY_PATTERN = "^[0-9]{1,12}$"
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
        if self.since > self.limit:
            raise NotPlain("a long line")


def copy_file(cursor: Any, file: SnapshotFile, levels: str) -> int | None:
    """Load `file`'s rows into the table `levels` (sku, quantity, as_of), checked: their count, or None (the table
    as it was) when the file is not plainly valid. Runs under a savepoint of the caller's transaction."""
    cursor.execute(f"SAVEPOINT {SAVEPOINT}")
    try:
        rows = _load(cursor, file, levels)
    except (psycopg.Error, NotPlain):
        cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
        return None
    cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
    return rows


def _load(cursor: Any, file: SnapshotFile, levels: str) -> int:
    cells = [sql.Identifier(f"c{i}") for i in range(file.width)]
    raw = sql.Identifier("gateway_snapshot_raw")
    cursor.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            raw, sql.SQL(", ").join(sql.SQL("{} text").format(cell) for cell in cells)
        )
    )
    copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true, DELIMITER {}, ENCODING 'UTF8')").format(
        raw, sql.Literal(file.delimiter)
    )
    scan = _Scan(file.max_line_bytes)
    stream = file.stream
    with cursor.copy(copy_sql) as copy:
        while data := stream.read(BLOCK):
            scan.block(data)
            copy.write(data)
        scan.end()
    i_sku, i_quantity, i_as_of = file.positions
    sku, quantity = cells[i_sku], cells[i_quantity]
    if i_as_of is None:
        as_of: sql.Composable = sql.Literal(file.default_as_of)
    else:
        stamp = cells[i_as_of]
        as_of = sql.SQL(
            "CASE WHEN {a} IS NULL THEN {default}"
            " WHEN {a} ~ %(zoned)s THEN CAST(extract(epoch FROM CAST({a} AS timestamptz)) * 1000000 AS bigint)"
            " WHEN {a} ~ %(naive)s THEN CAST(extract(epoch FROM CAST({a} || '+00:00' AS timestamptz)) * 1000000"
            " AS bigint) END"
        ).format(a=stamp, default=sql.Literal(file.default_as_of))
    table = sql.Identifier(levels)
    # a value out of bounds fails the constraint, a cell out of shape is NULL and fails NOT NULL: either ends here
    bounds = sql.SQL("ALTER TABLE {} ADD CONSTRAINT gateway_levels_as_of CHECK (as_of BETWEEN {} AND {})").format(
        table, sql.Literal(instant.FIRST), sql.Literal(min(instant.LAST, file.latest_as_of))
    )
    cursor.execute(bounds)
    insert = sql.SQL(
        "INSERT INTO {table} (sku, quantity, as_of) SELECT CASE WHEN {sku} ~ %(sku)s THEN {sku} END,"
        " CASE WHEN {quantity} ~ %(quantity)s THEN CAST({quantity} AS bigint) END, {as_of} FROM {raw}"
    ).format(table=table, sku=sku, quantity=quantity, as_of=as_of, raw=raw)
    params = {
        "sku": SKU_PATTERN,
        "quantity": QUANTITY_PATTERN,
        "zoned": ZONED_PATTERN,
        "naive": NAIVE_PATTERN if file.naive_utc else NEVER,
    }
    cursor.execute(insert, params)
    rows = int(cursor.rowcount)
    cursor.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (sku)").format(table))  # a SKU given twice fails here
    cursor.execute(sql.SQL("DROP TABLE {}").format(raw))
    return rows
