"""Where each polled partner feed stands: the cursor to send next and the digest of the last page applied."""

from __future__ import annotations

from typing import Protocol

from gateway.domain.instant import Instant


class FeedRepository(Protocol):
    """Feed cursors, moved in the transaction that applied the page before them (both commit or neither)."""

    def cursor(self, partner_id: int, feed: str) -> str | None:
        """Where a polled feed stands: the cursor to send next, None before the first page."""
        ...

    def position(self, partner_id: int, feed: str) -> tuple[str | None, str | None]:
        """(cursor, digest of the last page applied) of a polled feed."""
        ...

    def set_cursor(
        self,
        partner_id: int,
        feed: str,
        cursor: str | None,
        ledger_id: int | None,
        now: Instant,
        last_sha256: str | None = None,
    ) -> None:
        """Record where a feed stands, in the transaction that applied the page before it.

        `last_sha256` None keeps the digest stored before (a cursor moved without a page applied)."""
        ...
