"""The stock store port: what the use cases need from a store, whatever database is behind it.

One `write()` block is one transaction (a unit of work): everything an inbound item or a command does commits
together or not at all. Its operations come in small repositories, one per aggregate, each a protocol of its own
module: stock, supply (dated receipts), orders, caps (and channels), collections (their dates), outbox, ledger
(and transport failures), feeds, partners, requests (idempotent answers), retention (what is old enough, removed),
and the locks a shared store takes. A `UnitOfWork` holds them all on one connection.

Records are plain data (gateway.store.records); the rules that compute them live in gateway.domain. Errors are
the store's own (gateway.store.errors). Every name is importable from here, as before the port was split.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from gateway.domain.atp import Receipts
from gateway.store.errors import AlreadyApplied, Conflict, StoreBusy, StoreContention, StoreError
from gateway.store.port.caps import CapRepository
from gateway.store.port.collections import CollectionRepository
from gateway.store.port.feeds import FeedRepository
from gateway.store.port.ledger import LedgerRepository
from gateway.store.port.locks import Locks
from gateway.store.port.orders import OrderRepository
from gateway.store.port.outbox import OutboxRepository
from gateway.store.port.partners import PartnerRepository
from gateway.store.port.requests import RequestRepository
from gateway.store.port.retention import RetentionRepository
from gateway.store.port.stock import LevelLoader, StockRepository
from gateway.store.port.supply import SupplyRepository
from gateway.store.records import (
    AtsMessage,
    BatchFailure,
    CapRow,
    ChannelRecord,
    Claim,
    CollectionRow,
    ConfirmationRecord,
    FeedPosition,
    Inbound,
    LedgerCounts,
    LedgerRecord,
    LedgerTally,
    LineAtOnce,
    LineRecord,
    MergeOutcome,
    OrderEvent,
    OrderQuery,
    OrderRecord,
    OutboxCount,
    OutboxRecord,
    PlaceAtOnce,
    PlacedAtOnce,
    StockRecord,
    StockVersion,
    StockVersions,
    TransportFailures,
)

__all__ = [
    "AlreadyApplied",
    "AtsMessage",
    "BatchFailure",
    "CapRepository",
    "CapRow",
    "ChannelRecord",
    "Claim",
    "CollectionRepository",
    "CollectionRow",
    "ConfirmationRecord",
    "Conflict",
    "FeedPosition",
    "FeedRepository",
    "Inbound",
    "LedgerCounts",
    "LedgerRecord",
    "LedgerRepository",
    "LedgerTally",
    "LevelLoader",
    "LineAtOnce",
    "LineRecord",
    "Locks",
    "MergeOutcome",
    "OrderEvent",
    "OrderQuery",
    "OrderRecord",
    "OrderRepository",
    "OutboxCount",
    "OutboxRecord",
    "OutboxRepository",
    "PartnerRepository",
    "PlaceAtOnce",
    "PlacedAtOnce",
    "Receipts",
    "RequestRepository",
    "RetentionRepository",
    "StockRecord",
    "StockRepository",
    "StockVersion",
    "StockVersions",
    "Store",
    "StoreBusy",
    "StoreContention",
    "StoreError",
    "SupplyRepository",
    "TransportFailures",
    "UnitOfWork",
]


@dataclass(frozen=True, eq=False)
class UnitOfWork:
    """One store transaction: its repositories, all on one connection, committed or rolled back together.

    Each repository is a narrow protocol of its own module, reached by aggregate (`uow.stock.get(...)`,
    `uow.outbox.claim(...)`). A driver's failure in any of them leaves the transaction's block as a StoreError
    (StoreBusy: try again later; StoreContention: the database rolled it back, run it again from its start;
    Conflict: a uniqueness rule), never as the driver's own exception."""

    locks: Locks
    """The locks the transaction holds to its end (PostgreSQL; none on SQLite's one writer)."""
    partners: PartnerRepository
    """Partners: ids, policies, breakers."""
    stock: StockRepository
    """Stock rows, one per (partner, SKU)."""
    orders: OrderRepository
    """Orders, their lines and confirmations."""
    caps: CapRepository
    """Caps per assembly and collection, and the channels' published values."""
    collections: CollectionRepository
    """Collections' dates: when each takes orders, and its pickup date."""
    outbox: OutboxRepository
    """Messages to deliver: queued, claimed, settled."""
    ledger: LedgerRepository
    """Inbound items and transport failures."""
    feeds: FeedRepository
    """Feed cursors."""
    requests: RequestRepository
    """Answers kept for idempotency keys."""
    retention: RetentionRepository
    """What is old enough, removed in batches."""
    supply: SupplyRepository
    """Dated receipts of each SKU's supply schedule (its on-hand part is the stock row)."""


class Store(Protocol):
    """A stock store: transactions on demand."""

    def write(
        self, *, rollback: bool = False, wait: float | None = None, run_id: str | None = None
    ) -> AbstractContextManager[UnitOfWork]:
        """A transaction that may write; committed when the block ends normally, rolled back otherwise.

        `run_id` names the inbound item being handled (a file, a page), kept with every message it queues so
        that a delivery's log lines lead back to the item.
        With `rollback=True` it is a rehearsal (a dry run): rolled back whatever happens. With `wait`, StoreBusy
        when the store's writer is not free within that many seconds (None: as long as it takes).
        """
        ...

    def read(self) -> AbstractContextManager[UnitOfWork]:
        """A transaction that only reads."""
        ...

    def place_at_once(self, request: PlaceAtOnce) -> PlacedAtOnce | None:
        """Place an order in one statement, its own transaction, where the database can (PostgreSQL; None
        elsewhere): see PlacedAtOnce for what it answers. Nothing is written unless it answers `placed`."""
        ...

    def source_lock(self, name: str) -> AbstractContextManager[bool]:
        """True while this process may poll the source `name` (one worker at a time), without waiting."""
        ...

    def hold_commits(self) -> int:
        """Let no write commit from now on (a worker out of its grace period, about to leave): a commit under way
        ends first, a later one waits for good; how many write transactions were open, so will never commit."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
