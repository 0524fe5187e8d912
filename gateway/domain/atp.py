"""Available-to-promise by date: dated supply against dated demand (docs/rules.md, "Dated supply and dated demand").

A SKU's supply is a schedule: units on hand now plus receipts that exist from a date on. Its demand is the units
its allocating lines hold, each on the date it is wanted. The cumulative balance on a date d is the supply up to d
minus the demand up to d; a line wanted on D fits when the balance of every date d >= D stays >= 0 with it added,
so the ATP on D is the smallest balance over D and every later date. Supply arriving after D can never serve a
line for D, and a line for D never takes what a later line was already promised.

Dates are the partner's calendar dates (gateway.domain.days). Dates before today count as today: a receipt dated
in the past is on hand and a line wanted in the past is demand today. These functions scan the schedule, O(dates):
they are the rules as written and the explanation; gateway.domain.balance answers the same question in O(log n)
for placements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from gateway.domain import caps
from gateway.domain.allocation import Line, is_stale, line_allocation, published
from gateway.domain.balance import CumulativeBalance
from gateway.domain.days import from_today
from gateway.domain.errors import InsufficientStock, Shortage
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy

SCHEDULE_POINTS = 8  # the default of `delivery.schedule_points`: dates an ATS message carries at most
Receipts = tuple[tuple[date, int], ...]  # (date, units) in date order, one per date
ON_HAND_DAY = date.min  # where on-hand units sit in a balance: before every date, so on hand from today on


@dataclass(frozen=True)
class SupplyRow:
    """One row of a stock snapshot for one SKU: `units` on hand (no `available_from`) or from a date on."""

    units: int
    available_from: date | None = None


@dataclass(frozen=True)
class SupplySchedule:
    """A SKU's whole supply: on hand now, and receipts by date (sorted, one per date), as of the snapshot that set
    it (its inventory timestamp; None: never set by a snapshot)."""

    on_hand: int
    receipts: Receipts = ()
    as_of: Instant | None = None

    @property
    def dated(self) -> bool:
        """Whether any supply is dated: only then do ATS messages carry the schedule's next dates."""
        return bool(self.receipts)

    def moved(self, units: int) -> SupplySchedule:
        """Simple mode's movement (a confirmation takes, a cancellation gives back): on-hand units only, whatever
        the line's date; the receipts stay as the partner gave them."""
        return SupplySchedule(self.on_hand + units, self.receipts, self.as_of)

    def due_on_hand(self, today: date) -> SupplySchedule:
        """The schedule as kept from `today` on: receipts dated today or before are on hand (dates before today
        count as today), the later ones stay receipts. Same supply on every date from today on."""
        due = sum(units for day, units in self.receipts if day <= today)
        later = tuple((day, units) for day, units in self.receipts if day > today)
        return SupplySchedule(self.on_hand + due, later, self.as_of)

    def supply_by_day(self, today: date) -> dict[date, int]:
        """Units arriving per date from today on: today holds the on-hand units and every receipt up to today."""
        supply = {today: self.on_hand}
        for day, units in self.receipts:
            key = from_today(day, today)
            supply[key] = supply.get(key, 0) + units
        return supply


def schedule_from_rows(rows: Iterable[SupplyRow], as_of: Instant | None) -> SupplySchedule:
    """The schedule one snapshot gives a SKU: its undated rows are on hand, its dated rows are receipts merged by
    date (two rows on one date add up; a SKU with dated rows only has nothing on hand)."""
    on_hand = 0
    receipts: dict[date, int] = {}
    for row in rows:
        if row.available_from is None:
            on_hand += row.units
        else:
            receipts[row.available_from] = receipts.get(row.available_from, 0) + row.units
    return SupplySchedule(on_hand, tuple(sorted(receipts.items())), as_of)


def apply_snapshot(current: SupplySchedule | None, replacement: SupplySchedule) -> SupplySchedule | None:
    """A snapshot replaces the SKU's whole schedule (on hand and every receipt), unless it is stale: older than
    the SKU's inventory timestamp, the rule of today's level (`allocation.is_stale`). Returns the schedule in force
    after it, or None when the snapshot is stale and `current` stays."""
    if replacement.as_of is not None and current is not None and is_stale(replacement.as_of, current.as_of):
        return None
    return replacement


def demand_by_day(lines: Iterable[tuple[date, int]], today: date) -> dict[date, int]:
    """Units wanted per date (from today on): each (date, units) of an allocating line."""
    demand: dict[date, int] = {}
    for day, units in lines:
        key = from_today(day, today)
        demand[key] = demand.get(key, 0) + units
    return demand


def allocating_demand(
    policy: Policy, lines: Iterable[tuple[Line, date]], inventory_at: Instant | None, today: date
) -> dict[date, int]:
    """The demand of a SKU's lines, each on its date, by the allocation rules of the partner's mode."""
    return demand_by_day(((day, line_allocation(policy, line, inventory_at).units) for line, day in lines), today)


@dataclass(frozen=True)
class DayBalance:
    """One date of the schedule: units arriving, units wanted, and the cumulative balance up to it."""

    day: date
    supply: int
    demand: int
    balance: int


