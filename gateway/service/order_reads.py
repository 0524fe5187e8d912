"""Reading orders: one order with its lines, history and confirmations, and a partner's orders listed by status.

Whether a line allocates, and why, is the engine's own rule (`domain.allocation.line_allocation`, as `gateway ats
--explain` applies it), given the line's SKU's inventory timestamp: nothing here decides it again. The listing's
filters run in the store (`OrderRepository.find`): only the orders listed are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gateway.domain import allocation as rules
from gateway.domain.errors import UnknownOrder
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.domain.status import OrderStatus
from gateway.store.port import ConfirmationRecord, OrderEvent, OrderQuery, OrderRecord, Store, UnitOfWork

MAX_LISTED = 10_000  # orders one listing may show


@dataclass(frozen=True)
class LineView:
    """One line of an order, whether it allocates under the partner's mode, how many units and by which rule (or
    the rule that leaves it out). `inventory_at` is its SKU's inventory timestamp (None: never snapshotted)."""

    sku: str
    quantity: int
    assembly: str | None
    collection: str | None
    confirmed_quantity: int | None
    confirmed_at: Instant | None
    inventory_at: Instant | None
    allocates: bool
    units: int
    rule: str


@dataclass(frozen=True)
class OrderView:
    """An order, its lines as the rules see them; `updated_at` is when it reached its status."""

    order_id: str
    status: OrderStatus
    created_at: Instant
    updated_at: Instant
    lines: tuple[LineView, ...]

    @property
    def allocated(self) -> int:
        """Units its lines hold now."""
        return sum(line.units for line in self.lines)

    @property
    def allocates(self) -> bool:
        """Whether any of its lines allocates."""
        return any(line.allocates for line in self.lines)


@dataclass(frozen=True)
class OrderDetail:
    """One order read whole: its lines, each status it reached (oldest first) and the confirmations received."""

    order: OrderView
    mode: str
    history: tuple[OrderEvent, ...]
    confirmations: tuple[ConfirmationRecord, ...]


@dataclass(frozen=True)
class OrderFilter:
    """Which orders to list: in one of `statuses` (empty: any), only those with a line that allocates under the
    partner's mode (`allocating`), only those in their status for longer than `older_than` microseconds."""

    statuses: Sequence[OrderStatus] = ()
    allocating: bool = False
    older_than: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class OrderListing:
    """The orders listed, oldest status first, and whether the limit left others out."""

    mode: str
    orders: tuple[OrderView, ...]
    more: bool


def order(store: Store, partner: str, policy: Policy, order_id: str) -> OrderDetail:
    """Order `order_id` of `partner` read whole (UnknownOrder when the gateway does not hold it)."""
    with store.read() as tx:
        partner_id = tx.partners.id_of(partner)
        found = tx.orders.get(partner_id, order_id)
        if found is None:
            raise UnknownOrder(order_id)
        history = tx.orders.history(partner_id, order_id)
        if not history or history[-1].status != found.status:
            # a move no step was kept for (an older release moving orders while a newer one migrated the store):
            # the status it has, since it reached it, moved by nothing known
            history.append(OrderEvent(found.status, found.updated_at))
        view = _views(tx, partner_id, policy, [found])[0]
        confirmations = tuple(tx.orders.confirmations(partner_id, order_id))
    return OrderDetail(view, policy.mode.value, tuple(history), confirmations)


def orders(store: Store, partner: str, policy: Policy, wanted: OrderFilter, now: Instant) -> OrderListing:
    """The partner's orders `wanted` selects at `now`, oldest status first, at most `wanted.limit` of them."""
    statuses = frozenset(wanted.statuses or OrderStatus)
    if wanted.allocating:
        statuses &= rules.statuses_that_may_allocate(policy)
    limit = max(1, min(wanted.limit, MAX_LISTED))
    query = OrderQuery(
        statuses=statuses,
        updated_before=None if wanted.older_than is None else now - wanted.older_than,
        closed_unsettled=wanted.allocating,
        limit=limit + 1,  # one more, to tell whether the limit left some out
    )
    with store.read() as tx:
        partner_id = tx.partners.id_of(partner)
        found = tx.orders.find(partner_id, query)
        views = _views(tx, partner_id, policy, found[:limit])
    if wanted.allocating:  # the store narrowed the search; the rule decides
        views = [view for view in views if view.allocates]
    return OrderListing(policy.mode.value, tuple(views), more=len(found) > limit)


def _views(tx: UnitOfWork, partner_id: int, policy: Policy, found: Sequence[OrderRecord]) -> list[OrderView]:
    """The orders with each line's allocation under `policy`, at its SKU's inventory timestamp."""
    skus = sorted({line.sku for record in found for line in record.lines})
    stock = tx.stock.get(partner_id, skus) if skus else {}
    views: list[OrderView] = []
    for record in found:
        lines: list[LineView] = []
        for line in record.lines:
            held = stock.get(line.sku)
            inventory_at = None if held is None else held.as_of
            allocation = rules.line_allocation(policy, record.domain_line(line), inventory_at)
            lines.append(
                LineView(
                    # the stored line as it is (its demand date is not shown yet), then what the rules make of it
                    **{name: value for name, value in asdict(line).items() if name != "demand_on"},
                    inventory_at=inventory_at,
                    allocates=allocation.rule is not None,
                    units=allocation.units,
                    rule=allocation.rule or allocation.why_not or "",
                )
            )
        views.append(OrderView(record.order_id, record.status, record.created_at, record.updated_at, tuple(lines)))
    return views
