"""SKUs that become oversold (a stock level below the allocation) while the engine applies one item or command.

A SKU's published ATS is never negative, so a snapshot that lowers the level below what is allocated, or a
confirmation or status move that raises the allocation above the level, would otherwise pass unseen: the SKU just
shows 0. The engine tells a Watch the state of each stock row it reads and of each row it writes; the Watch keeps,
for every SKU whose state flipped, its state at the start and its last level and allocation. A SKU is reported once
per item when it was not oversold at the start and is at the end, however many rows moved it in between; the caller
logs the report (`oversold`, a warning) once the item's transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from structlog.typing import FilteringBoundLogger

from gateway.domain import allocation as rules
from gateway.store.port import StockRecord

TRACKED = 10_000  # SKUs whose state flipped, followed exactly in one item; beyond, only counted
LOGGED = 100  # `oversold` events of one item; beyond, one `oversold_unlisted` event counts the rest


class Oversold(NamedTuple):
    """A SKU now oversold: its stock level and its allocation."""

    sku: str
    quantity: int
    allocated: int


@dataclass(frozen=True)
class OversoldReport:
    """The SKUs an item or a command made oversold (by SKU), and how many more it made that were not followed."""

    skus: tuple[Oversold, ...] = ()
    unlisted: int = 0

    def __bool__(self) -> bool:
        return bool(self.skus) or self.unlisted > 0


class Watch:
    """Follows the oversold state of the stock rows the engine reads and writes, for one item or command."""

    def __init__(self) -> None:
        self._read: dict[str, bool] = {}  # state when read, for rows read and not yet written
        self._flipped: dict[str, tuple[bool, int, int]] = {}  # sku -> (state at the start, level, allocation)
        self._unlisted = 0

    def seen(self, records: Iterable[StockRecord]) -> None:
        """Rows as read from the store, before the engine changes them."""
        for record in records:
            if record.sku not in self._flipped:
                # not flipped so far in this item: its state now is its state at the start
                self._read[record.sku] = rules.oversold(record.quantity, record.allocated)

    def saved(self, records: Iterable[StockRecord]) -> None:
        """Rows as written: a SKU whose state differs from the one it was read with has flipped."""
        for record in records:
            sku, now = record.sku, rules.oversold(record.quantity, record.allocated)
            first = self._flipped.get(sku)
            if first is not None:
                self._flipped[sku] = (first[0], record.quantity, record.allocated)
                continue
            was = self._read.pop(sku, now)
            if was == now:
                continue
            if len(self._flipped) < TRACKED:
                self._flipped[sku] = (was, record.quantity, record.allocated)
            elif now:
                self._unlisted += 1

    def merged(self, listed: Sequence[tuple[str, int, int]], count: int) -> None:
        """A set-based merge made `count` SKUs oversold that were not (`listed`: the first of them, with their new
        level and allocation); nothing else moved them in this item."""
        for sku, quantity, allocated in listed:
            if len(self._flipped) < TRACKED:
                self._flipped[sku] = (False, quantity, allocated)
            else:
                self._unlisted += 1
        self._unlisted += max(0, count - len(listed))

    def report(self) -> OversoldReport:
        """The SKUs not oversold at the start and oversold now, by SKU."""
        skus = tuple(
            Oversold(sku, quantity, allocated)
            for sku, (was, quantity, allocated) in sorted(self._flipped.items())
            if not was and rules.oversold(quantity, allocated)
        )
        return OversoldReport(skus, self._unlisted)


def log_oversold(report: OversoldReport, bound: FilteringBoundLogger) -> None:
    """One `oversold` warning per SKU the item made oversold (the first LOGGED), then one `oversold_unlisted`
    counting the rest; `bound` carries the partner."""
    for found in report.skus[:LOGGED]:
        bound.warning(
            "oversold",
            sku=found.sku,
            quantity=found.quantity,
            allocated=found.allocated,
            hint="the stock level is below the allocation: ATS is published as 0 and some orders cannot be served",
        )
    more = max(0, len(report.skus) - LOGGED) + report.unlisted
    if more:
        bound.warning("oversold_unlisted", skus=more)
