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
    """A status change or confirmation for an order the gateway does not hold.

    `status`: the status an `orders` row asked an unknown order to be placed in, when it was not one an order
    may start in (a `closed` row for a mistyped id must not create a closed order)."""

    code = "unknown_order"
    order_id: str
    status: str | None = None

    def message(self) -> str:
        if self.status is None:
            return f"order {self.order_id} is unknown"
        return (
            f"order {self.order_id} is unknown, and a row places a new order only as pending or confirmed, "
            f"not {self.status} (a mistyped order id?)"
        )


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
