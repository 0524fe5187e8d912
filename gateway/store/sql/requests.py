"""The requests repository on SQL: the answers given to platform requests, by Idempotency-Key."""

from __future__ import annotations

from sqlalchemy import select

from gateway.domain.instant import Instant
from gateway.store import schema
from gateway.store.sql.repository import SqlRepository

_R = schema.platform_requests


class SqlRequests(SqlRepository):
    """The port's RequestRepository."""

    def answer(self, partner_id: int, key: str) -> tuple[str, int, str] | None:
        """The answer given to an Idempotency-Key."""
        query = select(_R.c.request_sha256, _R.c.status, _R.c.body).where(
            _R.c.partner_id == partner_id, _R.c.key == key
        )
        row = self.connection.execute(query).first()
        return None if row is None else (row[0], int(row[1]), row[2])

    def keep(self, partner_id: int, key: str, request_sha256: str, status: int, body: str, now: Instant) -> None:
        """Remember an answer."""
        self.connection.execute(
            _R.insert().values(
                partner_id=partner_id, key=key, request_sha256=request_sha256, status=status, body=body, created_at=now
            )
        )
