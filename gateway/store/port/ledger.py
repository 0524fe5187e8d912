"""The ingest ledger (every inbound item and what became of it), and the source files that keep failing.

The ledger is what makes an item applied once: an `applied` entry claims its content (partner, kind, digest), and a
crash after the commit is recognised by it on restart. A source file whose transport keeps failing is counted,
then quarantined under a `quarantined` ledger entry, until it is released.
"""

from __future__ import annotations

from typing import Protocol

from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.store.records import Inbound, LedgerCounts, LedgerRecord, LedgerTally, TransportFailures


class LedgerRepository(Protocol):
    """Ledger entries, and transport failures per source file (name, size and time)."""

    def applied(self, partner_id: int, kind: str, sha256: str, outcome: Outcome = Outcome.APPLIED) -> int | None:
        """The id of the entry that applied this content already (or the first one with `outcome`), if any. An
        applied (or bundled) entry that retention removed after `ledger_days` is still found by the digest it left
        (RetentionRepository.remove_entries), until `dedupe_days`: the id it had."""
        ...

    def open(self, item: Inbound, outcome: Outcome = Outcome.APPLIED) -> int:
        """Start the ledger entry of `item` and return its id; an `applied` entry claims the content (Conflict if
        taken), unless the item applies again on purpose the content of entry `item.reapply_of`, which it names.

        Raises AlreadyApplied (a Conflict) when another transaction applied the same content meanwhile; on
        PostgreSQL the transaction can then do nothing more: leave its block."""
        ...

    def close(
        self, entry_id: int, outcome: Outcome, counts: LedgerCounts, error: str | None, report: str | None, now: Instant
    ) -> None:
        """Record what became of an item (`now`: when it finished)."""
        ...

    def since(self, partner_id: int, since: Instant) -> list[LedgerTally]:
        """The items received since `since`, by kind and outcome."""
        ...

    def entries(self, partner_id: int, limit: int = 100) -> list[LedgerRecord]:
        """The latest ledger entries, newest first."""
        ...

    def find(self, partner_id: int, text: str, limit: int = 100) -> list[LedgerRecord]:
        """The latest entries, newest first, whose source (file name) holds `text`, whose sha256 is `text`, or whose
        item queued an outbox message of run `text` (the run_id of its log lines)."""
        ...

    def hourly(self, partner_id: int, since: Instant) -> dict[int, int]:
        """Items received since `since`, counted per hour: hours after `since` (0, 1, ...) -> items."""
        ...

    def transport_failed(
        self, partner_id: int, source: str, identity: str, error: str, now: Instant
    ) -> TransportFailures:
        """Count one more transport failure of a source file; return how many it has had, and since when."""
        ...

    def quarantine(self, partner_id: int, source: str, identity: str, now: Instant, ledger_id: int) -> None:
        """Stop retrying a source file; `ledger_id` is the `quarantined` ledger entry that says so."""
        ...

    def release(self, partner_id: int, ledger_id: int, now: Instant) -> bool:
        """Put the file quarantined under ledger entry `ledger_id` back in line: its failures are forgotten and
        the entry's outcome becomes `released`. False when the entry is no quarantined file of the partner."""
        ...

    def quarantined(self, partner_id: int, source: str) -> set[str]:
        """Identities of the source's quarantined files."""
        ...

    def transport_recovered(self, partner_id: int, source: str, identity: str) -> None:
        """Forget a source file's transport failures (it went through)."""
        ...

    def entry(self, partner_id: int, ledger_id: int) -> LedgerRecord | None:
        """The partner's ledger entry `ledger_id`, or None when the partner has no such entry."""
        ...

    def in_force(self, partner_id: int, kind: str) -> tuple[int, str] | None:
        """(id, sha256) of the latest `applied` entry of the partner and kind (a re-apply included), or `bundled`
        (a bundle's member): the content in force; None before any. When retention removed every such entry, the
        latest digest it left of the kind."""
        ...
