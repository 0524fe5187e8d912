"""A streaming CSV table: delimiter detection, encodings, BOM, a required header, configurable names.

Rows are read one at a time from the open file: memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from gateway.formats.problems import Malformed, Problem, Problems

DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class CsvOptions:
    """How one partner writes one kind of file."""

    delimiter: str | None = None  # None: detected from the header row
    encoding: str = "utf-8"
    columns: Mapping[str, str] = field(default_factory=dict)  # field name -> header name in the file


def detect_delimiter(header: str) -> str:
    """The candidate delimiter that occurs most in the header row (a comma when none does)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _describe_decode_error(exc: UnicodeDecodeError, encoding: str) -> str:
    bad = exc.object[exc.start : exc.start + 1].hex()
    return f"not valid {encoding} text (byte 0x{bad}); declare the file's encoding in the partner's settings"


class CsvTable:
    """Rows of one CSV file as lists of cells, with the header resolved to column indexes.

    Iterating yields (line number, cells) for each non-blank row. Problems of shape (a row with more or
    fewer cells than the header, undecodable bytes, broken quoting) are added to `problems`; undecodable
    bytes and broken quoting end the iteration, because nothing after them can be trusted.
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
        self._encoding_name = options.encoding
        self._physical_line = 0
        lines = self._decoded(stream, encoding)
        try:
            first = next(lines, "")
        except UnicodeDecodeError as exc:
            raise Malformed(Problem(1, _describe_decode_error(exc, options.encoding))) from None
        if not first.strip():
            raise Malformed(Problem(1, "the file is empty or has no header row"))
        self.delimiter = options.delimiter or detect_delimiter(first.rstrip("\r\n"))
        self._reader = csv.reader(itertools.chain([first], lines), delimiter=self.delimiter, strict=True)
        try:
            header = next(self._reader)
        except csv.Error as exc:
            raise Malformed(Problem(1, f"the header row cannot be read: {exc}")) from None
        except UnicodeDecodeError as exc:
            raise Malformed(Problem(self._physical_line, _describe_decode_error(exc, options.encoding))) from None
        self.header = [cell.strip() for cell in header]
        self.width = len(self.header)
        self.index = self._resolve(required, optional, options.columns)

    def _decoded(self, stream: BinaryIO, encoding: str) -> Iterator[str]:
        """Decode line by line, so an undecodable byte is reported on its own line."""
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        for raw in stream:
            self._physical_line += 1
            yield decoder.decode(raw)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

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
        reader = self._reader
        width = self.width
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                self.problems.add(Problem(self._physical_line, _describe_decode_error(exc, self._encoding_name)))
                return
            except csv.Error as exc:
                self.problems.add(Problem(reader.line_num, f"the row cannot be read as CSV: {exc}"))
                return
            if len(cells) != width:
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # a blank line
                self.problems.add(
                    Problem(reader.line_num, f"expected {width} cells as in the header, found {len(cells)}")
                )
                continue
            yield reader.line_num, cells
