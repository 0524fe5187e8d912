"""The streaming CSV table: delimiters, encodings, the header, row shapes, undecodable bytes, quoting, streaming."""

from __future__ import annotations

import io
import random
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest

from gateway.formats import csvfile
from gateway.formats.csvfile import CsvOptions, CsvTable, detect_delimiter
from gateway.formats.problems import Malformed, Problem, Problems

STOCK = ("sku", "quantity")


def table(
    data: bytes,
    required: Sequence[str] = STOCK,
    optional: Sequence[str] = (),
    **options: Any,
) -> CsvTable:
    return CsvTable(io.BytesIO(data), CsvOptions(**options), required, optional)


def rows(data: bytes, **options: Any) -> list[tuple[int, list[str]]]:
    return list(table(data, **options))


def refusal(data: bytes, required: Sequence[str] = STOCK, **options: Any) -> Problem:
    with pytest.raises(Malformed) as info:
        table(data, required, **options)
    return info.value.problem


def all_problems(data: bytes, **options: Any) -> tuple[list[tuple[int, list[str]]], list[Problem]]:
    """Rows and problems, whether the file is refused at the header or while rows are read."""
    try:
        opened = table(data, **options)
    except Malformed as exc:
        return [], [exc.problem]
    read = list(opened)
    return read, opened.problems.listed


def numbered(count: int, prefix: str = "s") -> bytes:
    return "".join(f"{prefix}{i},{i % 50}\n" for i in range(count)).encode()


