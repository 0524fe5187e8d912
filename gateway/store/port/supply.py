"""Dated supply: the receipts of each SKU's supply schedule (docs/rules.md, "Dated supply and dated demand").

A SKU's schedule is its on-hand level (the stock row, StockRepository) plus its receipts, kept here. A snapshot
replaces both in one transaction; the stale rule is the stock row's (its `as_of` is the schedule's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Protocol

from gateway.domain.atp import Receipts  # (available_from, units), in date order, one per date


class SupplyRepository(Protocol):
    """Receipts per (partner, SKU, date). The caller decides what replaces what; the store keeps what it is given."""

    def holds(self, partner_id: int) -> bool:
        """Whether the partner has any receipt at all (a partner that sends no dates never has one)."""
        ...

    def skus(self, partner_id: int) -> set[str]:
        """Every SKU of the partner that has a receipt (a snapshot zeroing the SKUs it omits clears theirs)."""
        ...

    def receipts(self, partner_id: int, skus: Sequence[str]) -> dict[str, Receipts]:
        """The receipts of the given SKUs that have any, each in date order."""
        ...

    def replace(self, partner_id: int, schedules: Mapping[str, Receipts]) -> None:
        """Make each SKU's receipts exactly those given (none: the SKU has no receipt any more)."""
        ...

    def dated(self, partner_id: int, sku: str) -> tuple[Receipts, Receipts]:
        """One SKU's receipts and its dated demand ((date, units) of the dated lines of open orders), each in date
        order: what a placement's ATP check reads, O(dates)."""
        ...

    def demand(self, partner_id: int, skus: Sequence[str]) -> dict[str, Receipts]:
        """The dated demand (date, units) of the given SKUs that have any, each in date order."""
        ...

    def move_demand(self, partner_id: int, changes: Mapping[tuple[str, date], int]) -> None:
        """Add units to each (SKU, date)'s dated demand (negative: given back), in the transaction that moves the
        lines' allocations."""
        ...

    def replace_demand(self, partner_id: int, rows: Iterable[tuple[str, date, int]]) -> None:
        """Make the partner's dated demand exactly `rows` (SKU, date, units), summed by (SKU, date)."""
        ...
