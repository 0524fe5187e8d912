"""The stock store port: what the use cases need from a store, whatever database is behind it.

One `write()` block is one transaction: everything an inbound item or a command does commits together or not
at all. Records here are plain data; the rules that compute them live in gateway.domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from gateway.domain.allocation import Line
from gateway.domain.caps import AssemblyCaps
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.domain.status import OrderStatus


class StoreError(Exception):
    """The store could not do what was asked (unreachable, corrupt, locked beyond patience)."""


class StoreBusy(StoreError):
    """Another worker holds the store; the operation may succeed later."""


class StoreContention(StoreBusy):
    """The database rolled the transaction back to untie it from another one (a deadlock, a serialization
    failure): nothing of it was kept, and running it again from the start may well succeed."""


class Conflict(StoreError):
    """A uniqueness rule of the store was hit."""


class AlreadyApplied(Conflict):
    """The same content was applied for the same partner and kind by someone else meanwhile."""


@dataclass
class StockRecord:
    """A SKU's stock row: level, inventory timestamp and the cached allocation and published ATS."""

    sku: str
    quantity: int
    as_of: Instant | None = None
    allocated: int = 0
    published: int | None = None
    last_moved_at: Instant | None = None
    set_by: int | None = None


@dataclass(frozen=True)
class LineRecord:
    """One stored order line."""

    sku: str
    quantity: int
    confirmed_quantity: int | None = None
    confirmed_at: Instant | None = None
    assembly: str | None = None
    collection: str | None = None


@dataclass(frozen=True)
class OrderRecord:
    """One stored order with its lines."""

    order_id: str
    status: OrderStatus
    lines: tuple[LineRecord, ...]
    updated_at: Instant = 0

    def line(self, sku: str) -> LineRecord | None:
        """The order's line for `sku`, if it holds one."""
        return next((line for line in self.lines if line.sku == sku), None)

    def domain_line(self, line: LineRecord, status: OrderStatus | None = None) -> Line:
        """`line` as the allocation rules see it, in this order's status or `status`."""
        return Line(
            order_id=self.order_id,
            sku=line.sku,
            quantity=line.quantity,
            status=status or self.status,
            confirmed_quantity=line.confirmed_quantity,
            confirmed_at=line.confirmed_at,
        )


@dataclass
class ChannelRecord:
    """One (SKU, assembly, collection) channel: units ordered in it and its last published ATS."""

    sku: str
    assembly: str
    collection: str
    ordered: int = 0
    published: int | None = None


@dataclass(frozen=True)
class CapRow:
    """One stored cap setting: `collection` "*" is the assembly default; `max_units` None is "no maximum"."""

    sku: str
    assembly: str
    collection: str
    max_units: int | None


@dataclass(frozen=True)
class LedgerRecord:
    """One inbound item as the ledger remembers it."""

    id: int
    partner: str
    kind: str
    source: str
    sha256: str
    size: int
    received_at: Instant
    finished_at: Instant | None
    outcome: str
    rows_applied: int
    rows_skipped: int
    rows_refused: int
    error: str | None
    report: str | None


class OutboxRecord(NamedTuple):
    """One message owed to a partner (a tuple: a batch holds thousands)."""

    id: int
    partner: str
    kind: str
    key: str
    value: int | None
    as_of: Instant | None
    payload: str | None
    ledger_id: int | None
    created_at: Instant
    state: str
    attempts: int
    next_attempt_at: Instant | None = None
    last_error: str | None = None
    last_status: int | None = None
    batch_id: str | None = None
    delivered_at: Instant | None = None
    run_id: str | None = None
    claimed_until: Instant | None = None


@dataclass(frozen=True)
class Claim:
    """A batch of one kind of message claimed for delivery; `batch_id` is the request's Idempotency-Key."""

    batch_id: str
    kind: str
    messages: tuple[OutboxRecord, ...]
    resend: bool  # sent before without a known outcome: the same key again, so the partner can deduplicate
    lease_until: Instant = 0  # the claim's lease: settling touches only rows still held under it

    @property
    def ids(self) -> list[int]:
        """The messages' outbox ids."""
        return [message.id for message in self.messages]

    @property
    def run_ids(self) -> list[str]:
        """The runs (inbound items) that queued the batch's messages, for the delivery's logs."""
        return sorted({message.run_id for message in self.messages if message.run_id})