class CountingRaw(io.RawIOBase):
    """A byte source that counts how many bytes were taken from it."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._inner.readinto(buffer)
        self.consumed += count
        return count


class Unseekable(io.BytesIO):
    """A byte stream that cannot seek, like a pipe."""

    def seekable(self) -> bool:
        return False


# delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_detected_from_the_header(delimiter: str) -> None:
    """Comma, semicolon and tab are each recognised from the header row alone."""
    data = f"sku{delimiter}quantity\nA{delimiter}1\n".encode()
    opened = table(data)
    assert opened.delimiter == delimiter
    assert list(opened) == [(2, ["A", "1"])]


def test_a_header_without_any_candidate_delimiter_is_read_as_comma_separated() -> None:
    """No comma, semicolon or tab in the header: a comma is assumed."""
    assert detect_delimiter("sku") == ","


def test_the_most_frequent_candidate_wins_detection() -> None:
    """A semicolon file whose header names contain a comma is still semicolon-separated."""
    assert detect_delimiter("sku;quantity;note, free") == ";"


def test_a_configured_delimiter_is_honoured_over_detection() -> None:
    """With ';' configured, commas inside cells are plain text."""
    data = b"sku;quantity;note\nA;1;red, large\n"
    assert rows(data, delimiter=";") == [(2, ["A", "1", "red, large"])]


def test_a_configured_delimiter_that_the_file_does_not_use_names_the_header_it_saw() -> None:
    """Configured ',' on a ';' file: the missing columns are reported with the header as read."""
    problem = refusal(b"sku;quantity\nA;1\n", delimiter=",")
    assert problem.line == 1
    assert "missing required column(s) sku, quantity" in problem.message
    assert "sku;quantity" in problem.message
    assert "delimiter ','" in problem.message


# encodings and byte-order marks


def test_utf8_without_a_byte_order_mark_is_read() -> None:
    """Plain UTF-8 with accented SKUs."""
    assert rows("sku,quantity\nCafé-Crème,4\n".encode()) == [(2, ["Café-Crème", "4"])]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name() -> None:
    """The BOM is dropped, so 'sku' is found."""
    opened = table(b"\xef\xbb\xbfsku,quantity\nA,1\n")
    assert opened.header == ["sku", "quantity"]
    assert opened.index == {"sku": 0, "quantity": 1}
    assert list(opened) == [(2, ["A", "1"])]


@pytest.mark.parametrize("name", ["UTF-8", "utf8", "utf_8"])
def test_a_byte_order_mark_is_dropped_whatever_spelling_of_utf8_is_configured(name: str) -> None:
    """Every alias of UTF-8 gets the BOM handling."""
    assert table(b"\xef\xbb\xbfsku,quantity\n", encoding=name).header == ["sku", "quantity"]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_a_configured_single_byte_encoding_is_used(encoding: str) -> None:
    """Latin-1 / Windows-1252 bytes decode to the right characters."""
    data = "sku;quantity\nCafé-Crème;4\n".encode(encoding)
    assert rows(data, encoding=encoding) == [(2, ["Café-Crème", "4"])]


def test_cp1252_specific_characters_are_decoded() -> None:
    """The euro sign and curly quotes live in 0x80-0x9f in cp1252."""
    data = "sku,quantity\n€-“x”,4\n".encode("cp1252")
    assert rows(data, encoding="cp1252") == [(2, ["€-“x”", "4"])]


def test_latin1_bytes_read_as_utf8_are_refused_naming_the_line_and_the_byte() -> None:
    """The fixture bad_encoding.csv: an é (0xe9) on line 3."""
    read, problems = all_problems(b"sku,quantity\n3700000000011,10\nCaf\xe9-Cr\xe8me,4\n")
    assert not [row for row in read if row[0] >= 3]
    assert len(problems) == 1
    assert problems[0].line == 3
    assert "not valid utf-8 text (byte 0xe9)" in problems[0].message
    assert "encoding" in problems[0].message


def test_an_undecodable_header_is_refused_at_line_one() -> None:
    """A bad byte in the header itself."""
    problem = refusal(b"sk\xffu,quantity\nA,1\n")
    assert problem.line == 1
    assert "byte 0xff" in problem.message


def test_an_undecodable_byte_deep_in_a_large_file_is_a_problem_naming_its_line() -> None:
    """Past the first block of text: the rows before it are read, then the problem stops the reading."""
    data = b"sku,quantity\n" + numbered(3000) + b"bad\xff,1\n" + numbered(100, "t")
    opened = table(data)
    read = list(opened)
    assert read
    assert all(line < 3002 for line, _ in read)
    assert [(p.line, p.message[:34]) for p in opened.problems.listed] == [(3002, "not valid utf-8 text (byte 0xff); ")]


def test_a_truncated_multibyte_character_at_the_end_is_a_problem_on_the_last_line() -> None:
    """The file stops in the middle of a UTF-8 sequence."""
    read, problems = all_problems(b"sku,quantity\nA,1\nB\xc3")
    assert read == [(2, ["A", "1"])]
    assert [p.line for p in problems] == [3]
    assert "byte 0xc3" in problems[0].message


def test_an_undecodable_byte_in_a_file_with_carriage_return_line_ends_names_its_line() -> None:
    """Old Mac line ends ('\\r' only) count lines the same way for rows and for undecodable bytes."""
    data = b"sku,quantity\r" + numbered(3000).replace(b"\n", b"\r") + b"bad\xff,1\r"
    _, problems = all_problems(data)
    assert [p.line for p in problems] == [3002]


@pytest.mark.parametrize("boundary", [4096, 8192, 16384, 32768, 65536])
def test_a_crlf_split_across_a_read_block_does_not_shift_the_line_of_an_undecodable_byte(boundary: int) -> None:
    """Blocks of a power-of-two size: a \r\n straddling one is still one line end."""
    lines = [b"sku,quantity\r\n"]
    size = len(lines[0])
    number = 0
    while size + 32 < boundary:
        line = b"s%d,1\r\n" % number
        lines.append(line)
        size += len(line)
        number += 1
    lines.append(b"p" * (boundary - size - len(b",1\r")) + b",1\r\n")  # its \r is the block's last byte
    data = b"".join(lines)
    assert data[boundary - 1 : boundary + 1] == b"\r\n"
    bad_line = len(lines) + 2
    data += b"ok,1\r\nbad\xff,1\r\n" + numbered(10).replace(b"\n", b"\r\n")
    read, problems = all_problems(data)
    assert [p.line for p in problems] == [bad_line]
    assert all(line < bad_line for line, _ in read)


# the header


def test_an_empty_file_is_refused() -> None:
    """No bytes at all: no header."""
    problem = refusal(b"")
    assert problem.line == 1
    assert "empty or has no header row" in problem.message


def test_a_file_of_blank_space_is_refused() -> None:
    """Whitespace and line ends only."""
    assert "no header row" in refusal(b"  \r\n\n").message


def test_a_bom_only_file_is_refused_as_empty() -> None:
    """The byte-order mark alone is not a header."""
    assert "no header row" in refusal(b"\xef\xbb\xbf").message


def test_a_header_only_file_yields_no_rows_and_no_problems() -> None:
    """A snapshot with no lines is valid and empty."""
    opened = table(b"sku,quantity\n")
    assert list(opened) == []
    assert not opened.problems


def test_a_header_without_a_final_line_end_is_read() -> None:
    """The header is the whole file."""
    assert table(b"sku,quantity").header == ["sku", "quantity"]


def test_a_missing_required_column_is_named_with_what_the_header_has() -> None:
    """The fixture bad_missing_column.csv: 'qty' instead of 'quantity'."""
    problem = refusal(b"sku,qty\nA,1\n")
    assert problem.line == 1
    assert "missing required column(s) quantity" in problem.message
    assert "the header has sku, qty" in problem.message


def test_every_missing_required_column_is_named() -> None:
    """Two columns missing, both listed."""
    problem = refusal(b"ref,stock\n", required=("sku", "quantity"))
    assert "missing required column(s) sku, quantity" in problem.message


def test_a_missing_optional_column_is_not_a_problem() -> None:
    """as_of is optional: it is just absent from the index."""
    opened = table(b"sku,quantity\nA,1\n", optional=("as_of",))
    assert "as_of" not in opened.index
    assert list(opened) == [(2, ["A", "1"])]


def test_a_header_naming_a_column_twice_is_refused() -> None:
    """Which one would count? Neither: the file is refused."""
    problem = refusal(b"sku,quantity,SKU\nA,1,B\n")
    assert problem.line == 1
    assert "twice" in problem.message
    assert "SKU" in problem.message


def test_header_names_are_matched_ignoring_case_and_surrounding_space() -> None:
    """' SKU ' and 'Quantity' are sku and quantity."""
    opened = table(b" SKU , Quantity \nA,1\n")
    assert opened.index == {"sku": 0, "quantity": 1}


def test_configured_column_names_map_fields_to_the_partner_headers() -> None:
    """The fixture good_semicolon_renamed.csv: columns = { sku = "EAN", quantity = "Qty" }."""
    opened = table(b"EAN;Qty\n3700000000011;7\n", columns={"sku": "EAN", "quantity": "Qty"})
    assert opened.index == {"sku": 0, "quantity": 1}
    assert list(opened) == [(2, ["3700000000011", "7"])]


def test_configured_column_names_are_matched_ignoring_case() -> None:
    """Configured 'EAN' finds a header written 'ean'."""
    opened = table(b"qty;ean\n7;X\n", columns={"sku": "EAN", "quantity": "QTY"})
    assert opened.index == {"sku": 1, "quantity": 0}


def test_a_missing_renamed_column_is_named_by_its_configured_header_name() -> None:
    """The partner's own name is what brand IT will recognise."""
    problem = refusal(b"EAN;Stock\n", columns={"sku": "EAN", "quantity": "Qty"})
    assert "missing required column(s) Qty" in problem.message


