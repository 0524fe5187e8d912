"""The feeds repository on SQL: where each polled partner feed stands."""

from __future__ import annotations

from sqlalchemy import select

from gateway.domain.instant import Instant
from gateway.store import schema
from gateway.store.records import FeedPosition
from gateway.store.sql.repository import SqlRepository

_F = schema.feed_cursors


class SqlFeeds(SqlRepository):
    """The port's FeedRepository."""

    def cursor(self, partner_id: int, feed: str) -> str | None:
        """The cursor to send next to a polled feed."""
        query = select(_F.c.cursor).where(_F.c.partner_id == partner_id, _F.c.feed == feed)
        found: str | None = self.connection.execute(query).scalar_one_or_none()
        return found

    def position(self, partner_id: int, feed: str) -> FeedPosition:
        """The feed's row, if any."""
        query = select(_F.c.cursor, _F.c.last_sha256).where(_F.c.partner_id == partner_id, _F.c.feed == feed)
        row = self.connection.execute(query).first()
        return FeedPosition(None, None) if row is None else FeedPosition(row[0], row[1])

    def set_cursor(
        self, partner_id: int, feed: str, position: FeedPosition, ledger_id: int | None, now: Instant
    ) -> None:
        """One upsert on the feed's row; the digest's column is left out of it when the position has none."""
        cursor, last_sha256 = position
        row = {"partner_id": partner_id, "feed": feed, "cursor": cursor, "ledger_id": ledger_id, "updated_at": now}
        update_columns = ["cursor", "ledger_id", "updated_at"]
        if last_sha256 is not None:
            row["last_sha256"] = last_sha256
            update_columns.append("last_sha256")
        self.connection.execute(self.dialect.upsert(_F, ("partner_id", "feed"), update_columns), row)
