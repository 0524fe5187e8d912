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
    """A status change or confirmation for an order the gateway does not hold.

    `status`: the status an `orders` row asked an unknown order to be placed in, when it was not one an order
    may start in (a `closed` row for a mistyped id must not create a closed order)."""

    code = "unknown_order"

    def __init__(self, order_id: str, status: str | None = None) -> None:
        super().__init__(order_id, status)
        self.order_id = order_id
        self.status = status

    def message(self) -> str:
        if self.status is None:
            return f"order {self.order_id} is unknown"
        return (
            f"order {self.order_id} is unknown, and a row places a new order only as pending or confirmed, "
            f"not {self.status} (a mistyped order id?)"
        )


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


class FutureTimestamp(Refusal):
    """A stock level or confirmation stamped further ahead of the gateway's clock than the partner's skew allows.

    Taken, a level stamped in 2030 would make every later snapshot of its SKU stale until 2030."""

    code = "future_timestamp"

    def __init__(self, field: str, stamp: str, now: str, skew_seconds: float) -> None:
        super().__init__(field, stamp, now, skew_seconds)
        self.field = field
        self.stamp = stamp
        self.now = now
        self.skew_seconds = skew_seconds

    def message(self) -> str:
        return (
            f"{self.field} {self.stamp} is in the future: more than max_clock_skew ({self.skew_seconds:g} s) "
            f"ahead of the gateway's clock ({self.now}); not applied"
        )


class ConfirmedAboveOrdered(Refusal):
    """A confirmed quantity above the line's ordered quantity, from a partner that does not allow it."""

    code = "confirmed_above_ordered"

    def __init__(self, order_id: str, sku: str, confirmed: int, ordered: int) -> None:
        super().__init__(order_id, sku, confirmed, ordered)
        self.order_id = order_id
        self.sku = sku
        self.confirmed = confirmed
        self.ordered = ordered

    def message(self) -> str:
        return (
            f"order {self.order_id}, SKU {self.sku}: confirmed quantity {self.confirmed} is above the "
            f"{self.ordered} ordered (allow_over_confirmation = true accepts it for this partner)"
        )