def test_a_header_that_cannot_be_read_as_csv_is_refused() -> None:
    """Broken quoting in the header."""
    problem = refusal(b'"sku"x,quantity\nA,1\n')
    assert problem.line == 1
    assert "header row cannot be read" in problem.message


# row shapes


def test_blank_lines_are_skipped_and_line_numbers_stay_physical() -> None:
    """Empty and whitespace-only lines are not rows; later rows keep their line number in the file."""
    opened = table(b"sku,quantity\n\nA,1\n   \r\n\t\nB,2\n\n")
    assert list(opened) == [(3, ["A", "1"]), (6, ["B", "2"])]
    assert not opened.problems


def test_crlf_line_ends_are_read() -> None:
    """Windows line ends: no stray carriage returns in the cells."""
    assert rows(b"sku,quantity\r\nA,1\r\nB,2\r\n") == [(2, ["A", "1"]), (3, ["B", "2"])]


@pytest.mark.parametrize(("line", "found"), [(b"A\n", 1), (b"A,1,extra\n", 3), (b"A,1,,\n", 4)])
def test_a_row_with_the_wrong_number_of_cells_is_a_problem_with_its_line(line: bytes, found: int) -> None:
    """Too few or too many cells: the row is not yielded, the reading goes on."""
    opened = table(b"sku,quantity\nOK,1\n" + line + b"B,2\n")
    assert list(opened) == [(2, ["OK", "1"]), (4, ["B", "2"])]
    assert opened.problems.listed == [Problem(3, f"expected 2 cells as in the header, found {found}")]


