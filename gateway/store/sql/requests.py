"""The requests repository on SQL: the answers given to platform requests, by Idempotency-Key."""

from __future__ import annotations

from gateway.domain.instant import Instant
from gateway.store.sql.repository import SqlRepository


class SqlRequests(SqlRepository):
    """The port's RequestRepository."""

    def answer(self, partner_id: int, key: str) -> tuple[str, int, str] | None:
        """The answer given to an Idempotency-Key."""
        for digest, status, body in self._fetch("request_answer", partner_id, key):
            return digest, int(status), body
        return None

    def keep(self, partner_id: int, key: str, request_sha256: str, status: int, body: str, now: Instant) -> None:
        """Remember an answer."""
        self._write("keep_request", partner_id, key, request_sha256, status, body, now)
