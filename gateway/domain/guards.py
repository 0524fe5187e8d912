"""Guards at the edges: ordinary partner mistakes the rules refuse before they can publish a wrong ATS.

Each is one row's refusal, never the whole item's: a mistyped order id in a closing row, a level or confirmation
stamped in the future, a confirmation above what was ordered.
"""

from __future__ import annotations

from gateway.domain import instant
from gateway.domain.errors import ConfirmedAboveOrdered, FutureTimestamp, UnknownOrder
from gateway.domain.instant import Instant
from gateway.domain.status import OrderStatus

# The statuses a row may place an order it names for the first time in: an order the platform has not seen
# cannot have been invoiced, closed or cancelled, so such a row names another order (a typo) or a lost one.
PLACING = frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED})

MICROSECONDS = 1_000_000


def check_new_order_status(order_id: str, status: OrderStatus) -> None:
    """Raise UnknownOrder when a row for an order the gateway does not hold asks for a status it cannot start in."""
    if status not in PLACING:
        raise UnknownOrder(order_id, status.value)


def skew_of(seconds: float) -> Instant:
    """A partner's `max_clock_skew` (seconds) as a span of instants (microseconds)."""
    return round(seconds * MICROSECONDS)


def is_future(stamp: Instant, now: Instant, max_skew: Instant) -> bool:
    """Whether `stamp` is more than `max_skew` after `now` (exactly `max_skew` ahead is still taken)."""
    return stamp - now > max_skew


def future(field: str, stamp: Instant, now: Instant, max_skew: Instant) -> FutureTimestamp:
    """The refusal of a `field` stamped at `stamp`, too far after `now`."""
    return FutureTimestamp(field, _iso(stamp), _iso(now), max_skew / MICROSECONDS)


def check_not_future(field: str, stamp: Instant, now: Instant, max_skew: Instant) -> None:
    """Raise FutureTimestamp when `stamp` is more than `max_skew` after the gateway's clock `now`."""
    if is_future(stamp, now, max_skew):
        raise future(field, stamp, now, max_skew)


def check_confirmed_quantity(order_id: str, sku: str, confirmed: int, ordered: int, *, allow_above: bool) -> None:
    """Raise ConfirmedAboveOrdered when `confirmed` exceeds the line's `ordered` quantity, unless allowed."""
    if confirmed > ordered and not allow_above:
        raise ConfirmedAboveOrdered(order_id, sku, confirmed, ordered)


def _iso(stamp: Instant) -> str:
    return instant.to_iso(stamp) or ""
