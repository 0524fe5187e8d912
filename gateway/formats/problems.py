"""What is wrong with an inbound item, row by row, in words brand IT can act on."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LISTED = 1000  # a report lists this many problems, then counts the rest


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where (line number, column) and what; a row the rules refused names the
    refusal's code as its `reason` (`unknown_order`, `future_timestamp`...), for a reader that sorts by it."""

    line: int | None
    message: str
    column: str | None = None
    unit: str = "line"  # "item" in an API page: the item's position in the page, from 1
    reason: str | None = None  # the code of the rule that refused the row; None for a malformed row

    def describe(self) -> str:
        """One readable line."""
        where = f"{self.unit} {self.line}" if self.line is not None else "file" if self.unit == "line" else "page"
        column = f", {'column' if self.unit == 'line' else 'field'} {self.column}" if self.column else ""
        reason = f" [{self.reason}]" if self.reason is not None else ""
        return f"{where}{column}:{reason} {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON-ready data (with its `reason` when a rule refused it)."""
        if self.unit == "line":
            data: dict[str, object] = {"line": self.line, "column": self.column, "message": self.message}
        else:
            data = {"item": self.line, "field": self.column, "message": self.message}
        if self.reason is not None:
            data["reason"] = self.reason
        return data


class Problems:
    """An append-only list of problems that keeps the first MAX_LISTED and counts the rest."""

    def __init__(self) -> None:
        self.listed: list[Problem] = []
        self.total = 0

    def add(self, problem: Problem) -> None:
        """Record one problem."""
        self.total += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(problem)

    def __bool__(self) -> bool:
        return self.total > 0

    def __len__(self) -> int:
        return self.total

    @property
    def unlisted(self) -> int:
        """Problems counted but not listed."""
        return self.total - len(self.listed)


class Malformed(Exception):
    """The file cannot be read at all (no header, missing columns, wrong encoding at the start)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.describe())
        self.problem = problem
