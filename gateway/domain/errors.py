"""Refusals: what the rules will not do, each saying what and why in one readable sentence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class Refusal(Exception):
    """A well-formed request that the rules refuse. Nothing of it is applied."""

    code = "refused"

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        """One readable sentence: what was refused and why."""
        raise NotImplementedError


class IllegalTransition(Refusal):
    """An order status change the lifecycle forbids."""

    code = "illegal_transition"

    def __init__(self, order_id: str, current: str, requested: str) -> None:
        super().__init__(order_id, current, requested)
        self.order_id = order_id
        self.current = current
        self.requested = requested

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


class InsufficientStock(Refusal):
    """A placement asking for more than the available-to-sell of one or more SKUs."""

    code = "insufficient_stock"

    def __init__(self, order_id: str, shortages: Sequence[Shortage]) -> None:
        super().__init__(order_id, tuple(shortages))
        self.order_id = order_id
        self.shortages = tuple(shortages)

    def message(self) -> str:
        parts = "; ".join(f"SKU {s.sku} wants {s.requested}, {max(0, s.available)} available" for s in self.shortages)
        return f"order {self.order_id} refused, not enough available to sell: {parts}"


class UnknownOrder(Refusal):
    """A status change or confirmation for an order the gateway does not hold."""

    code = "unknown_order"

    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id

    def message(self) -> str:
        return f"order {self.order_id} is unknown"


class UnknownLine(Refusal):
    """A confirmation or status row naming a SKU the order does not hold."""

    code = "unknown_line"

    def __init__(self, order_id: str, sku: str) -> None:
        super().__init__(order_id, sku)
        self.order_id = order_id
        self.sku = sku

    def message(self) -> str:
        return f"order {self.order_id} holds no line for SKU {self.sku}"


class OrderExists(Refusal):
    """A placement reusing the id of an order already held."""

    code = "order_exists"

    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id

    def message(self) -> str:
        return f"order {self.order_id} already exists; placing it again is refused"


class LineMismatch(Refusal):
    """A status row for an existing order whose quantity differs from the order's line."""

    code = "line_mismatch"

    def __init__(self, order_id: str, sku: str, given: int, held: int) -> None:
        super().__init__(order_id, sku, given, held)
        self.order_id = order_id
        self.sku = sku
        self.given = given
        self.held = held

    def message(self) -> str:
        return (
            f"order {self.order_id}, SKU {self.sku}: quantity {self.given} differs from the order's {self.held} "
            f"(status updates do not change quantities)"
        )


class InvalidOrder(Refusal):
    """An order whose lines contradict each other."""

    code = "invalid_order"

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(order_id, reason)
        self.order_id = order_id
        self.reason = reason

    def message(self) -> str:
        return f"order {self.order_id} refused: {self.reason}"
