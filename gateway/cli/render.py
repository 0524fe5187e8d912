"""Output shared by several commands: the ATS changes a command made, its warnings, and the progress line of a
long ingest."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO, TypeVar

from gateway.cli.errors import Refused
from gateway.cli.terminal import echo
from gateway.domain import identifiers
from gateway.domain.errors import Refusal

if TYPE_CHECKING:
    from gateway.service.items import ItemWarning
    from gateway.service.snapshots import AtsChange

_T = TypeVar("_T")


def print_changes(changes: Sequence[AtsChange], stream: TextIO | None = None) -> None:
    """One line per SKU whose ATS changed, by SKU: `ATS sku: before -> after` (before `-` for a new SKU)."""
    for change in sorted(changes, key=lambda c: c.sku):
        before = "-" if change.before is None else str(change.before)
        echo(f"  ATS {change.sku}: {before} -> {change.after}", file=stream)


def print_warnings(warnings: Sequence[ItemWarning]) -> None:
    """Each warning of what a command or a file applied, on stderr: `gateway: warning: CODE: what` (exit 0)."""
    for warning in warnings:
        echo(f"gateway: warning: {warning.code}: {warning.message()}", err=True)


def ran(action: Callable[[], _T]) -> _T:
    """Run one command of the commands service; a refusal by the rules ends the command (exit 1)."""
    try:
        return action()
    except Refusal as refusal:
        raise Refused(str(refusal)) from refusal


def run_and_show(action: Callable[[], Sequence[AtsChange]]) -> None:
    """Run one command of the commands service and print the ATS changes it made; a refusal by the rules ends
    the command (exit 1)."""
    print_changes(ran(action))


class ProgressLine:
    """Rows read and rows per second on one self-rewriting line of a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO, label: str, enabled: bool) -> None:
        self.stream = stream
        self.label = identifiers.escape_controls(label)  # a file name may hold anything
        self.enabled = enabled and stream.isatty()
        self.started = time.perf_counter()
        self.drawn = False

    def __call__(self, rows: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.stream.write(f"\r{self.label}: {rows:,} rows read, {rows / elapsed:,.0f} rows/s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the line, if one was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
