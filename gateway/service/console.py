"""What the operator console shows, each page read in one read transaction: the partners at a glance with their
last day hour by hour, a partner's latest items (or those a search finds), its outbox and dead letters.

Nothing here writes: the console's one command, a dead letter's retry, is `dead_letters.retry`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.domain.instant import Instant
from gateway.service.outbox_view import OutboxSummary, summary
from gateway.store.port import LedgerRecord, LedgerTally, Store, UnitOfWork

HOUR = 3_600_000_000  # microseconds
DAY_HOURS = 24


@dataclass(frozen=True)
class Activity:
    """A partner's last day hour by hour: items received and messages delivered in each of the 24 hours that
    end with the hour of `now` (the first hour starts at `start`)."""

    start: Instant
    items: tuple[int, ...]
    deliveries: tuple[int, ...]


@dataclass(frozen=True)
class PartnerOverview:
    """One partner on the console's first page: the last hour's items, the outbox, the last day."""

    partner: str
    last_hour: tuple[LedgerTally, ...]
    outbox: OutboxSummary
    activity: Activity


def _activity(tx: UnitOfWork, partner_id: int, now: Instant) -> Activity:
    start = (now // HOUR - (DAY_HOURS - 1)) * HOUR  # whole hours, the current one last
    items = tx.ledger.hourly(partner_id, start)
    delivered = tx.outbox.delivered_hourly(partner_id, start)
    hours = range(DAY_HOURS)
    return Activity(start, tuple(items.get(h, 0) for h in hours), tuple(delivered.get(h, 0) for h in hours))


def overview(store: Store, partners: Iterable[str], now: Instant) -> list[PartnerOverview]:
    """Each partner's last hour of items, its outbox and its last day hour by hour, all in one read transaction."""
    found: list[PartnerOverview] = []
    with store.read() as tx:
        for partner in partners:
            partner_id = tx.partners.id_of(partner)
            tallies = tuple(tx.ledger.since(partner_id, now - HOUR))
            found.append(PartnerOverview(partner, tallies, summary(tx, partner), _activity(tx, partner_id, now)))
    return found


def items(store: Store, partner: str, search: str | None, limit: int = 50) -> list[LedgerRecord]:
    """The partner's latest `limit` items, newest first; with `search`, those whose file name holds it, whose
    sha256 is it or whose run queued a message under that run_id."""
    with store.read() as tx:
        partner_id = tx.partners.id_of(partner)
        if search:
            return tx.ledger.find(partner_id, search, limit)
        return tx.ledger.entries(partner_id, limit)
