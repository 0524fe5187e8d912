"""The answers given to platform requests, by Idempotency-Key: a request sent again gets the same answer."""

from __future__ import annotations

from typing import Protocol

from gateway.domain.instant import Instant


class RequestRepository(Protocol):
    """Idempotent answers, kept in the transaction that did what the request asked (both or neither)."""

    def answer(self, partner_id: int, key: str) -> tuple[str, int, str] | None:
        """(request digest, status, body) of the answer given to an Idempotency-Key, if any."""
        ...

    def keep(self, partner_id: int, key: str, request_sha256: str, status: int, body: str, now: Instant) -> None:
        """Remember the answer given to an Idempotency-Key (Conflict when the key has one already).

        The Conflict leaves the transaction's block (a request that raced with ours kept its answer first)."""
        ...