@dataclass(frozen=True)
class OutboxCount:
    """How many messages of one kind are in one state, and when the oldest was queued and the next is due."""

    kind: str
    state: str
    count: int
    oldest: Instant
    next_attempt_at: Instant | None


class AtsMessage(NamedTuple):
    """A published ATS value to queue for a SKU."""

    sku: str
    value: int
    as_of: Instant | None


class TransportFailures(NamedTuple):
    """A source file's transport failures so far: how many, and when the first of them was."""

    number: int
    first_at: Instant


@dataclass
class LedgerCounts:
    """Rows applied, skipped (stale) and refused (by the rules) in one item."""

    applied: int = 0
    skipped: int = 0
    refused: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass
class MergeOutcome:
    """What a set-based merge of stock levels did (see LevelLoader)."""

    rows: int = 0
    skipped: int = 0  # stale rows
    stale_sample: list[str] = field(default_factory=list)
    predates_movement: int = 0
    predates_sample: list[str] = field(default_factory=list)
    changed: int = 0  # SKUs whose published ATS moved (or was first published)
    changes: list[tuple[str, int | None, int]] = field(default_factory=list)  # the first of them: sku, before, after


class LevelLoader(Protocol):
    """A large snapshot's levels streamed into the store, then merged in one set-based statement.

    The merge applies the rules of Engine.apply_stock for a partner with no channel and no closed line that may
    allocate: a new SKU is stored with its level as ATS; a stored SKU takes a level that differs and is not older
    than its inventory timestamp (else the row is stale), its published ATS is max(0, level - allocated), and every
    published ATS that moved is queued, replacing an undelivered older value of the SKU."""

    def add(self, rows: Sequence[tuple[str, int, Instant]]) -> None:
        """Stream (sku, level, as_of) rows (every SKU once in a snapshot)."""
        ...

    def merge(self, *, set_by: int | None, now: Instant, moves_stock: bool, sample: int) -> MergeOutcome:
        """Apply every row added; `moves_stock`: the partner's mode moves stock (count rows that predate a
        movement); up to `sample` changes are listed."""
        ...


