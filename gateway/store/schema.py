"""The store's tables, as SQLAlchemy Core metadata. Migrations under migrations/ build exactly this.

Instants are BigInteger microseconds since the epoch, UTC (gateway.domain.instant): portable, compact, and
compared as integers by the stale-snapshot and confirmation rules.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
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

from gateway.domain.messages import OutboxState
from gateway.domain.outcomes import Outcome

metadata = MetaData()
# the partial indexes' conditions, as the migrations wrote them: an applied ledger entry that claims its content
# (not a re-apply on purpose), a pending message
_CLAIMED = f"outcome = '{Outcome.APPLIED.value}' AND reapply_of IS NULL"
_PENDING = f"state = '{OutboxState.PENDING.value}'"

partners = Table(
    "partners",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("stock_mode", String(20), nullable=False),
    Column("pending_allocation", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # the partner's delivery circuit breaker is open until then (every process delivering to it respects it)
    Column("breaker_open_until", BigInteger, nullable=True),
)

stock = Table(
    "stock",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("sku", String(128), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    # the inventory timestamp: as_of of the snapshot row that last set the level (None: never snapshotted)
    Column("as_of", BigInteger, nullable=True),
    # units held by order lines under the partner's mode, kept up to date with every change
    Column("allocated", BigInteger, nullable=False, server_default=text("0")),
    # the last published ATS queued for the partner (None: never queued)
    Column("published", BigInteger, nullable=True),
    # simple mode: the latest instant the platform took stock for a confirmation
    Column("last_moved_at", BigInteger, nullable=True),
    # the ledger entry of the file that last set the level (None: set by a command)
    Column("set_by", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("partner_id", "sku"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    # one b-tree keyed by (partner, SKU) instead of a rowid table plus an index: snapshots write half as much
    sqlite_with_rowid=False,
)

orders = Table(
    "orders",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("partner_id", "order_id"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("sku", String(128), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    # the confirmation in force for the line (time_based mode allocates it instead of the ordered quantity)
    Column("confirmed_quantity", BigInteger, nullable=True),
    Column("confirmed_at", BigInteger, nullable=True),
    Column("assembly", String(128), nullable=True),
    Column("collection", String(128), nullable=True),
    PrimaryKeyConstraint("partner_id", "order_id", "sku"),
    ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"]),
    Index("ix_order_lines_partner_sku", "partner_id", "sku"),
)

confirmations = Table(
    "confirmations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("sku", String(128), nullable=False),
    Column("confirmed_quantity", BigInteger, nullable=False),
    Column("confirmed_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    # False when an earlier-stamped confirmation arrived after a later one: kept, not in force
    Column("in_force", Boolean, nullable=False),
    ForeignKeyConstraint(["partner_id", "order_id"], ["orders.partner_id", "orders.order_id"]),
    Index("ix_confirmations_order", "partner_id", "order_id", "sku"),
)

ingest_ledger = Table(
    "ingest_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("source", String(1000), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    # an Outcome: applied | rejected | duplicate | quarantined | released (a quarantined file put back in line)
    Column("outcome", String(16), nullable=False),
    Column("rows_applied", BigInteger, nullable=False, server_default=text("0")),
    Column("rows_skipped", BigInteger, nullable=False, server_default=text("0")),
    Column("rows_refused", BigInteger, nullable=False, server_default=text("0")),
    Column("error", Text, nullable=True),
    # JSON: the problems found, each with its line number
    Column("report", Text, nullable=True),
    # the entry whose content this one applied again on purpose (`gateway ledger reapply`, `ingest --force`)
    Column("reapply_of", Integer, nullable=True),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    # the same content is applied at most once per partner and kind, whatever races (but on purpose: a re-apply)
    Index(
        "ux_ingest_ledger_applied",
        "partner_id",
        "kind",
        "sha256",
        unique=True,
        sqlite_where=text(_CLAIMED),
        postgresql_where=text(_CLAIMED),
    ),
    Index("ix_ingest_ledger_received", "partner_id", "received_at"),
    # the latest entry of a partner and kind (the content in force), read when a duplicate comes in
    Index("ix_ingest_ledger_kind", "partner_id", "kind", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, nullable=False),
    # a MessageKind: ats | channel_ats | order_closed | order_export
    Column("kind", String(32), nullable=False),
    # what coalesces: the SKU for ats, the order id for order messages
    Column("key", String(400), nullable=False),
    # ats: the published value and the inventory timestamp it stands on
    Column("value", BigInteger, nullable=True),
    Column("as_of", BigInteger, nullable=True),
    # order messages: the JSON body
    Column("payload", Text, nullable=True),
    Column("ledger_id", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # an OutboxState: pending | delivered | dead | superseded (a dead value with a newer one of its key)
    Column("state", String(16), nullable=False, server_default=text(f"'{OutboxState.PENDING.value}'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    # the batch a message was last sent in: its id is the request's Idempotency-Key, reused on a re-send
    Column("batch_id", String(64), nullable=True),
    # a claimed batch is kept from other claims until then (a worker that died lets it go at that time)
    Column("claimed_until", BigInteger, nullable=True),
    # the partner's last HTTP status for this message (dead letters keep why)
    Column("last_status", Integer, nullable=True),
    # the run (one inbound item's handling) that queued this value: its logs and the delivery's share it
    Column("run_id", String(32), nullable=True),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    # one undelivered message per key: a newer value replaces the older
    Index(
        "ux_outbox_pending_key",
        "partner_id",
        "kind",
        "key",
        unique=True,
        sqlite_where=text(_PENDING),
        postgresql_where=text(_PENDING),
    ),
    # claims: a partner's due messages of one kind, oldest first
    Index(
        "ix_outbox_pending",
        "partner_id",
        "kind",
        "id",
        sqlite_where=text(_PENDING),
        postgresql_where=text(_PENDING),
    ),
)

caps = Table(
    "caps",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("sku", String(128), nullable=False),
    Column("assembly", String(128), nullable=False),
    # a collection's own setting, or "*" for the assembly's default
    Column("collection", String(128), nullable=False),
    # the maximum; NULL on a collection row is an explicit "no maximum" (a default row always has one)
    Column("max_units", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("partner_id", "sku", "assembly", "collection"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    sqlite_with_rowid=False,
)

channels = Table(
    "channels",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("sku", String(128), nullable=False),
    Column("assembly", String(128), nullable=False),
    # a collection, or "*" for the assembly's default (the ATS of a collection nothing was ordered in yet)
    Column("collection", String(128), nullable=False),
    # units of the SKU on lines of this collection that are not cancelled
    Column("ordered", BigInteger, nullable=False, server_default=text("0")),
    # the last channel ATS queued for the partner (None: never queued)
    Column("published", BigInteger, nullable=True),
    PrimaryKeyConstraint("partner_id", "sku", "assembly", "collection"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
    sqlite_with_rowid=False,
)

transport_failures = Table(
    "transport_failures",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("source", String(200), nullable=False),
    # the file as listed: name, size and modification time (a corrected upload is a new file)
    Column("identity", String(1200), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("quarantined_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    # the first failure of the run that is counted: quarantine needs the failures to span a while
    Column("first_failed_at", BigInteger, nullable=True),
    # the `quarantined` ledger entry of a quarantined file: what `gateway ledger release --id` names
    Column("ledger_id", Integer, nullable=True),
    PrimaryKeyConstraint("partner_id", "source", "identity"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
)

# where each polled partner feed stands: saved in the transaction that applied the page it follows
feed_cursors = Table(
    "feed_cursors",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("feed", String(64), nullable=False),
    Column("cursor", Text, nullable=True),
    # the digest of the last page applied: the next page's digest chains it, so a page that repeats an older one
    # (a level back to an earlier value) is news, and only the same page polled again is a duplicate
    Column("last_sha256", String(64), nullable=True),
    Column("ledger_id", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("partner_id", "feed"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
)

# the platform API's answer to each Idempotency-Key: the same key with the same body gets it again
platform_requests = Table(
    "platform_requests",
    metadata,
    Column("partner_id", Integer, nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("partner_id", "key"),
    ForeignKeyConstraint(["partner_id"], ["partners.id"]),
)
