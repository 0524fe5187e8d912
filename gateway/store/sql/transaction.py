"""The port's Transaction on SQL: every repository of the adapter, on one connection in one database transaction."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store.sql.caps import SqlCaps
from gateway.store.sql.delivery import SqlDelivery
from gateway.store.sql.feeds import SqlFeeds
from gateway.store.sql.ledger import SqlLedger
from gateway.store.sql.orders import SqlOrders
from gateway.store.sql.outbox import SqlOutbox
from gateway.store.sql.partners import SqlPartners
from gateway.store.sql.requests import SqlRequests
from gateway.store.sql.stock import SqlStock


class SqlTransaction(
    SqlPartners, SqlStock, SqlOrders, SqlCaps, SqlOutbox, SqlDelivery, SqlLedger, SqlFeeds, SqlRequests
):
    """The port's Transaction on one SQLAlchemy connection inside one database transaction."""

    # locks (PostgreSQL: advisory, held to the end of the transaction; SQLite's one writer needs none)

    def lock_partner(self, partner_id: int) -> None:
        """Hold the partner alone for the rest of the transaction (an inbound item: a file, a page)."""
        self.locks.partner(partner_id)

    def lock_keys(self, partner_id: int, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> bool:
        """Hold these orders and SKUs of the partner for the rest of the transaction (a command); return whether
        it took a lock it did not hold (and so may have waited: what it read before may be out of date).

        The partner is held shared (commands run side by side; an inbound item waits for them and they for
        it), then the orders' keys, then the SKUs', each in ascending order, so two commands never wait on each
        other in a cycle."""
        return self.locks.keys(partner_id, orders, skus)
