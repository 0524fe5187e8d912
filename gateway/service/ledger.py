"""The ingest ledger: the one place that writes what became of an inbound item, and what an operator reads of
it (the latest entries; a quarantined file put back in line).

An item that applies claims its content first (its `applied` entry is opened: the same content cannot apply
twice for a partner and kind, whatever races) and closes the entry with its counts in the transaction that
applied it. An item that applies nothing (rejected, duplicate, quarantined) gets an entry opened and closed at
once, with why.
"""

from __future__ import annotations

import json

from gateway import logs
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.service.items import Clock, IngestResult
from gateway.store.port import Inbound, LedgerCounts, LedgerRecord, Store, UnitOfWork

log = logs.get(__name__)


def claim(
    tx: UnitOfWork, partner_id: int, result: IngestResult, received_at: Instant, sha256: str | None = None
) -> int:
    """Open the `applied` entry of an item about to apply (AlreadyApplied when its content is taken already); an
    item applying content again on purpose (`result.reapply_of`) claims nothing and names the entry it repeats.

    `sha256` is what the entry claims when it is not the item's own digest (a feed page claims its place in
    the feed's history)."""
    claimed = result.sha256 if sha256 is None else sha256
    result.ledger_id = tx.ledger.open(
        Inbound(partner_id, result.kind, result.source, claimed, result.size, received_at, result.reapply_of)
    )
    return result.ledger_id


def close_applied(tx: UnitOfWork, entry: int, result: IngestResult, now: Instant) -> None:
    """Close the claimed `entry`: the item applied, with its counts (and its report when rows were refused, when it
    has warnings, or when it applied content again on purpose: `gateway ledger --json` shows them)."""
    report = (
        json.dumps(result.report()) if result.refusals or result.warnings or result.reapply_of is not None else None
    )
    tx.ledger.close(entry, Outcome.APPLIED, result.counts, None, report, now)


def record(tx: UnitOfWork, partner_id: int, result: IngestResult, received_at: Instant, now: Instant) -> None:
    """The entry of a rejected or duplicate item (a rejected one keeps its summary and its report, a duplicate with
    warnings its report)."""
    rejected = result.outcome == Outcome.REJECTED
    error = result.summary() if rejected else None
    item = Inbound(partner_id, result.kind, result.source, result.sha256, result.size, received_at)
    entry = tx.ledger.open(item, result.outcome)
    result.ledger_id = entry  # before the report is made: it names the entry
    report = json.dumps(result.report()) if rejected or result.warnings else None
    tx.ledger.close(entry, result.outcome, LedgerCounts(), error, report, now)


def record_apart(store: Store, result: IngestResult, received_at: Instant, clock: Clock) -> None:
    """A rejected or duplicate item gets its own ledger entry, in its own transaction."""
    with store.write() as tx:
        partner_id = tx.partners.id_of(result.partner)
        record(tx, partner_id, result, received_at, clock())


def quarantined(tx: UnitOfWork, partner_id: int, kind: str, source: str, size: int, now: Instant, reason: str) -> int:
    """The entry of a source file set aside after its transport kept failing (its content never read: no digest);
    `gateway ledger release` names it."""
    entry = tx.ledger.open(Inbound(partner_id, kind, source, "", size, now), Outcome.QUARANTINED)
    tx.ledger.close(entry, Outcome.QUARANTINED, LedgerCounts(), reason, None, now)
    return entry


def entries(store: Store, partner: str, limit: int = 100) -> list[LedgerRecord]:
    """The partner's latest `limit` ledger entries, newest first."""
    with store.read() as tx:
        return tx.ledger.entries(tx.partners.id_of(partner), limit)


def release(store: Store, partner: str, ledger_id: int, now: Instant) -> bool:
    """Put the file quarantined under ledger entry `ledger_id` back in line (its failures forgotten, the next pass
    takes it again); False when the entry is no quarantined file of the partner."""
    with store.write() as tx:
        released = tx.ledger.release(tx.partners.id_of(partner), ledger_id, now)
    if released:
        log.info("file_released", partner=partner, ledger_id=ledger_id)
    return released