def test_every_misshapen_row_is_listed() -> None:
    """Reading continues after a shape problem, so each one is reported."""
    opened = table(b"sku,quantity\nA\nB,1\nC,1,1\n")
    assert list(opened) == [(3, ["B", "1"])]
    assert [p.line for p in opened.problems.listed] == [2, 4]


def test_a_quoted_cell_may_hold_the_delimiter_and_a_line_end() -> None:
    """CSV quoting is honoured; the next row keeps its physical line number."""
    read = rows(b'sku,quantity\n"A,1",2\n"B\nC",3\nD,4\n')
    assert read[0] == (2, ["A,1", "2"])
    assert read[1] == (3, ["B\nC", "3"])
    assert read[2] == (5, ["D", "4"])


def test_a_row_spanning_lines_is_numbered_by_the_line_where_it_starts() -> None:
    """A misshapen row with a quoted line end is reported where an editor shows it beginning."""
    opened = table(b'sku,quantity\nA,1\n"B\nC",3,4\nD,5\n')
    assert list(opened) == [(2, ["A", "1"]), (5, ["D", "5"])]
    assert [p.line for p in opened.problems.listed] == [3]


def test_text_after_a_closing_quote_is_a_problem_naming_the_line() -> None:
    """Broken quoting stops the reading: nothing after it can be trusted."""
    opened = table(b'sku,quantity\nA,1\nB,"2"x\nC,3\n')
    assert list(opened) == [(2, ["A", "1"])]
    assert len(opened.problems) == 1
    assert opened.problems.listed[0].line == 3
    assert "cannot be read as CSV" in opened.problems.listed[0].message


def test_an_unterminated_quote_is_a_problem() -> None:
    """The quote never closes: the file is refused, the rows before it were read."""
    opened = table(b'sku,quantity\nA,1\n"B,2\n')
    assert list(opened) == [(2, ["A", "1"])]
    assert len(opened.problems) == 1
    assert "cannot be read as CSV" in opened.problems.listed[0].message


def test_an_unterminated_quote_is_reported_at_the_line_where_it_opens() -> None:
    """Not at the end of the file, which may be thousands of lines later."""
    opened = table(b'sku,quantity\nA,1\n"B,2\n' + numbered(30))
    list(opened)
    assert [p.line for p in opened.problems.listed] == [3]


# streaming and the caller's stream


def test_rows_are_read_as_a_stream_not_all_up_front() -> None:
    """The first row of a multi-megabyte file costs a few kilobytes of reading."""
    data = b"sku,quantity\n" + numbered(200_000)
    raw = CountingRaw(data)
    opened = CsvTable(io.BufferedReader(raw), CsvOptions(), STOCK)
    first = next(iter(opened))
    assert first == (2, ["s0", "0"])
    assert len(data) > 2_000_000
    assert raw.consumed <= 64 * 1024


def test_reading_progresses_with_the_rows_taken() -> None:
    """Bytes consumed follow the rows read, plus at most a bounded read-ahead."""
    data = b"sku,quantity\n" + numbered(200_000)
    raw = CountingRaw(data)
    reader = iter(CsvTable(io.BufferedReader(raw), CsvOptions(), STOCK))
    taken = [next(reader) for _ in range(20_000)]
    assert taken[-1][0] == 20_001
    read_so_far = len(b"sku,quantity\n" + numbered(20_000))
    assert read_so_far <= raw.consumed <= read_so_far + 64 * 1024


def test_the_callers_stream_is_left_open_after_reading() -> None:
    """The owner of the stream closes it, not the table."""
    stream = io.BytesIO(b"sku,quantity\nA,1\n")
    list(CsvTable(stream, CsvOptions(), STOCK))
    assert not stream.closed


def test_the_callers_stream_is_left_open_after_a_refusal() -> None:
    """A refused header does not close the stream either."""
    stream = io.BytesIO(b"sku,qty\nA,1\n")
    with pytest.raises(Malformed):
        CsvTable(stream, CsvOptions(), STOCK)
    assert not stream.closed


