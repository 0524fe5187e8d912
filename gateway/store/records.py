"""The store's records: plain data a repository of the store takes and gives back.

The rules that compute them live in gateway.domain; the store only keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO, NamedTuple

from gateway.domain.allocation import Line
from gateway.domain.atp import SchedulePoint
from gateway.domain.days import CollectionDates
from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind, OutboxState
from gateway.domain.orders import RequestedLine
from gateway.domain.outcomes import Outcome
from gateway.domain.status import OrderStatus

StockVersion = tuple[str, int, Instant | None]
"""(sku, quantity, as_of) of a stored stock row: enough to tell what a snapshot's row changes."""

StockVersions = list[StockVersion | None]
"""What StockRepository.versions gives back: one entry per SKU asked for, in the order asked, None where the store
holds no row for it."""


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
class LineRecord(RequestedLine):
    """One stored order line: the line as requested, and the partner's confirmation in force for it, if any."""

    confirmed_quantity: int | None = None
    confirmed_at: Instant | None = None
    demand_on: date | None = None  # the date the line is demand for (None: today; docs/rules.md, "Dated demand")


@dataclass(frozen=True)
class OrderRecord:
    """One stored order with its lines."""

    order_id: str
    status: OrderStatus
    lines: tuple[LineRecord, ...]
    updated_at: Instant = 0  # when it reached its status (a status set again moves nothing)
    created_at: Instant = 0

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


@dataclass(frozen=True)
class OrderEvent:
    """One step of an order's history: the status it reached, when, and what moved it: an inbound item (its ledger
    entry, and that entry's source read back with it) or a command (`command`: where it was given, `cli` or `api`).
    Neither: unknown (the status an order already had when the store began keeping histories)."""

    status: OrderStatus
    at: Instant
    ledger_id: int | None = None
    command: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ConfirmationRecord:
    """A confirmation as received for one line: `in_force` unless a later-stamped one had arrived before it."""

    sku: str
    confirmed_quantity: int
    confirmed_at: Instant
    received_at: Instant
    in_force: bool


@dataclass(frozen=True)
class OrderQuery:
    """Which of a partner's orders to list, oldest status first (by the time each reached its status).

    `statuses`: the orders in one of these (empty: none). `updated_before`: only those that reached their status
    before this instant. `closed_unsettled`: a closed order only when one of its lines may not be in its SKU's
    inventory yet (no confirmation, no snapshot of the SKU, or a confirmation stamped after the SKU's inventory
    timestamp: where the time_based rule looks); the rule itself still decides each line. At most `limit` orders."""

    statuses: frozenset[OrderStatus]
    updated_before: Instant | None = None
    closed_unsettled: bool = False
    limit: int = 100


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
class CollectionRow:
    """One collection's stored dates (gateway.domain.days.CollectionDates), with when they were last set."""

    assembly: str
    collection: str
    dates: CollectionDates
    updated_at: Instant


@dataclass(frozen=True)
class Inbound:
    """An inbound item as its ledger entry opens: whose, what kind, where it came from, its content's digest and
    size, and when it was received (the entry's columns, by name)."""

    partner_id: int
    kind: str
    source: str
    sha256: str
    size: int
    received_at: Instant
    reapply_of: int | None = None  # an item applying again on purpose the content of this entry: it claims nothing


@dataclass(frozen=True)
class LedgerTally:
    """Items of one kind and outcome received in a window, with the rows they applied and refused."""

    kind: str
    outcome: Outcome
    items: int
    rows_applied: int
    rows_refused: int


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
    outcome: Outcome
    rows_applied: int
    rows_skipped: int
    rows_refused: int
    error: str | None
    report: str | None
    reapply_of: int | None = None  # the entry whose content this one applied again on purpose
    run_id: str | None = None  # the run_id of the log lines of its handling (entries before 0012: None)


# the payload of an ATS message that owes its partner a schedule even when its SKU holds no dated supply any more:
# the empty schedule then sent tells the partner to drop the dates it holds (an ATS message's payload is else NULL)
SCHEDULE_OWED = '{"schedule":true}'


