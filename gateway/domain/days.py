"""Dates in a partner's time zone: receipt dates, the date a line is demand for, collection windows.

Available-to-promise works by calendar date in the partner's zone (a collection picks up on a Friday, a receipt
arrives on the 15th). Instants stay instants (gateway.domain.instant); these helpers turn them into the partner's
dates, and say when a collection takes orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, tzinfo

from gateway.domain import instant
from gateway.domain.errors import Refusal
from gateway.domain.instant import Instant


def day_of(moment: Instant, zone: tzinfo) -> date:
    """The partner's calendar date at `moment`."""
    return instant.to_datetime(moment).astimezone(zone).date()


def parse_day(text: str, zone: tzinfo) -> date:
    """Read an `available_from` or `wanted_on` cell: a date (`2026-12-15`), or an instant, whose date in the
    partner's zone counts (one without an offset is read in that zone).

    Raises ValueError with a readable message when `text` is neither.
    """
    cleaned = text.strip()
    if len(cleaned) == 10:  # YYYY-MM-DD: a plain date, no zone to apply
        try:
            return date.fromisoformat(cleaned)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or timestamp: {text!r}") from None
    try:
        return day_of(instant.parse(cleaned, zone), zone)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or timestamp: {text!r}") from None


def today(now: Instant, zone: tzinfo) -> date:
    """The partner's date now."""
    return day_of(now, zone)


def from_today(day: date, today: date) -> date:
    """Dates before today count as today: a receipt dated in the past is on hand, a line wanted in the past is
    demand today."""
    return max(day, today)


def demand_day(pickup_on: date | None, wanted_on: date | None, today: date) -> date:
    """The date an order line is demand for: its collection's pickup date, else the order's `wanted_on`, else
    today; never before today."""
    chosen = pickup_on if pickup_on is not None else wanted_on
    return today if chosen is None else from_today(chosen, today)


@dataclass(frozen=True)
class CollectionDates:
    """A collection's optional dates: it takes orders from `opens_at` (inclusive) until `closes_at` (exclusive),
    and its lines are demand on `pickup_on`. A missing bound leaves that side open."""

    opens_at: Instant | None = None
    closes_at: Instant | None = None
    pickup_on: date | None = None

    def is_open(self, now: Instant) -> bool:
        """Whether the collection takes orders at `now`: opens_at <= now < closes_at. "Ongoing" collections (the
        caps rules) are those open now."""
        if self.opens_at is not None and now < self.opens_at:
            return False
        return self.closes_at is None or now < self.closes_at


@dataclass(eq=False)
class CollectionClosed(Refusal):
    """An order placed in a collection outside its window: before it opens, or at or after it closes."""

    code = "collection_closed"
    order_id: str
    assembly: str
    collection: str
    dates: CollectionDates
    now: Instant

    def message(self) -> str:
        if self.dates.opens_at is not None and self.now < self.dates.opens_at:
            when = f"it opens at {instant.to_iso(self.dates.opens_at)}"
        else:
            when = f"it closed at {instant.to_iso(self.dates.closes_at)}"
        return (
            f"order {self.order_id} refused, collection {self.collection} of assembly {self.assembly} "
            f"does not take orders at {instant.to_iso(self.now)}: {when}"
        )


def check_collection_open(order_id: str, assembly: str, collection: str, dates: CollectionDates, now: Instant) -> None:
    """Refuse an order in a collection that is not open at `now` (`collection_closed`)."""
    if not dates.is_open(now):
        raise CollectionClosed(order_id, assembly, collection, dates, now)
