"""The store's tables, as SQLAlchemy Core metadata. Migrations under migrations/ build exactly this.

Instants are BigInteger microseconds since the epoch, UTC (gateway.domain.instant): portable, compact, and
compared as integers by the stale-snapshot and confirmation rules. Every table but `partners` holds partners' rows
(`_partner_table`); the helpers below name each kind of column once.

A partial index holds its SQLite condition from the start and gets its PostgreSQL one when `metadata` is first
asked for (a module attribute made on first use): naming a PostgreSQL keyword argument loads SQLAlchemy's whole
PostgreSQL dialect, which a command on a SQLite store never needs (the SQL itself names its conditions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Constraint,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.schema import SchemaItem

from gateway.domain.messages import OutboxState
from gateway.domain.outcomes import Outcome

_metadata = MetaData()
_POSTGRES_WHERE: dict[str, str] = {}  # a partial index's name -> its condition, given to PostgreSQL by _declared()

if TYPE_CHECKING:
    metadata: MetaData  # every table, every index with its conditions for both databases (see _declared)
SQLITE_ONLY = "sqlite_only"  # in a constraint's info: the database has it on SQLite only (see _partner_table)
# the partial indexes' conditions, as the migrations wrote them: an applied ledger entry that claims its content
# (not a re-apply on purpose), a pending message
_CLAIMED = f"outcome = '{Outcome.APPLIED.value}' AND reapply_of IS NULL"
_PENDING = f"state = '{OutboxState.PENDING.value}'"


def _partner_table(
    name: str,
    *items: SchemaItem,
    key: Sequence[str] = (),
    serial: bool = False,
    parent: Constraint | None = None,
    hot: bool = False,
    **options: Any,
) -> Table:
    """A table of partners' rows: its own `id` first when `serial`, then `partner_id` and `items` (its other
    columns and indexes), the primary key (partner_id, *key) when `key` names one, and `parent`, the foreign key
    to what a row belongs to (its partner when None). A `hot` table (written per row by snapshots and placements)
    has that foreign key on SQLite only: PostgreSQL would probe its parent for every row written (migration 0010
    dropped it there; triggers keep a partner with rows, and an order with lines or history, from being deleted).
    `options` are the table's own (Table's keywords)."""
    own_id = [Column("id", Integer, primary_key=True, autoincrement=True)] if serial else []
    primary = [PrimaryKeyConstraint("partner_id", *key)] if key else []
    belongs = parent if parent is not None else ForeignKeyConstraint(["partner_id"], ["partners.id"])
    if hot:
        belongs.info[SQLITE_ONLY] = True
        belongs = belongs.ddl_if(dialect="sqlite")
    partner_id = Column("partner_id", Integer, nullable=False)
    return Table(name, _metadata, *own_id, partner_id, *items, *primary, belongs, **options)


def _identifier(name: str, *, nullable: bool = False) -> Column[Any]:
    """A SKU, an order id, an assembly or a collection: at most 128 characters (the identifier rule's bound)."""
    return Column(name, String(128), nullable=nullable)


def _instant(name: str, *, nullable: bool = False) -> Column[Any]:
    """An instant: microseconds since the epoch, UTC."""
    return Column(name, BigInteger, nullable=nullable)


def _digest(name: str, *, nullable: bool = False) -> Column[Any]:
    """A SHA-256 digest, in hex."""
    return Column(name, String(64), nullable=nullable)


def _count(name: str) -> Column[Any]:
    """A count kept up to date, 0 at first."""
    return Column(name, BigInteger, nullable=False, server_default=text("0"))


def _partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of the rows meeting `where` only, on both databases (PostgreSQL's condition: see _declared)."""
    _POSTGRES_WHERE[name] = where
    return Index(name, *columns, unique=unique, sqlite_where=text(where))


partners = Table(
    "partners",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("stock_mode", String(20), nullable=False),
    Column("pending_allocation", Boolean, nullable=False),
    _instant("created_at"),
    # the partner's delivery circuit breaker is open until then (every process delivering to it respects it)
    _instant("breaker_open_until", nullable=True),
)

stock = _partner_table(
    "stock",
    _identifier("sku"),
    Column("quantity", BigInteger, nullable=False),
    # the inventory timestamp: as_of of the snapshot row that last set the level (None: never snapshotted)
    _instant("as_of", nullable=True),
    # units held by order lines under the partner's mode, kept up to date with every change
    _count("allocated"),
    # the last published ATS queued for the partner (None: never queued)
    Column("published", BigInteger, nullable=True),
    # simple mode: the latest instant the platform took stock for a confirmation
    _instant("last_moved_at", nullable=True),
    # the ledger entry of the file that last set the level (None: set by a command)
    Column("set_by", BigInteger, nullable=True),
    _instant("updated_at"),
    key=("sku",),
    hot=True,
    # one b-tree keyed by (partner, SKU) instead of a rowid table plus an index: snapshots write half as much
    sqlite_with_rowid=False,
)

# dated supply (0013): each SKU's receipts, units that exist from a date on (the partner's calendar date); the
# on-hand part of the schedule is the stock row's level, and a snapshot replaces both under the stock row's as_of
supply_receipts = _partner_table(
    "supply_receipts",
    _identifier("sku"),
    Column("available_from", Date, nullable=False),
    Column("units", BigInteger, nullable=False),
    key=("sku", "available_from"),
)

# units the dated lines of open orders allocate, per SKU and date (0015): a placement reads a SKU's dates, not its
# lines (kept in the transaction that moves a dated line's allocation)
dated_demand = _partner_table(
    "dated_demand",
    _identifier("sku"),
    Column("demand_on", Date, nullable=False),
    Column("units", BigInteger, nullable=False),
    key=("sku", "demand_on"),
    sqlite_with_rowid=False,
)

orders = _partner_table(
    "orders",
    _identifier("order_id"),
    Column("status", String(16), nullable=False),
    _instant("created_at"),
    _instant("updated_at"),
    # listings by status, oldest status first (`gateway order list`, `GET orders`)
    Index("ix_orders_partner_status", "partner_id", "status", "updated_at"),
    key=("order_id",),
    hot=True,
)

# each status an order reached, when, and what moved it (0008; orders older than that start with their status then)
order_events = _partner_table(
    "order_events",
    _identifier("order_id"),
    Column("status", String(16), nullable=False),
    _instant("at"),
    # the inbound item that moved it (a file, a feed page), or the command's origin: cli | api (neither: unknown)
    Column("ledger_id", BigInteger, nullable=True),
    Column("command", String(16), nullable=True),
    Index("ix_order_events_order", "partner_id", "order_id", "id"),
    serial=True,
    parent=ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"]),
    hot=True,
)


def _of_order() -> Constraint:
    """The foreign key to a row's order."""
    return ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"])


order_lines = _partner_table(
    "order_lines",
    _identifier("order_id"),
    _identifier("sku"),
    Column("quantity", BigInteger, nullable=False),
    # the confirmation in force for the line (time_based mode allocates it instead of the ordered quantity)
    Column("confirmed_quantity", BigInteger, nullable=True),
    _instant("confirmed_at", nullable=True),
    _identifier("assembly", nullable=True),
    _identifier("collection", nullable=True),
    # the date the line is demand for (0015): its collection's pickup_on, else the order's wanted_on; NULL: today
    Column("demand_on", Date, nullable=True),
    Index("ix_order_lines_partner_sku", "partner_id", "sku"),
    key=("order_id", "sku"),
    parent=_of_order(),
    hot=True,
)

confirmations = _partner_table(
    "confirmations",
    _identifier("order_id"),
    _identifier("sku"),
    Column("confirmed_quantity", BigInteger, nullable=False),
    _instant("confirmed_at"),
    _instant("received_at"),
    # False when an earlier-stamped confirmation arrived after a later one: kept, not in force
    Column("in_force", Boolean, nullable=False),
    Index("ix_confirmations_order", "partner_id", "order_id", "sku"),
    serial=True,
    parent=_of_order(),
)

ingest_ledger = _partner_table(
    "ingest_ledger",
    Column("kind", String(32), nullable=False),
    Column("source", String(1000), nullable=False),
    _digest("sha256"),
    Column("size", BigInteger, nullable=False),
    _instant("received_at"),
    _instant("finished_at", nullable=True),
    # an Outcome: applied | rejected | duplicate | quarantined | released (a quarantined file put back in line)
    Column("outcome", String(16), nullable=False),
    _count("rows_applied"),
    _count("rows_skipped"),
    _count("rows_refused"),
    Column("error", Text, nullable=True),
    # JSON: the problems found, each with its line number
    Column("report", Text, nullable=True),
    # the entry whose content this one applied again on purpose (`gateway ledger reapply`, `ingest --force`)
    Column("reapply_of", Integer, nullable=True),
    # the run_id bound to the item's log lines (0012): `grep RUN_ID` and the console's search find the entry
    Column("run_id", String(32), nullable=True),
    # the same content is applied at most once per partner and kind, whatever races (but on purpose: a re-apply)
    _partial_index("ux_ingest_ledger_applied", "partner_id", "kind", "sha256", where=_CLAIMED, unique=True),
    Index("ix_ingest_ledger_received", "partner_id", "received_at"),
    # the latest entry of a partner and kind (the content in force), read when a duplicate comes in
    Index("ix_ingest_ledger_kind", "partner_id", "kind", "id"),
    Index("ix_ingest_ledger_run", "partner_id", "run_id"),
    serial=True,
)

# the sha256 of applied content whose ledger entry retention removed (ledger_days), kept for dedupe_days: the
# same content delivered again is still a duplicate of the entry it names (0011)
ledger_digests = _partner_table(
    "ledger_digests",
    # the removed entry: what the duplicate's report names
    Column("ledger_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    _digest("sha256"),
    # the entry's receipt, from which dedupe_days count
    _instant("received_at"),
    Index("ux_ledger_digests_content", "partner_id", "kind", "sha256", unique=True),
    key=("ledger_id",),
)

outbox = _partner_table(
    "outbox",
    # a MessageKind: ats | channel_ats | order_closed | order_export
    Column("kind", String(32), nullable=False),
    # what coalesces: the SKU for ats, the order id for order messages
    Column("key", String(400), nullable=False),
    # ats: the published value and the inventory timestamp it stands on
    Column("value", BigInteger, nullable=True),
    _instant("as_of", nullable=True),
    # order messages: the JSON body
    Column("payload", Text, nullable=True),
    Column("ledger_id", BigInteger, nullable=True),
    _instant("created_at"),
    # an OutboxState: pending | delivered | dead | superseded (a dead value with a newer one of its key)
    Column("state", String(16), nullable=False, server_default=text(f"'{OutboxState.PENDING.value}'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _instant("next_attempt_at", nullable=True),
    Column("last_error", Text, nullable=True),
    _instant("delivered_at", nullable=True),
    # the batch a message was last sent in: its id is the request's Idempotency-Key, reused on a re-send
    Column("batch_id", String(64), nullable=True),
    # a claimed batch is kept from other claims until then (a worker that died lets it go at that time)
    _instant("claimed_until", nullable=True),
    # the partner's last HTTP status for this message (dead letters keep why)
    Column("last_status", Integer, nullable=True),
    # the run (one inbound item's handling) that queued this value: its logs and the delivery's share it
    Column("run_id", String(32), nullable=True),
    # one undelivered message per key: a newer value replaces the older
    _partial_index("ux_outbox_pending_key", "partner_id", "kind", "key", where=_PENDING, unique=True),
    # claims: a partner's due messages of one kind, oldest first
    _partial_index("ix_outbox_pending", "partner_id", "kind", "id", where=_PENDING),
    serial=True,
    hot=True,
)


def _channel_table(name: str, *items: SchemaItem, hot: bool = False) -> Table:
    """A table of rows keyed by channel: (partner, SKU, assembly, collection), `collection` "*" standing for the
    assembly's default."""
    channel = (_identifier("sku"), _identifier("assembly"), _identifier("collection"))
    key = ("sku", "assembly", "collection")
    return _partner_table(name, *channel, *items, key=key, hot=hot, sqlite_with_rowid=False)


# cap settings: a collection's own, or the assembly's default ("*")
caps = _channel_table(
    "caps",
    # the maximum; NULL on a collection row is an explicit "no maximum" (a default row always has one)
    Column("max_units", BigInteger, nullable=True),
    _instant("updated_at"),
)

# the channels' state: "*" stands for a collection nothing was ordered in yet (its ATS is the default's)
channels = _channel_table(
    "channels",
    # units of the SKU on lines of this collection that are not cancelled
    _count("ordered"),
    # the last channel ATS queued for the partner (None: never queued)
    Column("published", BigInteger, nullable=True),
    hot=True,
)

# a collection's dates (0014): it takes orders from opens_at (included) until closes_at (excluded), its lines are
# demand on pickup_on; a collection without a row has no dates (open at any time)
collection_dates = _partner_table(
    "collection_dates",
    _identifier("assembly"),
    _identifier("collection"),
    _instant("opens_at", nullable=True),
    _instant("closes_at", nullable=True),
    Column("pickup_on", Date, nullable=True),
    _instant("updated_at"),
    key=("assembly", "collection"),
    sqlite_with_rowid=False,
)

transport_failures = _partner_table(
    "transport_failures",
    Column("source", String(200), nullable=False),
    # the file as listed: name, size and modification time (a corrected upload is a new file)
    Column("identity", String(1200), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    _instant("quarantined_at", nullable=True),
    _instant("updated_at"),
    # the first failure of the run that is counted: quarantine needs the failures to span a while
    _instant("first_failed_at", nullable=True),
    # the `quarantined` ledger entry of a quarantined file: what `gateway ledger release --id` names
    Column("ledger_id", Integer, nullable=True),
    key=("source", "identity"),
)

# where each polled partner feed stands: saved in the transaction that applied the page it follows
feed_cursors = _partner_table(
    "feed_cursors",
    Column("feed", String(64), nullable=False),
    Column("cursor", Text, nullable=True),
    # the digest of the last page applied: the next page's digest chains it, so a page that repeats an older one
    # (a level back to an earlier value) is news, and only the same page polled again is a duplicate
    _digest("last_sha256", nullable=True),
    Column("ledger_id", BigInteger, nullable=True),
    _instant("updated_at"),
    key=("feed",),
)

# the platform API's answer to each Idempotency-Key: the same key with the same body gets it again
platform_requests = _partner_table(
    "platform_requests",
    Column("key", String(200), nullable=False),
    _digest("request_sha256"),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    _instant("created_at"),
    key=("key",),
    hot=True,
)


def _declared() -> MetaData:
    """The metadata whole: each partial index given its PostgreSQL condition."""
    for table in _metadata.tables.values():
        for index in table.indexes:
            where = _POSTGRES_WHERE.get(str(index.name))
            if where is not None:
                index.dialect_options["postgresql"]["where"] = text(where)
    return _metadata


def __getattr__(name: str) -> object:
    """`metadata`, complete (see the module's docstring)."""
    if name == "metadata":
        return _declared()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
