"""Order statuses and the legal moves between them."""

from __future__ import annotations

from enum import StrEnum

from gateway.domain.errors import IllegalTransition


class OrderStatus(StrEnum):
    """pending -> confirmed -> invoicing -> closed, and cancelled from any of the first three."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    INVOICING = "invoicing"
    CLOSED = "closed"
    CANCELLED = "cancelled"


_FORWARD_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.CONFIRMED: 1,
    OrderStatus.INVOICING: 2,
    OrderStatus.CLOSED: 3,
}

FINAL = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED})
OPEN = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.INVOICING})


def parse_status(text: str) -> OrderStatus:
    """Return the status named by `text` (case and surrounding space ignored); ValueError otherwise."""
    try:
        return OrderStatus(text.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in OrderStatus)
        raise ValueError(f"unknown status {text!r} (expected one of {names})") from None


def is_legal(current: OrderStatus, requested: OrderStatus) -> bool:
    """Whether an order in `current` may be set to `requested`.

    The same status again is legal (idempotent); a move forward may skip steps; nothing moves backwards or
    out of closed or cancelled; cancelled is reachable from pending, confirmed and invoicing.
    """
    if requested == current:
        return True
    if current in FINAL:
        return False
    if requested == OrderStatus.CANCELLED:
        return True
    return _FORWARD_RANK[requested] > _FORWARD_RANK[current]


def check_transition(order_id: str, current: OrderStatus, requested: OrderStatus) -> None:
    """Raise IllegalTransition, naming the order and both statuses, when the move is not legal."""
    if not is_legal(current, requested):
        raise IllegalTransition(order_id, current.value, requested.value)
