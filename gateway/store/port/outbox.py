"""What the gateway owes its partners: messages queued in the transaction that decided them, then delivered.

A message's life: queued `pending` (by an inbound item or a command), claimed in a batch under a lease, then
settled: `delivered`, due again later, or `dead` (given up); a dead message may be revived, or `superseded` by a
newer value of its key. One undelivered message per (partner, kind, key): a newer value replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind, OutboxState
from gateway.store.records import BatchFailure, Claim, OutboxCount, OutboxRecord


class OutboxRepository(Protocol):
    """The outbox. Queuing sets a message's value, payload, ledger entry, `created_at` and run (the transaction's);
    claiming sets its batch and lease; settling its state, attempts, last status and error, and when it is due."""

    def queue_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, Instant | None]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue published ATS values, replacing undelivered older values of the same SKU.

        A replaced value leaves the batch it was sent in, and its attempts start again from 0."""
        ...

    def owe_schedule(self, partner_id: int, skus: Sequence[str]) -> None:
        """Mark the undelivered ATS messages of these SKUs (queued just before) as owing a schedule even if their
        SKU holds no dated supply when it is sent (records.SCHEDULE_OWED in the payload). A later value of the SKU
        queued before delivery keeps the mark: queuing an ATS value never touches the payload."""
        ...

    def queue_message(
        self, partner_id: int, kind: MessageKind, key: str, payload: str, ledger_id: int | None, now: Instant
    ) -> bool:
        """Queue an order message once per (kind, key); return False when it was already queued."""
        ...

    def queue_channel_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, str]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue channel ATS values (key, value, payload), replacing undelivered older values of the same key."""
        ...

    def rows(
        self,
        partner_id: int,
        state: OutboxState | None = OutboxState.PENDING,
        kind: MessageKind | None = None,
        limit: int | None = None,
    ) -> list[OutboxRecord]:
        """Messages of the partner in `state` (all states for None), of `kind` (every kind for None), oldest first."""
        ...

    def delivered_hourly(self, partner_id: int, since: Instant) -> dict[int, int]:
        """Messages delivered since `since` (as still recorded: a delivered value a newer one replaced is gone),
        counted per hour: hours after `since` (0, 1, ...) -> messages."""
        ...

    def pending_kinds(self, partner_id: int) -> set[MessageKind]:
        """The kinds of message waiting for the partner."""
        ...

    def counts(self, partner_id: int) -> list[OutboxCount]:
        """Messages by kind and state."""
        ...

    def claim(
        self, partner_id: int, kind: MessageKind, now: Instant, limit: int, lease_until: Instant, batch_id: str
    ) -> Claim | None:
        """Claim the next due batch of `kind`: a batch sent before and due again first (with its own id, whole),
        else up to `limit` due messages never batched, under `batch_id`. None when nothing is due.

        The claim holds its messages until `lease_until`; another worker's claim skips them (and rows being
        claimed right now) rather than waiting. Settle or unclaim it in a later transaction."""
        ...

    def unclaim(self, claim: Claim) -> None:
        """Give back a claimed batch that was not sent: claimable again at once (a batch sent before keeps its id)."""
        ...

    def settle_delivered(self, claim: Claim, status: int | None, now: Instant, attempts: int = 1) -> int:
        """The partner took the batch (after `attempts` attempts in this pass): its messages are delivered (a
        message replaced meanwhile by a newer value stays pending). Returns how many were marked delivered.

        Settling touches only the rows still held under the claim's lease (a lease that ran out may have been
        claimed again by another worker)."""
        ...

    def settle_failed(
        self, claim: Claim, failed: BatchFailure, *, next_attempt_at: Instant, max_attempts: int, queued_before: Instant
    ) -> int:
        """The batch failed `failed.attempts` more times: due again at `next_attempt_at`, except messages that
        reached `max_attempts` or were queued before `queued_before`, which go to dead letter. Returns how many did."""
        ...

    def settle_dead(self, claim: Claim, failed: BatchFailure) -> int:
        """The partner refused the batch for good: its messages go to dead letter. Returns how many did."""
        ...

    def revive(self, partner_id: int, ids: Sequence[int] | None, now: Instant) -> tuple[int, int]:
        """Put dead messages (the given ids, or all) back in the queue, due now. A dead value whose key has a
        newer value queued or delivered since is superseded instead. Returns (revived, superseded).

        Holds the partner alone meanwhile (no value of it is queued while it looks)."""
        ...

    def release_claims(self) -> int:
        """Free every claimed message; how many were claimed.

        Only for the one worker of a store that takes one (SQLite) as it starts: no claim is anyone's then."""
        ...
