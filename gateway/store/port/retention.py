"""What retention removes from the store once it is old enough: delivered outbox messages, ledger entries (their
applied content's sha256 kept aside for a while longer) and those kept digests themselves.

Each kind is removed in two steps: `aged_*` finds up to `limit` candidates after id `after` (a read: walking the
table in id order costs one pass over it, however many batches it takes), `remove_*` removes those that still
qualify, in a short write transaction of their own. A row another transaction holds (a lock, a lease) is left
for the next pass, never waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.domain.instant import Instant


class RetentionRepository(Protocol):
    """Removal of what is old enough, in batches (`before`: the instant a row must be at or before)."""

    def delivered(self, partner_id: int, before: Instant, now: Instant, after: int, limit: int) -> list[int]:
        """Ids (ascending, above `after`, at most `limit`) of the partner's outbox messages delivered at or before
        `before`, under no lease at `now`. Undelivered (pending) and dead messages are never among them."""
        ...

    def remove_delivered(self, partner_id: int, ids: Sequence[int], before: Instant, now: Instant) -> int:
        """Remove those of `ids` that still qualify (see `delivered`) and no other transaction holds; how many."""
        ...

    def aged_entries(self, partner_id: int, before: Instant, after: int, limit: int) -> list[int]:
        """Ids (ascending, above `after`, at most `limit`) of the partner's ledger entries received at or before
        `before`, but for the entry of a file still quarantined (kept until it is released)."""
        ...

    def remove_entries(self, partner_id: int, ids: Sequence[int], before: Instant, dedupe_after: Instant) -> int:
        """Remove those of `ids` that still qualify (see `aged_entries`); how many. An entry that claimed applied
        content (applied alone or in a bundle, not a re-apply) received after `dedupe_after` leaves its sha256,
        kind and id in the digests, so the same content stays a duplicate (LedgerRepository.applied)."""
        ...

    def aged_digests(self, partner_id: int, before: Instant, after: int, limit: int) -> list[int]:
        """Ledger ids (ascending, above `after`, at most `limit`) of the partner's kept digests whose entry was
        received at or before `before`."""
        ...

    def remove_digests(self, partner_id: int, ids: Sequence[int], before: Instant) -> int:
        """Remove the digests of those entries (still qualifying); how many. Their content applies again."""
        ...
