"""The schedule an ATS message carries (docs/rules.md, "Dated supply and dated demand", Publishing).

A SKU with dated supply has its ATS message carry, beside today's value, the next dates at which the published
ATP changes (atp.schedule_points, at most `delivery.schedule_points`). The schedule is never stored with the
message: it is read from the store in the transaction that claims the message's batch for delivery (`attach`),
so it is the schedule in force when it is sent, whichever change queued the message (a snapshot, a placement by
any path, PostgreSQL's one-statement placement included) and however long it waited. Today's value and the
schedule are then consistent: the pending message of a SKU holds the value its stock row publishes, both read
in one transaction The dates start after the message's own date (see `attach`), so a batch sent again carries
the same bytes.

What the outbox keeps is only *that* a SKU's schedule moved: every change of a schedule queues the SKU's ATS
message (coalesced as any value: one undelivered message per SKU, the latest state sent), even when today's
value does not move (`requeue`): receipts changed by a snapshot, or a level or allocation that moved while the
value stayed (a dated line, or an oversold SKU whose later dates still move: Engine._save). A SKU whose receipts
are all gone is marked (records.SCHEDULE_OWED): its next message carries an empty schedule, once, so the partner drops
the dates it holds; after that its messages are as for a SKU that never had dates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import date, tzinfo

from gateway.domain import atp, days
from gateway.domain.atp import SchedulePoint
from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind
from gateway.store.port import Claim, StockRecord, UnitOfWork


def points(
    record: StockRecord, receipts: atp.Receipts, dated: atp.Receipts, today: date, limit: int
) -> tuple[SchedulePoint, ...]:
    """A SKU's next dates and their ATS: on hand is the stock row's level, supply the receipts, demand each dated
    line's units on its date (`dated`, per date, as kept by the store) and the rest of its allocation today; none
    without receipts."""
    schedule = atp.SupplySchedule(record.quantity, receipts, record.as_of)
    undated = record.allocated - sum(units for _, units in dated)
    return atp.schedule_points(schedule, atp.demand_by_day([(today, undated), *dated], today), today, limit)


def attach(tx: UnitOfWork, partner_id: int, claim: Claim, zone: tzinfo, limit: int) -> Claim:
    """The claimed batch with each ATS message of a SKU holding dated supply (or owing a schedule) given its
    schedule, read now; the claim as it is for any other batch (a partner without receipts: one look-up).

    Each schedule starts after the date (in the partner's `zone`) of its message's `created_at` (the item's
    `computed_at`): the store's state is the one of that instant, since any change of the schedule since would
    have queued the message again (and taken it out of a batch sent before). So a batch sent again under its key
    carries the same schedules, whatever the date of the re-send."""
    if claim.kind != MessageKind.ATS or limit <= 0:
        return claim
    owing = {message.key for message in claim.messages if message.payload is not None}
    if not owing and not tx.supply.holds(partner_id):
        return claim
    receipts = tx.supply.receipts(partner_id, [message.key for message in claim.messages])
    dated = owing | receipts.keys()
    if not dated:
        return claim
    stock = tx.stock.get(partner_id, sorted(dated))
    demand = tx.supply.demand(partner_id, sorted(dated))
    messages = tuple(
        message._replace(
            schedule=points(
                stock.get(message.key) or StockRecord(message.key, 0),
                receipts.get(message.key, ()),
                demand.get(message.key, ()),
                days.today(message.created_at, zone),
                limit,
            )
        )
        if message.key in dated
        else message
        for message in claim.messages
    )
    return dataclasses.replace(claim, messages=messages)


def requeue(
    tx: UnitOfWork,
    partner_id: int,
    skus: Collection[str],
    dropped: Collection[str],
    ledger_id: int | None,
    now: Instant,
) -> None:
    """Queue again the published ATS of SKUs whose schedule moved (today's value as their stock rows hold it),
    those in `dropped` (no dated supply left) owing their partner an empty schedule."""
    if not skus:
        return
    records = tx.stock.get(partner_id, sorted(skus))
    messages = [
        (sku, record.published, record.as_of) for sku, record in sorted(records.items()) if record.published is not None
    ]
    tx.outbox.queue_ats(partner_id, messages, ledger_id, now)
    owing = sorted(sku for sku, _, _ in messages if sku in dropped)
    if owing:
        tx.outbox.owe_schedule(partner_id, owing)
