"""The three stock modes of seed 004 and a partner's policy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StockMode(StrEnum):
    """How a partner's available-to-sell is computed (docs/rules.md, 'The three stock modes')."""

    SIMPLE = "simple"
    ADVANCED = "advanced"
    TIME_BASED = "time_based"


@dataclass(frozen=True)
class Policy:
    """A partner's stock mode; `pending_allocation` only matters in simple mode."""

    mode: StockMode
    pending_allocation: bool = True

    @property
    def moves_stock(self) -> bool:
        """Whether the platform itself moves stock levels on confirmation and cancellation."""
        return self.mode == StockMode.SIMPLE

    @property
    def uses_confirmations(self) -> bool:
        """Whether confirmed quantities move ATS (they are stored in every mode)."""
        return self.mode == StockMode.TIME_BASED

    @property
    def closed_may_allocate(self) -> bool:
        """Whether a closed line can still allocate (until the partner's snapshot includes it)."""
        return self.mode == StockMode.TIME_BASED
