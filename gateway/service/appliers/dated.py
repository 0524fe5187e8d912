"""A stock snapshot with dated supply (docs/rules.md, "Dated supply and dated demand"): each SKU's whole schedule,
on hand and every receipt, replaced together under the stale rule of today's level.

Taken when the file has an `available_from` column, or when the partner holds receipts already (a snapshot without
the column then replaces each SKU's schedule with its units on hand: its receipts go). A partner that never sends
a date never comes here: its snapshots take the bulk paths of stock.py, unchanged.

The on-hand part is the stock row's level, set by Engine.apply_stock as any level (published ATS, oversold,
simple mode's warning); receipts dated today or before are on hand from the start. The receipts are kept beside
it (UnitOfWork.supply), written only for the SKUs whose level is not stale, in the same transaction. Today's ATS of
a SKU with receipts is the ATP for today (Engine._save), so a SKU whose receipts changed is published again from
its balance (Engine.refresh) even when its level did not move, and has its ATS queued again even when today's
value did not move: the message carries the schedule (service.schedules); one left with no receipt carries an
empty schedule once.
"""

from __future__ import annotations

from gateway.domain import allocation as rules
from gateway.domain import atp, days, guards
from gateway.domain.atp import SupplyRow, SupplySchedule
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problem
from gateway.formats.supply_rows import DatedSupply, read_dated
from gateway.service.appliers.base import Applying
from gateway.service.items import Rejected
from gateway.service.snapshots import StockInput, StockLevel
from gateway.store.port import Receipts


def wanted(item: Applying, table: CsvTable) -> bool:
    """Whether the snapshot goes this way: it dates supply, or the partner holds receipts it may replace."""
    engine = item.engine
    return "available_from" in table.index or engine.tx.supply.holds(engine.partner_id)


def apply_file(item: Applying, table: CsvTable) -> None:
    """Read the whole snapshot, then replace each SKU's schedule; a malformed cell refuses the file (Rejected)."""
    engine, result, partner = item.engine, item.result, item.partner
    counts = result.counts
    default_as_of = item.as_of if item.as_of is not None else item.received_at
    found = read_dated(table, partner.zone, default_as_of)
    if item.progress is not None:
        item.progress(sum(len(supply.lines) for supply in found.values()))
    if table.problems.total:
        raise Rejected(table.problems)
    kept: list[DatedSupply] = []
    for supply in found.values():
        refusal = supply.refusal or _future(item, supply)
        if refusal is not None:  # the SKU stays as it was, and is not one the snapshot omitted
            result.refusals.append(refusal)
            counts.refused += len(supply.lines)
        else:
            kept.append(supply)
    today = days.today(engine.now, partner.zone)
    held = engine.tx.stock.versions(engine.partner_id, [supply.sku for supply in kept])
    levels: list[StockLevel] = []
    schedules: dict[str, Receipts] = {}
    for supply, version in zip(kept, held, strict=True):
        rows = [SupplyRow(supply.on_hand)] + [SupplyRow(units, day) for day, units in supply.receipts.items()]
        schedule = atp.schedule_from_rows(rows, supply.as_of).due_on_hand(today)
        current = None if version is None else SupplySchedule(version[1], (), version[2])
        levels.append((supply.sku, schedule.on_hand, supply.as_of))
        if atp.apply_snapshot(current, schedule) is None:
            continue  # stale: the level is skipped below (and counted), its receipts stay
        schedules[supply.sku] = schedule.receipts
    before = engine.tx.supply.receipts(engine.partner_id, list(schedules))
    engine.tx.supply.replace(engine.partner_id, schedules)
    outcome = engine.apply_stock(levels, result.ledger_id)
    moved = sorted(sku for sku, receipts in schedules.items() if before.get(sku, ()) != receipts)
    engine.refresh(moved)  # today's ATS is the ATP for today: receipts moved it even where the level did not
    engine.schedules_moved(moved, [sku for sku in moved if not schedules[sku]])
    rows_of = {supply.sku: len(supply.lines) for supply in kept}
    applied = sum(rows_of[sku] for sku in schedules)
    counts.applied += applied
    counts.skipped += sum(rows_of.values()) - applied
    counts.extra["predates_confirmation"] = counts.extra.get("predates_confirmation", 0) + outcome.predates_movement
    if partner.absent == "zero":
        latest = item.as_of if item.as_of is not None else max((s.as_of for s in kept), default=None)
        _zero_omitted(item, set(found), default_as_of if latest is None else latest)


def _future(item: Applying, supply: DatedSupply) -> Problem | None:
    """The refusal of a SKU whose instant is too far ahead of the gateway's clock (`future_timestamp`)."""
    now = item.engine.now
    if not guards.is_future(supply.as_of, now, item.max_skew):
        return None
    refusal = guards.future("as_of", supply.as_of, now, item.max_skew)
    return Problem(supply.lines[-1], str(refusal), reason=refusal.code)


def _zero_omitted(item: Applying, seen: set[str], zero_at: int) -> None:
    """`absent = "zero"`: the SKUs the snapshot omits have nothing, on hand or coming (unless stale)."""
    engine, result = item.engine, item.result
    omitted = [record for record in engine.tx.stock.iterate(engine.partner_id) if record.sku not in seen]
    holding = engine.tx.supply.skus(engine.partner_id)
    cleared = {r.sku: () for r in omitted if r.sku in holding and not rules.is_stale(zero_at, r.as_of)}
    engine.tx.supply.replace(engine.partner_id, cleared)
    engine.refresh(sorted(cleared))
    levels = [
        StockInput(record.sku, 0, zero_at) for record in omitted if record.quantity != 0 or record.as_of != zero_at
    ]
    outcome = engine.apply_stock(levels, result.ledger_id)
    engine.schedules_moved(sorted(cleared), sorted(cleared))  # after the levels: with today's value as zeroed
    result.counts.extra["zeroed"] = outcome.applied
    result.counts.skipped += outcome.skipped
