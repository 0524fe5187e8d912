"""Allocation, available-to-sell, stock movements and placement checks, per docs/rules.md."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.domain import instant
from gateway.domain.errors import InsufficientStock, Shortage
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy, StockMode
from gateway.domain.status import OrderStatus


@dataclass(frozen=True)
class Line:
    """One order line as the allocation rules see it: the order's status applies to the line."""

    order_id: str
    sku: str
    quantity: int
    status: OrderStatus
    confirmed_quantity: int | None = None
    confirmed_at: Instant | None = None


@dataclass(frozen=True)
class Allocation:
    """How many units one line holds, and the rule that makes it count (None when it holds nothing)."""

    units: int
    rule: str | None


_NONE = Allocation(0, None)


def line_allocation(policy: Policy, line: Line, inventory_at: Instant | None) -> Allocation:  # noqa: PLR0911 - one return per rule of docs/rules.md reads best
    """Return the units `line` allocates under `policy`, given the SKU's inventory timestamp."""
    status = line.status
    if status == OrderStatus.CANCELLED:
        return _NONE
    if policy.mode == StockMode.SIMPLE:
        if status == OrderStatus.PENDING and policy.pending_allocation:
            return Allocation(line.quantity, "pending line, pending_allocation on")
        return _NONE
    units, quantity_note = line.quantity, "ordered"
    if policy.uses_confirmations and line.confirmed_quantity is not None:
        units, quantity_note = line.confirmed_quantity, "confirmed"
    if status != OrderStatus.CLOSED:
        return Allocation(units, f"{status.value} line ({quantity_note} quantity)")
    if not policy.closed_may_allocate:
        return _NONE
    if line.confirmed_at is None:
        return Allocation(units, "closed line, not yet confirmed by the partner")
    if inventory_at is None:
        return Allocation(units, "closed line, the SKU has had no snapshot yet")
    if line.confirmed_at > inventory_at:
        return Allocation(
            units,
            f"closed line confirmed at {instant.to_iso(line.confirmed_at)}, "
            f"after the inventory timestamp {instant.to_iso(inventory_at)}",
        )
    return _NONE


def allocated(policy: Policy, lines: Iterable[Line], inventory_at: Instant | None) -> int:
    """Return the units of one SKU held by `lines`."""
    return sum(line_allocation(policy, line, inventory_at).units for line in lines)


def available(stock: int, allocation: int) -> int:
    """Available-to-sell: stock level minus allocation. May be negative (oversold)."""
    return stock - allocation


def oversold(stock: int, allocation: int) -> bool:
    """Whether a SKU's stock level is below its allocation (its ATS negative): more is promised than is held."""
    return stock < allocation


def published(ats: int) -> int:
    """The ATS value shown to partners and customers: never negative."""
    return max(0, ats)


def stock_movement(policy: Policy, current: OrderStatus, requested: OrderStatus, quantity: int) -> int:
    """Units the platform adds to (positive) or takes from (negative) stock when a line changes status.

    Only simple mode moves stock: leaving pending for confirmed, invoicing or closed takes the quantity;
    cancelling a confirmed or invoicing line gives it back; everything else moves nothing.
    """
    if not policy.moves_stock or current == requested:
        return 0
    if current == OrderStatus.PENDING and requested in (
        OrderStatus.CONFIRMED,
        OrderStatus.INVOICING,
        OrderStatus.CLOSED,
    ):
        return -quantity
    if current in (OrderStatus.CONFIRMED, OrderStatus.INVOICING) and requested == OrderStatus.CANCELLED:
        return quantity
    return 0


def is_stale(row_as_of: Instant, inventory_at: Instant | None) -> bool:
    """A stock row older than the SKU's inventory timestamp is stale; equal timestamps re-apply."""
    return inventory_at is not None and row_as_of < inventory_at


def snapshot_predates_movement(policy: Policy, row_as_of: Instant, last_moved_at: Instant | None) -> bool:
    """Simple mode: a snapshot older than the last confirmation the platform applied may miss it.

    The seed warns such a snapshot puts back on sale what is already sold; the gateway warns, and applies it.
    """
    return policy.moves_stock and last_moved_at is not None and row_as_of < last_moved_at


def check_placement(order_id: str, lines: Mapping[str, int], ats: Mapping[str, int]) -> None:
    """Refuse the whole order when any line asks for more than its SKU's ATS (a SKU never stocked has 0)."""
    shortages = [
        Shortage(sku, quantity, ats.get(sku, 0))
        for sku, quantity in sorted(lines.items())
        if quantity > ats.get(sku, 0)
    ]
    if shortages:
        raise InsufficientStock(order_id, tuple(shortages))
