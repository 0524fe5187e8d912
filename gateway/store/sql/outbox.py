"""The outbox repository on SQL, its queuing and views: messages queued in the transaction that decided them,
one undelivered message per key, and dead messages revived. Claiming and settling are in delivery.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind, OutboxState
from gateway.store import schema
from gateway.store.records import SCHEDULE_OWED, OutboxCount, OutboxRecord
from gateway.store.sql.delivery import SqlDelivery
from gateway.store.sql.repository import with_partner
from gateway.store.sql.statements import IS_PENDING, PENDING, PENDING_KEY, REQUEUE, chunks

_X = schema.outbox
_P = schema.partners
_ATS = MessageKind.ATS.value
_PENDING = OutboxState.PENDING.value
HOUR = 3_600_000_000  # microseconds


class SqlOutbox(SqlDelivery):
    """The port's OutboxRepository: queuing, views and revival (SqlDelivery: claims and settles)."""

    def _queued(self, partner_id: int, kind: str, key: str, ledger_id: int | None, now: Instant) -> dict[str, Any]:
        """The columns every message queued in this transaction carries: whose, what, which run queued it, when."""
        return {
            "partner_id": partner_id,
            "kind": kind,
            "key": key,
            "ledger_id": ledger_id,
            "created_at": now,
            "state": _PENDING,
            "run_id": self.shared.run_id,
        }

    def queue_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, Instant | None]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue ATS values; an undelivered older value of the same SKU is replaced."""
        self._run_many(
            "queue_ats",
            [
                (partner_id, _ATS, sku, value, as_of, ledger_id, now, _PENDING, None, self.shared.run_id, 0)
                for sku, value, as_of in self.locks.in_key_order(partner_id, messages)
            ],
        )

    def owe_schedule(self, partner_id: int, skus: Sequence[str]) -> None:
        """One UPDATE of the pending ATS messages per chunk of SKUs."""
        for chunk in chunks(sorted(set(skus))):
            self.connection.execute(
                update(_X)
                .where(_X.c.partner_id == partner_id, _X.c.kind == _ATS, IS_PENDING, _X.c.key.in_(chunk))
                .values(payload=SCHEDULE_OWED)
            )

    def queue_message(
        self, partner_id: int, kind: MessageKind, key: str, payload: str, ledger_id: int | None, now: Instant
    ) -> bool:
        """A look for a message of the key in any state, then an insert (the unique index covers pending only)."""
        already = self.connection.execute(
            select(func.count())
            .select_from(_X)
            .where(_X.c.partner_id == partner_id, _X.c.kind == kind, _X.c.key == key)
        ).scalar_one()
        if already:
            return False
        self.connection.execute(
            _X.insert().values(**self._queued(partner_id, kind, key, ledger_id, now), payload=payload)
        )
        return True

    def queue_channel_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, str]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue channel ATS values; an undelivered older value of the same channel is replaced."""
        if not messages:
            return
        statement = self.dialect.upsert(_X, PENDING_KEY, REQUEUE, PENDING)
        self.connection.execute(
            statement,
            [
                {
                    **self._queued(partner_id, MessageKind.CHANNEL_ATS.value, key, ledger_id, now),
                    "value": value,
                    "payload": payload,
                    "as_of": None,
                    "batch_id": None,
                    "attempts": 0,  # a new value starts its own count
                }
                for key, value, payload in self.locks.in_key_order(partner_id, messages)
            ],
        )

    def rows(
        self,
        partner_id: int,
        state: OutboxState | None = OutboxState.PENDING,
        kind: MessageKind | None = None,
        limit: int | None = None,
    ) -> list[OutboxRecord]:
        """The partner's messages in `state` (every state for None) and `kind` (every kind for None), oldest first."""
        query = with_partner(_X).where(_X.c.partner_id == partner_id)
        if state is not None:
            query = query.where(_X.c.state == state)
        if kind is not None:
            query = query.where(_X.c.kind == kind)
        query = query.order_by(_X.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [
            OutboxRecord(**{**row._mapping, "kind": MessageKind(row.kind), "state": OutboxState(row.state)})
            for row in self.connection.execute(query)
        ]

    def delivered_hourly(self, partner_id: int, since: Instant) -> dict[int, int]:
        """One GROUP BY on the hour of delivery, counted from `since`."""
        hour = ((_X.c.delivered_at - since) // HOUR).label("hour")
        query = (
            select(hour, func.count())
            .where(
                _X.c.partner_id == partner_id,
                _X.c.state == OutboxState.DELIVERED.value,
                _X.c.delivered_at >= since,
            )
            .group_by(hour)
        )
        return {int(h): int(n) for h, n in self.connection.execute(query)}

    def pending_kinds(self, partner_id: int) -> set[MessageKind]:
        """The kinds waiting (read from the partial index of pending messages)."""
        query = select(_X.c.kind).where(_X.c.partner_id == partner_id, IS_PENDING).distinct()
        return {MessageKind(kind) for kind in self.connection.execute(query).scalars()}

    def counts(self, partner_id: int) -> list[OutboxCount]:
        """One GROUP BY kind and state."""
        query = (
            select(
                _X.c.kind,
                _X.c.state,
                func.count(),
                func.min(_X.c.created_at),
                func.min(_X.c.next_attempt_at),
            )
            .where(_X.c.partner_id == partner_id)
            .group_by(_X.c.kind, _X.c.state)
            .order_by(_X.c.kind, _X.c.state)
        )
        return [
            OutboxCount(MessageKind(kind), OutboxState(state), *rest)
            for kind, state, *rest in self.connection.execute(query)
        ]

    def revive(self, partner_id: int, ids: Sequence[int] | None, now: Instant) -> tuple[int, int]:
        """Dead messages back in the queue; a dead value with a newer one of its key since is superseded."""
        self.locks.partner(partner_id)  # no value of the partner is queued meanwhile (PostgreSQL; rare and short)
        query = select(_X.c.id, _X.c.kind, _X.c.key, _X.c.created_at).where(
            _X.c.partner_id == partner_id, _X.c.state == OutboxState.DEAD.value
        )
        if ids is not None:
            query = query.where(_X.c.id.in_(list(ids)))
        revived = superseded = 0
        for row in self.connection.execute(query.order_by(_X.c.id)).all():
            newer = self.connection.execute(
                select(_X.c.id)
                .where(
                    _X.c.partner_id == partner_id,
                    _X.c.kind == row.kind,
                    _X.c.key == row.key,
                    _X.c.id != row.id,
                    _X.c.state.in_((_PENDING, OutboxState.DELIVERED.value, OutboxState.DEAD.value)),
                    or_(
                        _X.c.created_at > row.created_at,
                        and_(_X.c.created_at == row.created_at, _X.c.id > row.id),
                    ),
                )
                .limit(1)
            ).first()
            if newer is not None:
                self.connection.execute(update(_X).where(_X.c.id == row.id).values(state=OutboxState.SUPERSEDED.value))
                superseded += 1
                continue
            self.connection.execute(
                update(_X)
                .where(_X.c.id == row.id)
                .values(state=_PENDING, attempts=0, next_attempt_at=None, claimed_until=None, batch_id=None)
            )
            revived += 1
        return revived, superseded

    def release_claims(self) -> int:
        """Free every claimed message (the one worker of a SQLite store starting: no claim is anyone's)."""
        statement = update(_X).where(IS_PENDING, _X.c.claimed_until.is_not(None)).values(claimed_until=None)
        return int(self.connection.execute(statement).rowcount)
