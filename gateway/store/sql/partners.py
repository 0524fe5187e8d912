"""The partners' repository on SQL: registration, policies and delivery breakers."""

from __future__ import annotations

from sqlalchemy import select, update

from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.store import schema
from gateway.store.sql.repository import SqlRepository

_P = schema.partners


class SqlPartners(SqlRepository):
    """The port's PartnerRepository."""

    def id_of(self, name: str) -> int:
        """The store id of partner `name`."""
        return self.shared.partners.id_of(self.connection, name)

    def sync(self, name: str, policy: Policy, now: Instant) -> tuple[int, bool]:
        """Register `name` with `policy`; return its id and whether the policy differs from the stored one."""
        self.locks.registering()  # workers starting together register a new partner once
        row = self.connection.execute(
            select(_P.c.id, _P.c.stock_mode, _P.c.pending_allocation).where(_P.c.name == name)
        ).one_or_none()
        if row is None:
            new_id = self.connection.execute(
                _P.insert().values(
                    name=name,
                    stock_mode=policy.mode.value,
                    pending_allocation=policy.pending_allocation,
                    created_at=now,
                )
            ).inserted_primary_key
            assert new_id is not None
            self.shared.partners.ids[name] = int(new_id[0])
            return int(new_id[0]), False
        changed = row.stock_mode != policy.mode.value or bool(row.pending_allocation) != policy.pending_allocation
        if changed:
            self.connection.execute(
                update(_P)
                .where(_P.c.id == row.id)
                .values(stock_mode=policy.mode.value, pending_allocation=policy.pending_allocation)
            )
        self.shared.partners.ids[name] = int(row.id)
        return int(row.id), changed

    def policies(self) -> dict[str, tuple[str, bool]]:
        """One read of the partners table."""
        rows = self.connection.execute(select(_P.c.name, _P.c.stock_mode, _P.c.pending_allocation))
        return {row[0]: (row[1], bool(row[2])) for row in rows}

    def breaker_open_until(self, partner_id: int) -> Instant | None:
        """The partner row's `breaker_open_until`."""
        query = select(_P.c.breaker_open_until).where(_P.c.id == partner_id)
        found: Instant | None = self.connection.execute(query).scalar_one_or_none()
        return found

    def set_breaker(self, partner_id: int, open_until: Instant | None) -> None:
        """Open (or close) the partner's delivery breaker."""
        self.connection.execute(update(_P).where(_P.c.id == partner_id).values(breaker_open_until=open_until))