class OutboxRecord(NamedTuple):
    """One message owed to a partner (a tuple: a batch holds thousands)."""

    id: int
    partner: str
    kind: MessageKind
    key: str
    value: int | None
    as_of: Instant | None
    payload: str | None
    ledger_id: int | None
    created_at: Instant
    state: OutboxState
    attempts: int
    next_attempt_at: Instant | None = None
    last_error: str | None = None
    last_status: int | None = None
    batch_id: str | None = None
    delivered_at: Instant | None = None
    run_id: str | None = None
    claimed_until: Instant | None = None
    # an ATS message of a SKU with dated supply, as claimed for delivery: the schedule's next dates, read from the
    # store by the claim (gateway.service.schedules); None: no schedule is sent (never stored in the outbox)
    schedule: tuple[SchedulePoint, ...] | None = None


@dataclass(frozen=True)
class Claim:
    """A batch of one kind of message claimed for delivery; `batch_id` is the request's Idempotency-Key."""

    batch_id: str
    kind: MessageKind
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
class BatchFailure:
    """How a claimed batch failed in one delivery pass: the attempts it took, the partner's last HTTP status (None:
    no answer) and the error; the batch's messages keep all three."""

    attempts: int
    status: int | None
    error: str


@dataclass(frozen=True)
class OutboxCount:
    """How many messages of one kind are in one state, and when the oldest was queued and the next is due."""

    kind: MessageKind
    state: OutboxState
    count: int
    oldest: Instant
    next_attempt_at: Instant | None


class AtsMessage(NamedTuple):
    """A published ATS value to queue for a SKU."""

    sku: str
    value: int
    as_of: Instant | None


class FeedPosition(NamedTuple):
    """Where a polled feed stands: the cursor to send next (None before the first page) and the digest of the last
    page applied (None: none yet; given to set_cursor, the stored one is kept)."""

    cursor: str | None
    last_sha256: str | None


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


@dataclass(frozen=True)
class SnapshotFile:
    """A snapshot file as its bytes, for a store that reads it itself (LevelLoader.copy_file): how its rows are cut
    (the header read already, on one line) and the bounds every value must keep for the store to take the file.

    `stream` is read from its start to its end; `positions` are the columns of sku, quantity and as_of (None: the
    file has no as_of column), counted from 0 in a row `width` cells wide."""

    stream: BinaryIO
    delimiter: str
    width: int
    positions: tuple[int, int, int | None]
    max_line_bytes: int
    default_as_of: Instant  # a row's as_of when its cell is empty
    latest_as_of: Instant  # the latest as_of taken (later ones are refused at their line: the Python reader's work)
    naive_utc: bool  # a timestamp without an offset is in UTC (the partner's zone is UTC); else it is not taken


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
    oversold_count: int = 0  # SKUs the merge put below their allocation that were not
    oversold: list[tuple[str, int, int]] = field(default_factory=list)  # the first of them: sku, level, allocated


class LineAtOnce(NamedTuple):
    """A line of a placement in one statement: its SKU, the units ordered, and the units it allocates under the
    partner's mode (decided by the rules before the call)."""

    sku: str
    quantity: int
    units: int


@dataclass(frozen=True)
class PlaceAtOnce:
    """An order to place in one statement (see Store.place_at_once): lines by SKU, none naming a channel; `key` and
    `digest` an Idempotency-Key and its request's digest (the answer is kept with the order), or None."""

    partner: str
    order_id: str
    lines: tuple[LineAtOnce, ...]
    now: Instant
    command: str | None
    key: str | None = None
    digest: str | None = None


@dataclass
class PlacedAtOnce:
    """What a placement in one statement did: `placed` (with the published ATS values that moved: sku, before,
    after; and `body`, the answer kept for its Idempotency-Key), `short` (nothing written; each line asking for
    more than its SKU's ATS: sku, asked, ATS), `exists` (the order id is taken), `replay` (the key's answer:
    digest, status, body), or `busy` / `general`: nothing decided, the engine's general path places the order."""

    outcome: str
    changes: list[tuple[str, int | None, int]] = field(default_factory=list)
    shortages: list[tuple[str, int, int]] = field(default_factory=list)
    answer: tuple[str, int, str] | None = None
    body: str | None = None  # placed under an Idempotency-Key: the answer kept for it (a 201's body)
