"""The retention repository on SQL: what is old enough found by walking a table in id order (a read), then removed
in a short transaction of its own, each row's conditions checked again there. On PostgreSQL a row another
transaction holds is skipped (`FOR UPDATE SKIP LOCKED`), never waited for; SQLite has one writer at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select

from gateway.domain.instant import Instant
from gateway.domain.messages import OutboxState
from gateway.domain.outcomes import Outcome
from gateway.store import schema
from gateway.store.sql.repository import SqlRepository

_X = schema.outbox
_G = schema.ingest_ledger
_D = schema.ledger_digests
_T = schema.transport_failures
# what claimed applied content: an item applied alone or as a bundle's member, not a re-apply on purpose
_CLAIMS = (Outcome.APPLIED.value, Outcome.BUNDLED.value)


def _delivered(partner_id: int, before: Instant, now: Instant) -> ColumnElement[bool]:
    """A delivered message of the partner, delivered at or before `before`, under no lease at `now`, and no dead
    letter of its key waiting: a delivered value newer than a dead one is what makes a retry of the dead one
    `superseded` instead of sending an old value over it (outbox.revive), so it stays as long as the dead one."""
    dead = _X.alias("older")
    waiting_dead = exists().where(
        dead.c.partner_id == _X.c.partner_id,
        dead.c.kind == _X.c.kind,
        dead.c.key == _X.c.key,
        dead.c.state == OutboxState.DEAD.value,
    )
    return and_(
        _X.c.partner_id == partner_id,
        _X.c.state == OutboxState.DELIVERED.value,
        _X.c.delivered_at <= before,
        or_(_X.c.claimed_until.is_(None), _X.c.claimed_until <= now),
        ~waiting_dead,
    )


def _aged_entry(partner_id: int, before: Instant) -> ColumnElement[bool]:
    """A ledger entry of the partner received at or before `before`, not the entry of a file still quarantined."""
    quarantined = exists().where(
        _T.c.partner_id == _G.c.partner_id, _T.c.ledger_id == _G.c.id, _T.c.quarantined_at.is_not(None)
    )
    return and_(_G.c.partner_id == partner_id, _G.c.received_at <= before, ~quarantined)


def _aged_digest(partner_id: int, before: Instant) -> ColumnElement[bool]:
    return and_(_D.c.partner_id == partner_id, _D.c.received_at <= before)


class SqlRetention(SqlRepository):
    """The port's RetentionRepository."""

    def _ids(self, column: Any, where: ColumnElement[bool], after: int, limit: int) -> list[int]:
        query = select(column).where(where, column > after).order_by(column).limit(limit)
        return [int(found) for found in self.connection.execute(query).scalars()]

    def delivered(self, partner_id: int, before: Instant, now: Instant, after: int, limit: int) -> list[int]:
        """A walk of the outbox by id: no index of delivery times is kept on this hot table for a daily job."""
        return self._ids(_X.c.id, _delivered(partner_id, before, now), after, limit)

    def remove_delivered(self, partner_id: int, ids: Sequence[int], before: Instant, now: Instant) -> int:
        """One DELETE of the rows still qualifying that no one holds."""
        if not ids:
            return 0
        free = (
            select(_X.c.id)
            .where(_X.c.id.in_(list(ids)), _delivered(partner_id, before, now))
            .with_for_update(skip_locked=True)
        )
        return int(self.connection.execute(delete(_X).where(_X.c.id.in_(free))).rowcount)

    def aged_entries(self, partner_id: int, before: Instant, after: int, limit: int) -> list[int]:
        return self._ids(_G.c.id, _aged_entry(partner_id, before), after, limit)

    def remove_entries(self, partner_id: int, ids: Sequence[int], before: Instant, dedupe_after: Instant) -> int:
        """The rows still qualifying are locked (those held elsewhere skipped), their claims of applied content
        copied to the digests (the latest claim of a content kept), then removed."""
        if not ids:
            return 0
        rows = self.connection.execute(
            select(_G.c.id, _G.c.kind, _G.c.sha256, _G.c.outcome, _G.c.reapply_of, _G.c.received_at)
            .where(_G.c.id.in_(list(ids)), _aged_entry(partner_id, before))
            .order_by(_G.c.id)
            .with_for_update(of=_G, skip_locked=True)
        ).all()
        if not rows:
            return 0
        kept = [
            dict(partner_id=partner_id, ledger_id=r.id, kind=r.kind, sha256=r.sha256, received_at=r.received_at)
            for r in rows
            if r.outcome in _CLAIMS and r.reapply_of is None and r.received_at > dedupe_after
        ]
        if kept:
            # removed in id order: a later claim of the same content (a bundle member claimed again) replaces an
            # earlier one, so the dedupe window counts from the latest claim
            latest = self.dialect.upsert(_D, ["partner_id", "kind", "sha256"], ["ledger_id", "received_at"])
            self.connection.execute(latest, kept)
        removed = self.connection.execute(delete(_G).where(_G.c.id.in_([r.id for r in rows]))).rowcount
        return int(removed)

    def aged_digests(self, partner_id: int, before: Instant, after: int, limit: int) -> list[int]:
        return self._ids(_D.c.ledger_id, _aged_digest(partner_id, before), after, limit)

    def remove_digests(self, partner_id: int, ids: Sequence[int], before: Instant) -> int:
        if not ids:
            return 0
        statement = delete(_D).where(_D.c.ledger_id.in_(list(ids)), _aged_digest(partner_id, before))
        return int(self.connection.execute(statement).rowcount)
