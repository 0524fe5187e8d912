"""Reading ATS: per SKU, and explained line by line; the ATP on a date, with the supply schedule it stands on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gateway.domain import allocation as rules
from gateway.domain import atp, days
from gateway.domain.allocation import Line
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.domain.status import OrderStatus
from gateway.service import channels, demand
from gateway.store.port import StockRecord, UnitOfWork


@dataclass(frozen=True)
class AtsView:
    """One SKU's stock, allocation and published ATS."""

    sku: str
    stock: int
    allocated: int
    ats: int
    as_of: Instant | None

    @property
    def oversold(self) -> bool:
        """The stock level is below the allocation: the published ATS 0 hides a shortfall."""
        return rules.oversold(self.stock, self.allocated)


@dataclass(frozen=True)
class AllocatingLine:
    """A line that holds units of the SKU, and the rule that makes it count."""

    order_id: str
    status: str
    quantity: int
    confirmed_quantity: int | None
    units: int
    rule: str


@dataclass(frozen=True)
class Explanation:
    """Why a SKU's ATS is what it is."""

    view: AtsView
    set_by: int | None
    lines: tuple[AllocatingLine, ...]
    non_allocating: int
    mode: str
    schedule: atp.Explanation | None = None  # the supply schedule and the ATP on a date (dated supply, or asked)


@dataclass(frozen=True)
class AtpView:
    """One SKU's ATS and its available-to-promise on a date (`atp`: may be negative, published never below 0)."""

    view: AtsView
    on: date
    atp: int


def _view(record: StockRecord) -> AtsView:
    return AtsView(
        sku=record.sku,
        stock=record.quantity,
        allocated=record.allocated,
        # the value published: the ATP for today for a SKU holding receipts, else max(0, stock - allocated)
        ats=record.published
        if record.published is not None
        else rules.published(rules.available(record.quantity, record.allocated)),
        as_of=record.as_of,
    )


def ats(tx: UnitOfWork, partner: str, skus: Sequence[str] | None = None) -> list[AtsView]:
    """ATS of the given SKUs (a SKU the store has never seen shows zeros), or of every SKU held."""
    partner_id = tx.partners.id_of(partner)
    if not skus:
        return [_view(record) for record in tx.stock.iterate(partner_id)]
    found = tx.stock.get(partner_id, list(skus))
    return [_view(found.get(sku) or StockRecord(sku=sku, quantity=0)) for sku in dict.fromkeys(skus)]


def channel(
    tx: UnitOfWork, partner: str, sku: str, assembly: str, collection: str, today: date | None = None
) -> channels.ChannelView:
    """What one collection of one assembly may still take of a SKU, with its cap and where the cap comes from.
    Given `today` (the partner's date), a SKU with receipts stands on the ATP: on the collection's pickup date
    when it has one, else today's (what the channel publishes, docs/rules.md "Dated collections")."""
    partner_id = tx.partners.id_of(partner)
    record = tx.stock.get(partner_id, [sku]).get(sku) or StockRecord(sku=sku, quantity=0)
    sku_ats = rules.available(record.quantity, record.allocated)
    balance = demand.today_balances(tx, partner_id, [record]).get(sku) if today is not None else None
    if balance is not None and today is not None:
        dates = tx.collections.get(partner_id, assembly, collection)
        pickup = None if dates is None else dates.pickup_on
        sku_ats = balance.room(today if pickup is None else days.from_today(pickup, today))
    return channels.view(tx, partner_id, sku, assembly, collection, sku_ats)


def _schedule(
    record: StockRecord, receipts: atp.Receipts, dated: atp.Receipts, on: date, today: date
) -> atp.Explanation:
    """The SKU's schedule from today on and its ATP on `on`: supply is the level on hand plus the receipts; demand
    is each dated line's units on its date (`dated`, per date) and the rest of the allocation today."""
    schedule = atp.SupplySchedule(record.quantity, receipts, record.as_of)
    undated = record.allocated - sum(units for _, units in dated)
    wanted = atp.demand_by_day([(today, undated), *dated], today)
    return atp.explain(schedule, wanted, on, today)


def atp_on(tx: UnitOfWork, partner: str, skus: Sequence[str] | None, on: date, today: date) -> list[AtpView]:
    """The ATP on `on` of the given SKUs (unknown ones: zeros), or of every SKU held; `today`: the partner's date."""
    partner_id = tx.partners.id_of(partner)
    if skus:
        found = tx.stock.get(partner_id, list(skus))
        records = [found.get(sku) or StockRecord(sku=sku, quantity=0) for sku in dict.fromkeys(skus)]
    else:
        records = list(tx.stock.iterate(partner_id))
    skus = [record.sku for record in records]
    receipts = tx.supply.receipts(partner_id, skus) if tx.supply.holds(partner_id) else {}
    dated = tx.supply.demand(partner_id, skus)
    views: list[AtpView] = []
    for record in records:
        explained = _schedule(record, receipts.get(record.sku, ()), dated.get(record.sku, ()), on, today)
        views.append(AtpView(_view(record), explained.on, explained.atp))
    return views


def explain(
    tx: UnitOfWork, partner: str, policy: Policy, sku: str, *, today: date | None = None, on: date | None = None
) -> Explanation:
    """The snapshot a SKU's ATS stands on and every line that allocates, recomputed from the lines. Given `today`
    (the partner's date), the supply schedule too when the SKU has receipts or an ATP date `on` is asked."""
    partner_id = tx.partners.id_of(partner)
    record = tx.stock.get(partner_id, [sku]).get(sku) or StockRecord(sku=sku, quantity=0)
    schedule: atp.Explanation | None = None
    if today is not None:
        receipts, dated = tx.supply.dated(partner_id, sku)
        if receipts or dated or on is not None:
            schedule = _schedule(record, receipts, dated, today if on is None else on, today)
    statuses = [s for s in OrderStatus if s != OrderStatus.CANCELLED]
    lines: list[Line] = tx.orders.lines_of(partner_id, [sku], statuses)
    allocating: list[AllocatingLine] = []
    idle = 0
    for line in lines:
        held = rules.line_allocation(policy, line, record.as_of)
        if held.rule is None:
            idle += 1
            continue
        allocating.append(
            AllocatingLine(
                order_id=line.order_id,
                status=line.status.value,
                quantity=line.quantity,
                confirmed_quantity=line.confirmed_quantity,
                units=held.units,
                rule=held.rule,
            )
        )
    return Explanation(_view(record), record.set_by, tuple(allocating), idle, policy.mode.value, schedule)
