"""Refusals: what the rules will not do, each saying what and why in one readable sentence."""

from __future__ import annotations

from dataclasses import dataclass


class Refusal(Exception):
    """A well-formed request that the rules refuse. Nothing of it is applied.

    Each refusal is a dataclass of what it refuses (`eq=False`: an exception is itself, not equal to another)."""

    code = "refused"

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        """One readable sentence: what was refused and why."""
        raise NotImplementedError


@dataclass(eq=False)
class IllegalTransition(Refusal):
    """An order status change the lifecycle forbids."""

    code = "illegal_transition"
    order_id: str
    current: str
    requested: str

    def message(self) -> str:
        return (
            f"order {self.order_id}: cannot move from {self.current} to {self.requested} "
            f"(statuses only move forward, and never out of closed or cancelled)"
        )


@dataclass(frozen=True)
class Shortage:
    """One line asking for more than is available to sell."""

    sku: str
    requested: int
    available: int


@dataclass(eq=False)
class InsufficientStock(Refusal):
    """A placement asking for more than the available-to-sell of one or more SKUs."""

    code = "insufficient_stock"
    order_id: str
    shortages: tuple[Shortage, ...]

    def message(self) -> str:
        parts = "; ".join(f"SKU {s.sku} wants {s.requested}, {max(0, s.available)} available" for s in self.shortages)
        return f"order {self.order_id} refused, not enough available to sell: {parts}"


@dataclass(eq=False)
class UnknownOrder(Refusal):
    """A status change or confirmation for an order the gateway does not hold."""

    code = "unknown_order"
    order_id: str

    def message(self) -> str:
        return f"order {self.order_id} is unknown"


@dataclass(eq=False)
class UnknownLine(Refusal):
    """A confirmation or status row naming a SKU the order does not hold."""

    code = "unknown_line"
    order_id: str
    sku: str

    def message(self) -> str:
        return f"order {self.order_id} holds no line for SKU {self.sku}"


@dataclass(eq=False)
class OrderExists(Refusal):
    """A placement reusing the id of an order already held."""

    code = "order_exists"
    order_id: str

    def message(self) -> str:
        return f"order {self.order_id} already exists; placing it again is refused"


@dataclass(eq=False)
class LineMismatch(Refusal):
    """A status row for an existing order whose quantity differs from the order's line."""

    code = "line_mismatch"
    order_id: str
    sku: str
    given: int
    held: int

    def message(self) -> str:
        return (
            f"order {self.order_id}, SKU {self.sku}: quantity {self.given} differs from the order's {self.held} "
            f"(status updates do not change quantities)"
        )


@dataclass(eq=False)
class InvalidOrder(Refusal):
    """An order whose lines contradict each other."""

    code = "invalid_order"
    order_id: str
    reason: str

    def message(self) -> str:
        return f"order {self.order_id} refused: {self.reason}"