class Transaction(Protocol):
    """The operations of one store transaction."""

    def level_loader(self, partner_id: int, ledger_id: int | None) -> LevelLoader | None:
        """A bulk loader for a large snapshot, where the store has one (PostgreSQL's COPY); else None."""
        ...

    def lock_partner(self, partner_id: int) -> None:
        """Hold the partner alone until the transaction ends (an inbound item): other workers' items and
        commands of the partner wait. A no-op on a store that takes one writer at a time."""
        ...

    def lock_keys(self, partner_id: int, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> bool:
        """Hold these orders and SKUs of the partner until the transaction ends (a command), in one fixed key
        order; return whether a lock was taken now (so what was read before may be out of date)."""
        ...

    def partner_id(self, name: str) -> int:
        """The store id of partner `name` (registered by `sync_partner`)."""
        ...

    def sync_partner(self, name: str, policy: Policy, now: Instant) -> tuple[int, bool]:
        """Register partner `name` with `policy`; return its id and whether its policy changed."""
        ...

    def stock(self, partner_id: int, skus: Sequence[str]) -> dict[str, StockRecord]:
        """The stock rows of the given SKUs that exist."""
        ...

    def stock_versions(
        self, partner_id: int, skus: Sequence[str]
    ) -> dict[str, tuple[str, int, Instant | None]] | list[tuple[str, int, Instant | None]]:
        """(sku, quantity, as_of) of the existing stock rows of the given SKUs: a dict by SKU, or for a batch
        sorted by SKU possibly a list of the stored rows in the batch's key range, in SKU order."""
        ...

    def holds_stock(self, partner_id: int) -> bool:
        """Whether the partner has any stock row at all."""
        ...

    def iter_stock(self, partner_id: int, skus: Sequence[str] | None = None) -> Iterator[StockRecord]:
        """Stock rows in SKU order, all of them or the given SKUs."""
        ...

    def put_stock(self, partner_id: int, records: Sequence[StockRecord], now: Instant) -> None:
        """Insert or replace these stock rows."""
        ...

    def insert_stock(
        self, partner_id: int, levels: Sequence[tuple[str, int, Instant, int]], set_by: int | None, now: Instant
    ) -> None:
        """Insert rows for SKUs the store does not hold yet: (sku, quantity, as_of, published), nothing allocated."""
        ...

    def order(self, partner_id: int, order_id: str) -> OrderRecord | None:
        """The order and its lines, or None."""
        ...

    def add_order(
        self, partner_id: int, order_id: str, status: OrderStatus, lines: Sequence[LineRecord], now: Instant
    ) -> None:
        """Store a new order with its lines."""
        ...

    def set_order_status(self, partner_id: int, order_id: str, status: OrderStatus, now: Instant) -> None:
        """Record an order's new status."""
        ...

    def add_confirmation(
        self,
        partner_id: int,
        order_id: str,
        sku: str,
        quantity: int,
        at: Instant,
        now: Instant,
        *,
        in_force: bool,
    ) -> None:
        """Keep a confirmation; when `in_force`, it becomes the line's confirmation."""
        ...

    def lines_of(self, partner_id: int, skus: Sequence[str], statuses: Sequence[OrderStatus]) -> list[Line]:
        """Lines of the given SKUs whose order is in one of `statuses`."""
        ...

    def all_lines(self, partner_id: int) -> Iterator[Line]:
        """Every line of the partner that is not cancelled."""
        ...

    def queue_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, Instant | None]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue published ATS values, replacing undelivered older values of the same SKU."""
        ...

    def queue_message(
        self, partner_id: int, kind: str, key: str, payload: str, ledger_id: int | None, now: Instant
    ) -> bool:
        """Queue an order message once per (kind, key); return False when it was already queued."""
        ...

    def caps(self, partner_id: int, skus: Sequence[str]) -> dict[tuple[str, str], AssemblyCaps]:
        """The cap settings of the given SKUs, by (sku, assembly)."""
        ...

    def put_caps(self, partner_id: int, sku: str, assembly: str, settings: AssemblyCaps, now: Instant) -> None:
        """Replace every cap setting of one SKU in one assembly."""
        ...

    def cap_rows(self, partner_id: int, sku: str | None = None, assembly: str | None = None) -> list[CapRow]:
        """Stored cap settings, by SKU, assembly and collection ("*" first)."""
        ...

    def holds_channels(self, partner_id: int) -> bool:
        """Whether the partner has any channel (a cap or an order in a collection)."""
        ...

    def channels(self, partner_id: int, skus: Sequence[str]) -> list[ChannelRecord]:
        """The channels of the given SKUs."""
        ...

    def put_channels(self, partner_id: int, records: Sequence[ChannelRecord]) -> None:
        """Insert or replace these channels."""
        ...

    def queue_channel_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, str]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue channel ATS values (key, value, payload), replacing undelivered older values of the same key."""
        ...

    def outbox(
        self, partner_id: int, state: str | None = "pending", kind: str | None = None, limit: int | None = None
    ) -> list[OutboxRecord]:
        """Messages of the partner in `state` (all states for None), of `kind` (every kind for None), oldest first."""
        ...

    def pending_kinds(self, partner_id: int) -> set[str]:
        """The kinds of message waiting for the partner."""
        ...

    def outbox_counts(self, partner_id: int) -> list[OutboxCount]:
        """Messages by kind and state."""
        ...

    def claim(
        self, partner_id: int, kind: str, now: Instant, limit: int, lease_until: Instant, batch_id: str
    ) -> Claim | None:
        """Claim the next due batch of `kind`: a batch sent before and due again first (with its own id, whole),
        else up to `limit` due messages never batched, under `batch_id`. None when nothing is due."""
        ...

    def unclaim(self, claim: Claim) -> None:
        """Give back a claimed batch that was not sent: claimable again at once (a batch sent before keeps its id)."""
        ...

    def settle_delivered(self, claim: Claim, status: int | None, now: Instant, attempts: int = 1) -> int:
        """The partner took the batch (after `attempts` attempts in this pass): its messages are delivered (a
        message replaced meanwhile by a newer value stays pending). Returns how many were marked delivered."""
        ...

    def settle_failed(
        self,
        claim: Claim,
        *,
        attempts: int,
        status: int | None,
        error: str,
        next_attempt_at: Instant,
        max_attempts: int,
        queued_before: Instant,
        now: Instant,
    ) -> int:
        """The batch failed `attempts` more times: due again at `next_attempt_at`, except messages that reached
        `max_attempts` or were queued before `queued_before`, which go to dead letter. Returns how many did."""
        ...

    def settle_dead(self, claim: Claim, *, attempts: int, status: int | None, error: str, now: Instant) -> int:
        """The partner refused the batch for good: its messages go to dead letter. Returns how many did."""
        ...

    def revive(self, partner_id: int, ids: Sequence[int] | None, now: Instant) -> tuple[int, int]:
        """Put dead messages (the given ids, or all) back in the queue, due now. A dead value whose key has a
        newer value queued or delivered since is superseded instead. Returns (revived, superseded)."""
        ...

    def feed_cursor(self, partner_id: int, feed: str) -> str | None:
        """Where a polled feed stands: the cursor to send next, None before the first page."""
        ...

    def feed_position(self, partner_id: int, feed: str) -> tuple[str | None, str | None]:
        """(cursor, digest of the last page applied) of a polled feed."""
        ...

    def set_feed_cursor(
        self,
        partner_id: int,
        feed: str,
        cursor: str | None,
        ledger_id: int | None,
        now: Instant,
        last_sha256: str | None = None,
    ) -> None:
        """Record where a feed stands, in the transaction that applied the page before it."""
        ...

    def request_answer(self, partner_id: int, key: str) -> tuple[str, int, str] | None:
        """(request digest, status, body) of the answer given to an Idempotency-Key, if any."""
        ...

    def keep_answer(self, partner_id: int, key: str, request_sha256: str, status: int, body: str, now: Instant) -> None:
        """Remember the answer given to an Idempotency-Key (Conflict when the key has one already)."""
        ...

    def partner_policies(self) -> dict[str, tuple[str, bool]]:
        """Every registered partner's (stock mode, pending allocation)."""
        ...

    def release_claims(self) -> int:
        """Free every claimed message; how many were claimed."""
        ...

    def breaker_open_until(self, partner_id: int) -> Instant | None:
        """Until when the partner's delivery breaker is open, if it is."""
        ...

    def set_breaker(self, partner_id: int, open_until: Instant | None) -> None:
        """Open the partner's delivery breaker until then (None: close it)."""
        ...

    def ledger_applied(self, partner_id: int, kind: str, sha256: str, outcome: str = "applied") -> int | None:
        """The id of the entry that applied this content already (or the first one with `outcome`), if any."""
        ...

    def ledger_open(
        self,
        partner_id: int,
        kind: str,
        source: str,
        sha256: str,
        size: int,
        received_at: Instant,
        outcome: str = "applied",
    ) -> int:
        """Start a ledger entry and return its id; an `applied` entry claims the content (Conflict if taken)."""
        ...

    def ledger_close(
        self,
        entry_id: int,
        outcome: str,
        counts: LedgerCounts,
        error: str | None,
        report: str | None,
        now: Instant,
    ) -> None:
        """Record what became of an item."""
        ...

    def ledger_since(self, partner_id: int, since: Instant) -> list[tuple[str, str, int, int, int]]:
        """(kind, outcome, items, rows applied, rows refused) of the items received since `since`."""
        ...

    def ledger(self, partner_id: int, limit: int = 100) -> list[LedgerRecord]:
        """The latest ledger entries, newest first."""
        ...

    def transport_failed(
        self, partner_id: int, source: str, identity: str, error: str, now: Instant
    ) -> TransportFailures:
        """Count one more transport failure of a source file; return how many it has had, and since when."""
        ...

    def quarantine(self, partner_id: int, source: str, identity: str, now: Instant, ledger_id: int) -> None:
        """Stop retrying a source file; `ledger_id` is the `quarantined` ledger entry that says so."""
        ...

    def release(self, partner_id: int, ledger_id: int, now: Instant) -> bool:
        """Put the file quarantined under ledger entry `ledger_id` back in line: its failures are forgotten and
        the entry's outcome becomes `released`. False when the entry is no quarantined file of the partner."""
        ...

    def quarantined(self, partner_id: int, source: str) -> set[str]:
        """Identities of the source's quarantined files."""
        ...

    def transport_recovered(self, partner_id: int, source: str, identity: str) -> None:
        """Forget a source file's transport failures (it went through)."""
        ...


class Store(Protocol):
    """A stock store: transactions on demand."""

    def write(self, *, rollback: bool = False, wait: float | None = None) -> AbstractContextManager[Transaction]:
        """A transaction that may write; committed when the block ends normally, rolled back otherwise.

        With `rollback=True` it is a rehearsal (a dry run): rolled back whatever happens. With `wait`, StoreBusy
        when the store's writer is not free within that many seconds (None: as long as it takes).
        """
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A transaction that only reads."""
        ...

    def source_lock(self, name: str) -> AbstractContextManager[bool]:
        """True while this process may poll the source `name` (one worker at a time), without waiting."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
