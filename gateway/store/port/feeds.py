"""Where each polled partner feed stands: the cursor to send next and the digest of the last page applied."""

from __future__ import annotations

from typing import Protocol

from gateway.domain.instant import Instant
from gateway.store.records import FeedPosition


class FeedRepository(Protocol):
    """Feed cursors, moved in the transaction that applied the page before them (both commit or neither)."""

    def cursor(self, partner_id: int, feed: str) -> str | None:
        """Where a polled feed stands: the cursor to send next, None before the first page."""
        ...

    def position(self, partner_id: int, feed: str) -> FeedPosition:
        """Where a polled feed stands: its cursor and the digest of the last page applied."""
        ...

    def set_cursor(
        self, partner_id: int, feed: str, position: FeedPosition, ledger_id: int | None, now: Instant
    ) -> None:
        """Record where a feed stands, in the transaction that applied the page before it (`ledger_id`).

        A position without a digest keeps the digest stored before (a cursor moved without a page applied)."""
        ...
