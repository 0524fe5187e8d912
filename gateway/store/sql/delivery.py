"""The outbox repository on SQL, its delivery side: due messages claimed in batches under a lease, then settled
(delivered, due again later, or dead). A batch sent before goes again whole, under its own id (its key)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from sqlalchemy import and_, or_, update

from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind, OutboxState
from gateway.store import schema
from gateway.store.records import BatchFailure, Claim, OutboxRecord
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import IS_PENDING, chunks, due

_X = schema.outbox


def _failure_values(failed: BatchFailure) -> dict[str, Any]:
    """What the messages of a failed batch keep of the failure; each leaves the claim."""
    return {
        "attempts": _X.c.attempts + failed.attempts,
        "last_status": failed.status,
        "last_error": failed.error,
        "claimed_until": None,
    }


class SqlDelivery(SqlRepository):
    """The delivery half of the port's OutboxRepository: claims and settles (SqlOutbox adds queuing, views, revival)."""

    def claim(
        self, partner_id: int, kind: MessageKind, now: Instant, limit: int, lease_until: Instant, batch_id: str
    ) -> Claim | None:
        """The next due batch: one sent before (same id) first, else up to `limit` never-batched messages."""
        # Compiled once per dialect and run on the driver's cursor: a delivery pass claims many batches.
        params = {"of_partner": partner_id, "of_kind": kind, "now": now, "lease": lease_until, "limit": limit}
        self.locks.share(partner_id)  # like settling: never waiting on an inbound item's rows while it waits on ours
        picked = self._rows("claim_first", params)
        if not picked:
            return None
        first = picked[0]
        resend = first[0] is not None
        if resend:
            batch_id = first[0]
            if not self.locks.resending(batch_id, (*due(), _X.c.batch_id == batch_id), params):
                return None  # another worker, or a command, holds part of it right now: the batch goes later, whole
            # a batch sent before goes again whole, under its key, whatever the limit
            rows = self._rows("claim_resend", params | {"new_batch": batch_id})
        else:
            rows = self._claim_new(params | {"new_batch": batch_id})
        if not rows:  # another worker claimed them between the look and the claim
            return None
        rows.sort(key=itemgetter(0))  # RETURNING promises no order
        partner = self.shared.partners.name_of(self.connection, partner_id)
        kind = MessageKind(kind)
        # A batch holds thousands of rows: each record is made in one step, the columns the claim chose by or set
        # (partner, kind, state, batch, lease) put in from here rather than read back (statements.CLAIMED_COLUMNS).
        new, record, pending, lease = tuple.__new__, OutboxRecord, OutboxState.PENDING, lease_until
        messages = tuple(
            [  # the record's fields in its order; `led`: the ledger entry, `n`: attempts so far
                new(
                    record,
                    (i, partner, kind, k, v, a, p, led, c, pending, n, nxt, err, st, batch_id, d, r, lease, None),
                )
                for i, k, v, a, p, led, c, n, nxt, err, st, d, r in rows
            ]
        )
        return Claim(batch_id, kind, messages, resend, lease_until)

    def _claim_new(self, params: dict[str, Any]) -> list[Any]:
        """Up to `limit` due never-batched messages, claimed (statements.CLAIMED_COLUMNS of each)."""
        if not self.dialect.claims_alone():  # chosen and claimed in one statement, skipping rows others hold
            return self._rows("claim_new", params)
        rows = self._rows("claim_pick", params)
        if rows:
            ids = [row[0] for row in rows]
            marked = self._count("claim_mark", params | {"first": min(ids), "last": max(ids)})
            if marked != len(rows):  # cannot happen with one writer: say so rather than send an unclaimed row
                raise AssertionError(f"claimed {marked} of the {len(rows)} outbox rows picked")
        return rows

    def _settling(self, claim: Claim) -> None:
        """Hold what settling the claim needs (see locks.AdvisoryLocks.settling)."""
        if claim.messages:
            self.locks.settling(self.shared.partners.id_of(self.connection, claim.messages[0].partner), claim.ids)

    def _release(self, claim: Claim, settled: int) -> None:
        """Messages of the claim replaced by a newer value meanwhile are claimable again."""
        if settled == len(claim.messages):
            return  # none was replaced
        for chunk in chunks(claim.ids):
            self.connection.execute(
                update(_X).where(_X.c.id.in_(chunk), IS_PENDING, _X.c.batch_id.is_(None)).values(claimed_until=None)
            )

    def _in_batch(self, claim: Claim) -> Any:
        # the batch's id range (primary key) narrows the search; its id says which rows of the range are its own
        first, last = claim.messages[0].id, claim.messages[-1].id
        return and_(
            _X.c.id >= first,
            _X.c.id <= last,
            _X.c.batch_id == claim.batch_id,
            _X.c.claimed_until == claim.lease_until,  # still ours: a lease that ran out may have been re-claimed
            IS_PENDING,
        )

    def unclaim(self, claim: Claim) -> None:
        """A claimed batch that was not sent is claimable again; one sent before keeps its id (its key)."""
        self._settling(claim)
        values: dict[str, Any] = {"claimed_until": None}
        if not claim.resend:
            values["batch_id"] = None
        given_back = self.connection.execute(update(_X).where(self._in_batch(claim)).values(**values)).rowcount
        self._release(claim, given_back)  # and those replaced by a newer value meanwhile

    def settle_delivered(self, claim: Claim, status: int | None, now: Instant, attempts: int = 1) -> int:
        """The batch's messages are delivered, except those replaced meanwhile (they stay pending)."""
        self._settling(claim)
        params = {
            "first": claim.messages[0].id,
            "last": claim.messages[-1].id,
            "of_batch": claim.batch_id,
            "lease": claim.lease_until,
            "at": now,
            "tries": attempts,
            "answer": status,
        }
        done = self._count("settle_delivered", params)
        self._release(claim, done)
        return int(done)

    def settle_failed(
        self, claim: Claim, failed: BatchFailure, *, next_attempt_at: Instant, max_attempts: int, queued_before: Instant
    ) -> int:
        """Due again later, or to dead letter past the attempts or the age allowed."""
        self._settling(claim)
        dead = self._bury(
            claim, failed, or_(_X.c.attempts + failed.attempts >= max_attempts, _X.c.created_at < queued_before)
        )
        again = (
            update(_X).where(self._in_batch(claim)).values(**_failure_values(failed), next_attempt_at=next_attempt_at)
        )
        settled = dead + self.connection.execute(again).rowcount
        self._release(claim, settled)
        return int(dead)

    def _bury(self, claim: Claim, failed: BatchFailure, *condition: Any) -> int:
        """The batch's messages (those meeting `condition`) go to dead letter; how many did."""
        buried = update(_X).where(self._in_batch(claim), *condition)
        return int(
            self.connection.execute(
                buried.values(**_failure_values(failed), state=OutboxState.DEAD.value, next_attempt_at=None)
            ).rowcount
        )

    def settle_dead(self, claim: Claim, failed: BatchFailure) -> int:
        """The batch's messages go to dead letter with the partner's answer."""
        self._settling(claim)
        dead = self._bury(claim, failed)
        self._release(claim, dead)
        return int(dead)