def test_an_unseekable_stream_is_read() -> None:
    """A pipe works: nothing needs to seek when the file is valid."""
    opened = CsvTable(Unseekable(b"sku,quantity\nA,1\n"), CsvOptions(), STOCK)
    assert list(opened) == [(2, ["A", "1"])]


def test_an_undecodable_byte_in_an_unseekable_stream_is_still_a_clean_refusal() -> None:
    """A pipe cannot be searched again for the byte, but the file is refused all the same."""
    stream = Unseekable(b"sku,quantity\n" + numbered(3000) + b"bad\xff,1\n")
    try:
        opened = CsvTable(stream, CsvOptions(), STOCK)
    except Malformed as exc:
        problems = [exc.problem]
    else:
        list(opened)
        problems = opened.problems.listed
    assert len(problems) == 1
    assert "byte 0xff" in problems[0].message


def test_problems_are_shared_with_a_given_collection() -> None:
    """The caller's Problems receives the table's problems."""
    mine = Problems()
    opened = CsvTable(io.BytesIO(b"sku,quantity\nA\n"), CsvOptions(), STOCK, problems=mine)
    list(opened)
    assert opened.problems is mine
    assert mine.total == 1


# long lines (files.max_line_bytes)


LIMIT_TEXT = "longer than 1,048,576 bytes (files.max_line_bytes)"


def read_counting(data: bytes, **options: Any) -> tuple[list[tuple[int, list[str]]], list[Problem], CountingRaw]:
    """Rows and problems of `data` read through a byte source that counts what was taken from it."""
    raw = CountingRaw(data)
    try:
        opened = CsvTable(io.BufferedReader(raw), CsvOptions(**options), STOCK)
    except Malformed as exc:
        return [], [exc.problem], raw
    return list(opened), opened.problems.listed, raw


