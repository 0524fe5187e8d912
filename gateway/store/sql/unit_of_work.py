"""The port's UnitOfWork on SQL: every repository of the adapter, on one connection in one database transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.store.port import UnitOfWork
from gateway.store.sql.caps import SqlCaps
from gateway.store.sql.collections import SqlCollections
from gateway.store.sql.feeds import SqlFeeds
from gateway.store.sql.ledger import SqlLedger
from gateway.store.sql.orders import SqlOrders
from gateway.store.sql.outbox import SqlOutbox
from gateway.store.sql.partners import SqlPartners
from gateway.store.sql.repository import Shared
from gateway.store.sql.requests import SqlRequests
from gateway.store.sql.retention import SqlRetention
from gateway.store.sql.stock import SqlStock
from gateway.store.sql.supply import SqlSupply


@dataclass(frozen=True, eq=False)
class SqlUnitOfWork(UnitOfWork):
    """The repositories of one transaction, sharing its connection, its dialect, its locks and its run.

    `locks` holds what the transaction has locked (PostgreSQL's advisory locks; nothing on SQLite's one writer):
    an inbound item holds its partner alone (`locks.partner`), a command the orders and SKUs it touches
    (`locks.keys`, in one key order, so two commands never wait on each other in a cycle)."""

    connection: Connection
    """The transaction's connection: the adapter's own, for its tests and tools, not part of the port."""

    @classmethod
    def on(cls, shared: Shared) -> SqlUnitOfWork:
        """Every repository of the transaction, on what they share."""
        return cls(
            locks=shared.locks,
            partners=SqlPartners(shared),
            stock=SqlStock(shared),
            orders=SqlOrders(shared),
            caps=SqlCaps(shared),
            collections=SqlCollections(shared),
            outbox=SqlOutbox(shared),
            ledger=SqlLedger(shared),
            feeds=SqlFeeds(shared),
            requests=SqlRequests(shared),
            retention=SqlRetention(shared),
            supply=SqlSupply(shared),
            connection=shared.connection,
        )
