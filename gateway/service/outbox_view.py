"""What the outbox holds for a partner and why, and each partner's state at a glance: the views `gateway outbox`,
`gateway status` and the worker's metrics show, each read in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind, OutboxState
from gateway.service import publish
from gateway.settings import PartnerSettings
from gateway.store.port import LedgerTally, OutboxCount, OutboxRecord, Store, UnitOfWork

HOUR = 3_600_000_000  # microseconds: the window `gateway status` counts items in


@dataclass(frozen=True)
class OutboxSummary:
    """A partner's outbox by kind and state: what waits, since when, and what was given up on."""

    partner: str
    counts: tuple[OutboxCount, ...]

    @property
    def pending(self) -> tuple[OutboxCount, ...]:
        """The counts of messages waiting for delivery, one per kind."""
        return tuple(c for c in self.counts if c.state == OutboxState.PENDING)

    @property
    def dead(self) -> tuple[OutboxCount, ...]:
        """The counts of dead letters, one per kind."""
        return tuple(c for c in self.counts if c.state == OutboxState.DEAD)

    @property
    def depth(self) -> int:
        """How many messages wait for delivery."""
        return sum(c.count for c in self.pending)

    @property
    def dead_letters(self) -> int:
        """How many messages were given up on."""
        return sum(c.count for c in self.dead)

    @property
    def oldest(self) -> Instant | None:
        """When the oldest message still waiting was queued; None when nothing waits."""
        return min((c.oldest for c in self.pending), default=None)


class ListedMessage(NamedTuple):
    """One message of the outbox and why it is where it is (a pair, to unpack)."""

    record: OutboxRecord
    why: str


@dataclass(frozen=True)
class OutboxListing:
    """A partner's outbox counts, and the first messages of one state with the reason for each."""

    summary: OutboxSummary
    messages: tuple[ListedMessage, ...]


@dataclass(frozen=True)
class PartnerStatus:
    """One partner at a glance: the last hour's items and the outbox."""

    partner: str
    last_hour: tuple[LedgerTally, ...]
    outbox: OutboxSummary


def summary(tx: UnitOfWork, partner: str) -> OutboxSummary:
    """The partner's outbox counts, read in the transaction `tx`."""
    return OutboxSummary(partner, tuple(tx.outbox.counts(tx.partners.id_of(partner))))


def summaries(store: Store, partners: Iterable[str]) -> list[OutboxSummary]:
    """Each partner's outbox counts, all read in one transaction."""
    with store.read() as tx:
        return [summary(tx, partner) for partner in partners]


def why(record: OutboxRecord, routed: Iterable[MessageKind], now: Instant) -> str:
    """Why a message is where it is at `now`: dead and why, unrouted, being sent, waiting for a retry, or due."""
    if record.state == OutboxState.DEAD:
        return f"dead after {record.attempts} attempt(s): {record.last_error or 'no answer recorded'}"
    if record.kind not in routed:
        return "no route: the partner has no API delivery or export for this kind"
    if record.claimed_until is not None and record.claimed_until > now:
        return f"being sent (claimed until {instant.to_iso(record.claimed_until)})"
    if record.next_attempt_at is not None and record.next_attempt_at > now:
        when = instant.to_iso(record.next_attempt_at)
        return f"retry at {when} after {record.attempts} attempt(s): {record.last_error or 'no answer recorded'}"
    return "due now" if record.attempts == 0 else f"due now, {record.attempts} attempt(s) so far"


def listing(
    store: Store, partner: str, settings: PartnerSettings, *, dead: bool, limit: int, now: Instant
) -> OutboxListing:
    """The partner's outbox counts and its first `limit` waiting messages (dead letters with `dead`), oldest
    first, each with why it is where it is at `now`."""
    with store.read() as tx:
        partner_id = tx.partners.id_of(partner)
        counts = tx.outbox.counts(partner_id)
        records = tx.outbox.rows(partner_id, OutboxState.DEAD if dead else OutboxState.PENDING, limit=limit)
    routed = set(publish.routes(settings))
    messages = tuple(ListedMessage(record, why(record, routed, now)) for record in records)
    return OutboxListing(OutboxSummary(partner, tuple(counts)), messages)


def partner_status(store: Store, partners: Iterable[str], now: Instant, window: int = HOUR) -> list[PartnerStatus]:
    """Each partner's items received in the `window` (microseconds) before `now`, and its outbox, all read in one
    transaction."""
    found: list[PartnerStatus] = []
    with store.read() as tx:
        for partner in partners:
            tallies = tuple(tx.ledger.since(tx.partners.id_of(partner), now - window))
            found.append(PartnerStatus(partner, tallies, summary(tx, partner)))
    return found