def test_a_header_of_megabytes_of_commas_is_refused_at_line_one_after_reading_about_the_limit() -> None:
    """8 MiB of commas in the header: refused at line 1, naming the limit, having read little more than 1 MiB."""
    data = b"sku,quantity" + b"," * (8 << 20) + b"\nA,1\n"
    tracemalloc.start()
    try:
        found, problems, raw = read_counting(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == []
    assert [p.line for p in problems] == [1]
    assert LIMIT_TEXT in problems[0].message
    assert raw.consumed <= (1 << 20) + 64 * 1024
    assert peak < (8 << 20) // 2  # the line is never held whole, let alone split into eight million cells


def test_a_single_huge_row_refuses_the_file_at_its_line_before_the_rest_is_read() -> None:
    """A 3 MiB row after ten good ones: the good rows come first, then the refusal; the rows after it stay unread."""
    before = b"sku,quantity\n" + numbered(10)
    data = before + b"B,1" + b",x" * (3 << 19) + b"\n" + numbered(50_000)
    found, problems, raw = read_counting(data)
    assert [line for line, _ in found] == list(range(2, 12))
    assert [p.line for p in problems] == [12]
    assert LIMIT_TEXT in problems[0].message
    assert raw.consumed <= len(before) + (1 << 20) + 64 * 1024


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r", b""])
def test_a_configured_limit_counts_the_bytes_of_a_line_without_its_line_break(ending: bytes) -> None:
    """With max_line_bytes 300: a row of exactly 300 bytes is read, one of 301 refuses the file at its line."""
    at_limit = b"A," + b"1" * 298
    over = b"B," + b"1" * 299
    found, problems, _ = read_counting(b"sku,quantity\n" + at_limit + b"\n" + over + ending, max_line_bytes=300)
    assert found == [(2, ["A", "1" * 298])]
    assert [(p.line, p.message) for p in problems] == [
        (3, "the line is longer than 300 bytes (files.max_line_bytes): the file is refused, unread beyond this line")
    ]


@pytest.mark.parametrize(
    ("encoding", "at_limit", "over"),
    [
        ("utf-8", "é" * 149 + ",1", "é" * 150 + ",1"),  # two bytes a character: 300 and 302 bytes
        ("latin-1", "é" * 298 + ",1", "é" * 299 + ",1"),  # one byte a character: 300 and 301 bytes
        ("utf-16", "é" * 148 + ",1", "é" * 149 + ",1"),  # two bytes a character: 300 and 302 bytes
    ],
)
def test_the_limit_is_in_bytes_of_the_files_encoding(encoding: str, at_limit: str, over: str) -> None:
    """A line of 152 characters is over 300 bytes in UTF-8 but a line of 300 Latin-1 characters is not."""
    data = f"sku,quantity\n{at_limit}\n{over}\n".encode(encoding)
    found, problems, _ = read_counting(data, max_line_bytes=300, encoding=encoding)
    assert [line for line, _ in found] == [2]
    assert [p.line for p in problems] == [3]


def test_a_quoted_cell_spanning_lines_is_bounded_line_by_line() -> None:
    """Each physical line of a multi-line cell is held to the limit: a long one is refused at its own line."""
    data = b'sku,quantity\n"A\n' + b"x" * 400 + b'",1\n'
    found, problems, _ = read_counting(data, max_line_bytes=300)
    assert found == []
    assert [p.line for p in problems] == [3]


def test_a_header_just_under_a_small_limit_is_read() -> None:
    """The header is a line like any other: at the limit it is fine."""
    header = b"sku,quantity," + b"x" * (300 - len(b"sku,quantity,"))
    found, problems, _ = read_counting(header + b"\nA,1,\n", max_line_bytes=300)
    assert found == [(2, ["A", "1", ""])]
    assert problems == []


def test_a_cell_past_the_csv_modules_field_limit_is_refused_within_a_larger_line_limit() -> None:
    """Python's csv module holds one cell to 131,072 characters: a longer cell in a shorter-than-limit line is
    refused at its line by that bound."""
    data = b"sku,quantity\nA,1\nB," + b"9" * 200_000 + b"\nC,2\n"
    found, problems, _ = read_counting(data)
    assert found == [(2, ["A", "1"])]
    assert [p.line for p in problems] == [3]
    assert "field larger than field limit (131072)" in problems[0].message


# lines split a chunk at a time are the lines readline gives


def _readline_lines(data: bytes, limit: int, encoding: str) -> tuple[list[str], str | None]:
    """What the text layer's readline gives, line by line (as the gateway read lines before), and how it ended."""
    text = io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)), encoding=encoding, newline="")
    lines: list[str] = []
    try:
        while line := text.readline(limit + 2):
            body = line.rstrip("\r\n")
            if len(body) > limit or len(body.encode(encoding.replace("-sig", ""))) > limit:
                return lines, f"long {len(lines) + 1}"
            lines.append(line)
    except UnicodeDecodeError:
        return lines, "undecodable"
    return lines, None


def _chunked_lines(data: bytes, limit: int, encoding: str) -> tuple[list[str], str | None]:
    text = io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)), encoding=encoding, newline="")
    lines: list[str] = []
    try:
        for line in csvfile._bounded_lines(text, limit, encoding):
            lines.append(line)
    except UnicodeDecodeError:
        return lines, "undecodable"
    except csvfile.LineTooLong as exc:
        return lines, f"long {exc.line}"
    return lines, None


@pytest.mark.parametrize("seed", range(40))
def test_lines_read_a_chunk_at_a_time_are_those_readline_gives(seed: int) -> None:
    """Whatever the line ends (\\n, \\r\\n, a lone \\r, and breaks such as \\x85 or \\u2028 that are not line ends
    here), wherever a chunk boundary falls, a long line or an undecodable byte: the same lines, in the same order,
    up to the same stop."""
    rng = random.Random(seed)
    pieces = ["a", "bc", ",", "\n", "\r", "\r\n", "\x85", "\u2028", "\x0b", "\x1c", "é", "€", " "]
    text = "".join(rng.choice(pieces) * rng.choice([1, 1, 1, 2, 50]) for _ in range(rng.randrange(1, 9000)))
    data = text.encode("utf-8")
    if seed % 3 == 0:  # an undecodable byte somewhere
        spot = rng.randrange(len(data) + 1)
        data = data[:spot] + b"\xff" + data[spot:]
    if seed % 4 == 1:  # a truncated character at the very end
        data += "€".encode()[:2]
    limit = rng.choice([40, 300, 1 << 20])
    assert _chunked_lines(data, limit, "utf-8") == _readline_lines(data, limit, "utf-8")