@dataclass(frozen=True)
class Explanation:
    """Why the ATP on `on` is what it is: every date from today on, and the date (on or after `on`) whose
    cumulative balance is the smallest, the earliest of them on a tie."""

    on: date
    atp: int
    days: tuple[DayBalance, ...]
    limiting: date


def explain(schedule: SupplySchedule, demand: Mapping[date, int], on: date, today: date) -> Explanation:
    """The schedule of a SKU from today on and its ATP on `on` (a date before today: today). The ATP may be
    negative when promises exceed the supply (a shrinking snapshot); it is published as max(0, ATP)."""
    on = from_today(on, today)
    supply = schedule.supply_by_day(today)
    wanted = demand_by_day(demand.items(), today)
    rows: list[DayBalance] = []
    balance = 0
    for day in sorted({today, on, *supply, *wanted}):
        arriving, taken = supply.get(day, 0), wanted.get(day, 0)
        balance += arriving - taken
        rows.append(DayBalance(day, arriving, taken, balance))
    limiting = min((row for row in rows if row.day >= on), key=lambda row: row.balance)
    return Explanation(on, limiting.balance, tuple(rows), limiting.day)


def atp(schedule: SupplySchedule, demand: Mapping[date, int], on: date, today: date) -> int:
    """Available-to-promise on `on`: the most a new line for that date may take (negative: over-promised).
    Without dates it is today's ATS: on hand minus every allocating line."""
    return explain(schedule, demand, on, today).atp


def fits(schedule: SupplySchedule, demand: Mapping[date, int], on: date, quantity: int, today: date) -> bool:
    """Whether a new line of `quantity` for `on` keeps every balance from `on` on at or above 0."""
    return quantity <= atp(schedule, demand, on, today)


@dataclass(frozen=True)
class SchedulePoint:
    """A date after today and the ATS published for it (max(0, ATP))."""

    day: date
    ats: int


def schedule_points(
    schedule: SupplySchedule, demand: Mapping[date, int], today: date, limit: int = SCHEDULE_POINTS
) -> tuple[SchedulePoint, ...]:
    """The next dates at which the published ATP changes, with its new value: at most `limit`, in date order.

    ATP only rises with the date (each later date has fewer balances to respect), and it changes only on a date
    of the schedule, so the points are the schedule's dates after today whose published ATP differs from the
    date before; today's value goes beside them. Without dated supply there is none: ATP is the same every day.
    """
    if not schedule.dated or limit <= 0:
        return ()
    rows = explain(schedule, demand, today, today).days
    lowest_from: list[int] = []
    for row in reversed(rows):
        lowest_from.append(min(row.balance, lowest_from[-1]) if lowest_from else row.balance)
    lowest_from.reverse()
    points: list[SchedulePoint] = []
    previous = published(lowest_from[0])
    for row, value in zip(rows[1:], lowest_from[1:], strict=True):
        shown = published(value)
        if shown != previous:
            points.append(SchedulePoint(row.day, shown))
            previous = shown
            if len(points) == limit:
                break
    return tuple(points)


def balance_of(schedule: SupplySchedule, demand: Mapping[date, int]) -> CumulativeBalance:
    """The incremental form of a SKU's schedule: keep it, add each placed line as `add(day, -units)` (and a
    removed one as `add(day, +units)`), ask `room(max(on, today))` for the ATP on `on`."""
    changes = [(ON_HAND_DAY, schedule.on_hand), *schedule.receipts, *((day, -units) for day, units in demand.items())]
    return CumulativeBalance(changes)


def channel_atp(atp_on_pickup: int, cap: int | None, ordered: int) -> int:
    """A dated collection's channel ATS: max(0, min(ATP on its pickup date, cap - units ordered in it))."""
    return caps.channel_ats(atp_on_pickup, cap, ordered)


@dataclass(frozen=True)
class DatedShortage(Shortage):
    """One line asking for more than is available to promise on its date `on`."""

    on: date


@dataclass(eq=False)
class NotAvailableOn(InsufficientStock):
    """A placement asking for more than the ATP of its lines' dates (the same code as any shortage)."""

    def message(self) -> str:
        parts = "; ".join(
            f"SKU {s.sku} wants {s.requested}{f' on {s.on}' if isinstance(s, DatedShortage) else ''}, "
            f"{max(0, s.available)} available"
            for s in self.shortages
        )
        return f"order {self.order_id} refused, not enough available to promise: {parts}"


def check_dated_placement(
    order_id: str, lines: Mapping[str, tuple[int, date]], balances: Mapping[str, CumulativeBalance], today: date
) -> None:
    """Refuse the whole order when a line (SKU -> (quantity, date)) asks for more than its SKU's ATP on its date;
    a SKU with no balance has nothing to promise."""
    shortages = []
    for sku, (quantity, day) in sorted(lines.items()):
        on = from_today(day, today)
        balance = balances.get(sku)
        room = balance.room(on) if balance is not None else 0
        if quantity > room:
            shortages.append(DatedShortage(sku, quantity, room, on))
    if shortages:
        raise NotAvailableOn(order_id, tuple(shortages))
