"""A streaming CSV table: delimiter detection, encodings, BOM, a required header, configurable names.

Rows are read one at a time from the open file: memory does not grow with the file, nor with a line, as a line
longer than the partner's files.max_line_bytes refuses the file before it is read whole.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from gateway.formats.problems import Malformed, Problem, Problems

DELIMITERS = (",", ";", "\t")
MAX_LINE_BYTES = 1 << 20  # files.max_line_bytes by default: a header or row line longer than this refuses the file


@dataclass(frozen=True)
class CsvOptions:
    """How one partner writes one kind of file."""

    delimiter: str | None = None  # None: detected from the header row
    encoding: str = "utf-8"
    columns: Mapping[str, str] = field(default_factory=dict)  # field name -> header name in the file
    max_line_bytes: int = MAX_LINE_BYTES  # a longer line (its line break not counted) refuses the file


def detect_delimiter(header: str) -> str:
    """The candidate delimiter that occurs most in the header row (a comma when none does)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class LineTooLong(Exception):
    """A line of the file is longer than the partner's files.max_line_bytes."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"line {line} is longer than {limit} bytes")
        self.line = line
        self.limit = limit

    def problem(self) -> Problem:
        """The refusal of the whole file, at the long line."""
        return Problem(
            self.line,
            f"the line is longer than {self.limit:,} bytes (files.max_line_bytes): the file is refused, "
            "unread beyond this line",
        )


# the line breaks of str.splitlines that the csv module's reading (readline, newline="") does not break at
_OTHER_BREAKS = ("\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_LINES = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")  # readline's lines: ending in \n, \r\n or a lone \r


def _bounded_lines(text: io.TextIOWrapper, limit: int, encoding: str) -> Iterator[str]:
    """The lines of `text` as the csv module reads them (ending in \\n, \\r\\n or a lone \\r), each of at most
    `limit` bytes (its line break not counted); a longer one raises LineTooLong before it is read whole.

    The text is decoded and split into lines a chunk at a time, the chunks `text` itself would read, so a line
    is given, or an undecodable byte raised, exactly when `text.readline()` would; the lines of a chunk are handed
    on by the interpreter itself (a million-line snapshot makes no call per line here). No more than `limit` + 1
    characters of an unfinished line are held beyond one chunk, and a line's size in bytes is only worked out when
    it has more than a quarter as many characters (no character takes more than four bytes in the encodings
    partners use).
    """
    return itertools.chain.from_iterable(_line_chunks(text, limit, encoding))


def _line_chunks(text: io.TextIOWrapper, limit: int, encoding: str) -> Iterator[list[str]]:
    """The lines of `text`, chunk by chunk (see _bounded_lines)."""
    buffer = text.buffer
    read = getattr(buffer, "read1", buffer.read)
    size = text._CHUNK_SIZE  # type: ignore[attr-defined]  # what the text layer reads at a time
    decode = codecs.getincrementaldecoder(text.encoding)(errors=text.errors or "strict").decode
    short = limit // 4
    plain = "utf-8" if encoding == "utf-8-sig" else encoding  # a byte-order mark is not part of a line
    mark = len("".encode(plain))  # the one some codecs (utf-16, utf-32) write before anything

    def too_long(line: str) -> bool:
        body = line.rstrip("\r\n")
        return len(body) > limit or len(body.encode(plain, errors="replace")) - mark > limit

    number = 0  # lines given so far
    rest = ""  # an unfinished line, or one ending in \r that the next chunk may end with \n
    while True:
        data = read(size)
        chunk = decode(data, final=not data)
        if "\n" not in chunk and "\r" not in chunk:
            rest += chunk  # no line ends here
            if len(rest) > limit + 1:  # more than `limit` characters and no line break yet
                raise LineTooLong(number + 1, limit)
            if not data:
                break
            continue
        chunk = rest + chunk
        lines = _LINES.findall(chunk) if any(c in chunk for c in _OTHER_BREAKS) else chunk.splitlines(True)
        rest = lines.pop() if not lines[-1].endswith("\n") else ""
        if lines and max(map(len, lines)) > short:
            for index, line in enumerate(lines):
                if len(line) > short and too_long(line):
                    yield lines[:index]
                    raise LineTooLong(number + index + 1, limit)
        number += len(lines)
        yield lines
        if len(rest) > limit + 1 and too_long(rest):
            raise LineTooLong(number + 1, limit)
        if not data:
            break
    if rest:
        if len(rest) > short and too_long(rest):
            raise LineTooLong(number + 1, limit)
        yield [rest]


class CsvTable:
    """Rows of one CSV file as lists of cells, with the header resolved to column indexes.

    Iterating yields (line number, cells) for each non-blank row. Problems of shape (a row with more or
    fewer cells than the header, undecodable bytes, broken quoting, a line past max_line_bytes) are added to
    `problems`; all but the first end the iteration, because nothing after them can be trusted (or, for a
    long line, is worth reading).
    """

    def __init__(
        self,
        stream: BinaryIO,
        options: CsvOptions,
        required: Sequence[str],
        optional: Sequence[str] = (),
        problems: Problems | None = None,
    ) -> None:
        self.problems = problems if problems is not None else Problems()
        encoding = codecs.lookup(options.encoding).name
        if encoding == "utf-8":
            encoding = "utf-8-sig"  # a byte-order mark, when present, is not part of the first column name
        self._encoding = encoding
        self._encoding_name = options.encoding
        self._stream = stream
        self._text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
        try:
            self._open(options, required, optional)
        except Malformed:
            self._release()
            raise

    def _open(self, options: CsvOptions, required: Sequence[str], optional: Sequence[str]) -> None:
        self.max_line_bytes = options.max_line_bytes
        lines = _bounded_lines(self._text, options.max_line_bytes, self._encoding)
        try:
            first = next(lines, "")
        except UnicodeDecodeError as exc:
            raise Malformed(Problem(self._locate_decode_error(1), self._decode_message(exc))) from None
        except LineTooLong as exc:
            raise Malformed(exc.problem()) from None
        if not first.strip():
            raise Malformed(Problem(1, "the file is empty or has no header row"))
        self.delimiter = options.delimiter or detect_delimiter(first.rstrip("\r\n"))
        self._reader = csv.reader(itertools.chain([first], lines), delimiter=self.delimiter, strict=True)
        try:
            header = next(self._reader)
        except csv.Error as exc:
            raise Malformed(Problem(1, f"the header row cannot be read: {exc}")) from None
        except UnicodeDecodeError as exc:
            raise Malformed(Problem(self._locate_decode_error(1), self._decode_message(exc))) from None
        except LineTooLong as exc:  # a quoted header cell that runs on over the next lines
            raise Malformed(exc.problem()) from None
        self.header = [cell.strip() for cell in header]
        self.width = len(self.header)
        self.index = self._resolve(required, optional, options.columns)

    @property
    def utf8(self) -> bool:
        """Whether the file is read as UTF-8 (a byte-order mark at its start, if any, skipped)."""
        return self._encoding == "utf-8-sig"

    @property
    def header_on_one_line(self) -> bool:
        """Whether the header row is the file's first line alone (no quoted cell runs on over a line break)."""
        return self._reader.line_num == 1

    @contextlib.contextmanager
    def raw(self) -> Iterator[BinaryIO | None]:
        """The file's bytes from its very start (None when the stream cannot seek), for a reader of its own; the
        stream is put back where it was afterwards, so the rows can still be read here."""
        if not self._stream.seekable():
            yield None
            return
        where = self._stream.tell()
        self._stream.seek(0)
        try:
            yield self._stream
        finally:
            self._stream.seek(where)

    def release(self) -> None:
        """Let go of the byte stream, unread (another reader took the rows): its owner closes it."""
        self._release()

    def _decode_message(self, exc: UnicodeDecodeError) -> str:
        bad = exc.object[exc.start : exc.start + 1].hex()
        return (
            f"not valid {self._encoding_name} text (byte 0x{bad}); "
            "declare the file's encoding in the partner's settings"
        )

    def _locate_decode_error(self, fallback: int) -> int:
        """The line of the first undecodable byte: text is decoded in blocks, so find it again from the start.

        Lines end at \\n, \\r\\n or a lone \\r, as the csv module reads them.
        """
        if not self._stream.seekable():
            return fallback
        self._stream.seek(0)
        decoder = codecs.getincrementaldecoder(self._encoding)(errors="strict")
        breaks = 0
        after_cr = False  # a \r\n split across two blocks is one line end, not two
        while block := self._stream.read(1 << 16):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                text = bytes(exc.object[: exc.start]).decode(self._encoding, errors="replace")
                return breaks + _line_breaks(text) - (after_cr and text.startswith("\n")) + 1
            breaks += _line_breaks(text) - (after_cr and text.startswith("\n"))
            if text:
                after_cr = text.endswith("\r")
        return fallback

    def _release(self) -> None:
        """Let go of the byte stream without closing it: its owner closes it."""
        with contextlib.suppress(ValueError):  # detached already
            self._text.detach()

    def _resolve(self, required: Sequence[str], optional: Sequence[str], names: Mapping[str, str]) -> dict[str, int]:
        positions: dict[str, int] = {}
        for position, name in enumerate(self.header):
            key = name.lower()
            if key in positions:
                raise Malformed(Problem(1, f"the header names column {name!r} twice"))
            positions[key] = position
        index: dict[str, int] = {}
        missing: list[str] = []
        for wanted in (*required, *optional):
            header_name = names.get(wanted, wanted)
            found = positions.get(header_name.lower())
            if found is not None:
                index[wanted] = found
            elif wanted in required:
                missing.append(header_name)
        if missing:
            header = ", ".join(self.header) or "nothing"
            raise Malformed(
                Problem(
                    1,
                    f"missing required column(s) {', '.join(missing)} "
                    f"(the header has {header}; delimiter {self.delimiter!r})",
                )
            )
        return index

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        for cells in self.cells():
            yield self.line, cells

    def batches(self, size: int) -> Iterator[tuple[list[list[str]], Sequence[int]]]:
        """Rows' cells in batches, with the line each row starts on, for checks done a column at a time.

        The csv module fills a batch by itself; only a batch with a blank, short, long or multi-line row in it
        is walked row by row here.
        """
        reader = self._reader
        width = self.width
        try:
            while True:
                first = reader.line_num + 1
                try:
                    rows = list(itertools.islice(reader, size))
                except UnicodeDecodeError as exc:
                    self.problems.add(Problem(self._locate_decode_error(first), self._decode_message(exc)))
                    return
                except csv.Error as exc:
                    self.problems.add(Problem(self._locate_csv_error(first), f"the row cannot be read as CSV: {exc}"))
                    return
                except LineTooLong as exc:
                    self.problems.add(exc.problem())
                    return
                if not rows:
                    return
                if reader.line_num - first + 1 == len(rows) and set(map(len, rows)) == {width}:
                    yield rows, range(first, first + len(rows))
                    continue
                kept: list[list[str]] = []
                lines: list[int] = []
                line = first
                for cells in rows:
                    if len(cells) == width:
                        kept.append(cells)
                        lines.append(line)
                    elif cells and (len(cells) > 1 or cells[0].strip()):  # blank lines are skipped
                        self.problems.add(Problem(line, f"expected {width} cells as in the header, found {len(cells)}"))
                    line += 1 + sum(map(_line_breaks, cells))
                if kept:
                    yield kept, lines
        finally:
            self._release()

    def _locate_csv_error(self, fallback: int) -> int:
        """The line where the row the csv module could not read starts: read the file again to find it."""
        if not self._stream.seekable():
            return fallback
        self._stream.seek(0)
        text = io.TextIOWrapper(self._stream, encoding=self._encoding, errors="replace", newline="")
        try:
            lines = _bounded_lines(text, self.max_line_bytes, self._encoding)
            again = csv.reader(lines, delimiter=self.delimiter, strict=True)
            begins = 1
            try:
                for _ in again:
                    begins = again.line_num + 1
            except csv.Error:
                return begins
            except LineTooLong:  # the first reading checked these lines already; should it differ, say nothing new
                return fallback
            return fallback
        finally:
            text.detach()

    def cells(self) -> Iterator[list[str]]:
        """The cells of each row as wide as the header; `line` is the line the current row starts on.

        The bulk paths read this directly: no tuple per row.
        """
        reader = self._reader
        width = self.width
        self.line = reader.line_num + 1  # where the next row starts: a quoted cell may span lines
        try:
            for cells in reader:
                if len(cells) == width:
                    yield cells
                elif cells and (len(cells) > 1 or cells[0].strip()):  # blank lines are skipped
                    self.problems.add(
                        Problem(self.line, f"expected {width} cells as in the header, found {len(cells)}")
                    )
                self.line = reader.line_num + 1
        except UnicodeDecodeError as exc:
            self.problems.add(Problem(self._locate_decode_error(self.line), self._decode_message(exc)))
        except csv.Error as exc:
            self.problems.add(Problem(self.line, f"the row cannot be read as CSV: {exc}"))
        except LineTooLong as exc:
            self.problems.add(exc.problem())
        finally:
            self._release()
