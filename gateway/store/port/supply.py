"""Dated supply: the receipts of each SKU's supply schedule (docs/rules.md, "Dated supply and dated demand").

A SKU's schedule is its on-hand level (the stock row, StockRepository) plus its receipts, kept here. A snapshot
replaces both in one transaction; the stale rule is the stock row's (its `as_of` is the schedule's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
