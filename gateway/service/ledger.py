"""The ingest ledger as an operator sees it: what was received and what became of it, and putting a quarantined
file back in line."""

from __future__ import annotations

from gateway import logs
from gateway.domain.instant import Instant
from gateway.store.port import LedgerRecord, Store

log = logs.get(__name__)


def entries(store: Store, partner: str, limit: int = 100) -> list[LedgerRecord]:
    """The partner's latest `limit` ledger entries, newest first."""
    with store.read() as tx:
        return tx.ledger(tx.partner_id(partner), limit)


def release(store: Store, partner: str, ledger_id: int, now: Instant) -> bool:
    """Put the file quarantined under ledger entry `ledger_id` back in line (its failures forgotten, the next pass
    takes it again); False when the entry is no quarantined file of the partner."""
    with store.write() as tx:
        released = tx.release(tx.partner_id(partner), ledger_id, now)
    if released:
        log.info("file_released", partner=partner, ledger_id=ledger_id)
    return released
