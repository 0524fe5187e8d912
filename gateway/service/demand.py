"""Dated demand in placements (docs/rules.md, "Dated supply and dated demand"): the date each line is demand for,
the ATP check of a placement that meets a date, and the per-date demand kept as lines' allocations move.

A placement meets a date when a line has one (its collection's `pickup_on`, or the order's `wanted_on`) or a SKU it
places has receipts or dated demand; then each line must fit the ATP on its date (NotAvailableOn, the code of any
shortage). Otherwise nothing here applies and the placement is checked against today's ATS, as before dates.

The per-date demand (`tx.supply.move_demand`) holds what the dated lines of open orders allocate; a SKU's undated
demand is its allocation minus that. A closed line is demand today whatever its date (its units are gone, the
snapshot has not counted them out yet), so it is never in the per-date demand. A placement reads a SKU's dates
(receipts and demand rows), never its lines: O(dates), whatever the number of open lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import NamedTuple

from gateway.domain import allocation as rules
from gateway.domain import atp, days
from gateway.domain.allocation import Line
from gateway.domain.balance import CumulativeBalance
from gateway.domain.modes import Policy
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OPEN
from gateway.store.port import StockRecord, UnitOfWork


def line_days(
    tx: UnitOfWork, partner_id: int, lines: Mapping[str, RequestedLine], wanted_on: date | None, today: date
) -> dict[str, date | None]:
    """Each SKU's demand date as stored: its collection's pickup date, else `wanted_on` (never before today);
    None for a line with neither (demand today)."""
    pickups: dict[tuple[str, str], date | None] = {}
    found: dict[str, date | None] = {}
    for sku, line in lines.items():
        pickup = None
        if line.assembly is not None and line.collection is not None:
            channel = (line.assembly, line.collection)
            if channel not in pickups:
                dates = tx.collections.get(partner_id, *channel)
                pickups[channel] = None if dates is None else dates.pickup_on
            pickup = pickups[channel]
        found[sku] = None if pickup is None and wanted_on is None else days.demand_day(pickup, wanted_on, today)
    return found


def check(
    tx: UnitOfWork,
    partner_id: int,
    order_id: str,
    quantities: Mapping[str, int],
    on: Mapping[str, date | None],
    stock: Mapping[str, StockRecord],
    today: date,
) -> Checked | None:
    """The ATP check of a placement that meets a date: each SKU's ATP on its line's date (what a channel check
    compares with), or NotAvailableOn raised; None when the placement meets no date (check today's ATS)."""
    balances: dict[str, CumulativeBalance] = {}
    holding: set[str] = set()
    meets_a_date = any(day is not None for day in on.values())
    for sku in quantities:
        receipts, demand = tx.supply.dated(partner_id, sku)
        meets_a_date = meets_a_date or bool(receipts) or bool(demand)
        balances[sku] = balance(stock[sku], receipts, demand)
        if receipts:
            holding.add(sku)
    if not meets_a_date:
        return None
    wanted = {sku: (quantity, on[sku] or today) for sku, quantity in quantities.items()}
    atp.check_dated_placement(order_id, wanted, balances, today)
    rooms = {sku: balances[sku].room(days.from_today(day, today)) for sku, (_, day) in wanted.items()}
    return Checked(rooms, {sku: balances[sku] for sku in holding})


class Checked(NamedTuple):
    """A dated placement's check: each SKU's ATP on its line's date, and the balances (as read, before the
    placement) of the SKUs holding receipts: add each placed line (`placed`) and they give today's ATS without
    reading the SKUs' dates again."""

    rooms: dict[str, int]
    balances: dict[str, CumulativeBalance]

    def placed(self, sku: str, day: date | None, units: int) -> None:
        """A line of `units` placed on `day` (None: undated, demand before every date, as `balance` counts it)."""
        found = self.balances.get(sku)
        if found is not None and units:
            found.add(atp.ON_HAND_DAY if day is None else day, -units)


def balance(record: StockRecord, receipts: atp.Receipts, demand: atp.Receipts) -> CumulativeBalance:
    """A SKU's cumulative balance: on hand less its undated demand (its allocation less the dated part) before
    every date, each receipt on its date, each date's demand on it."""
    dated = sum(units for _, units in demand)
    undated = record.allocated - dated
    changes = [(atp.ON_HAND_DAY, record.quantity - undated), *receipts, *((day, -units) for day, units in demand)]
    return CumulativeBalance(changes)


def today_balances(tx: UnitOfWork, partner_id: int, records: Iterable[StockRecord]) -> dict[str, CumulativeBalance]:
    """The cumulative balance of those of `records` whose SKU holds receipts (as the records stand now): their
    published ATS is the ATP today, `room(today)`. Empty without a look-up for a partner without receipts; else
    two keyed reads for the whole batch. A SKU without receipts needs none: with no later supply its ATP today is
    exactly level - allocation, whatever its lines' dates (the last date's balance is the smallest)."""
    if not tx.supply.holds(partner_id):
        return {}
    by_sku = {record.sku: record for record in records}
    receipts = tx.supply.receipts(partner_id, sorted(by_sku))
    if not receipts:
        return {}
    demand = tx.supply.demand(partner_id, sorted(receipts))
    return {sku: balance(by_sku[sku], found, demand.get(sku, ())) for sku, found in receipts.items()}


def dated_units(policy: Policy, line: Line, inventory_at: int | None) -> int:
    """What a dated line counts in the per-date demand: its allocation while its order is open, else nothing."""
    return rules.line_allocation(policy, line, inventory_at).units if line.status in OPEN else 0


def moves(changes: Iterable[tuple[str, date | None, int]]) -> dict[tuple[str, date], int]:
    """(SKU, date, units) of lines whose dated units moved, summed by (SKU, date); undated lines left out."""
    summed: dict[tuple[str, date], int] = {}
    for sku, day, units in changes:
        if day is not None and units:
            summed[(sku, day)] = summed.get((sku, day), 0) + units
    return summed


def rebuilt(
    policy: Policy, lines: Iterable[tuple[Line, date]], stock: Mapping[str, StockRecord]
) -> list[tuple[str, date, int]]:
    """The per-date demand of these dated lines under `policy` (after a change of stock mode)."""
    found: list[tuple[str, date, int]] = []
    for line, day in lines:
        held = stock.get(line.sku)
        units = dated_units(policy, line, None if held is None else held.as_of)
        if units:
            found.append((line.sku, day, units))
    return found
