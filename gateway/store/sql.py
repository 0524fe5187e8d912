"""The store on SQLAlchemy Core: SQLite (the embedded default) and PostgreSQL (several workers), one SQL.

Driver errors are turned into the project's own at this edge. On SQLite, a write transaction starts with
BEGIN IMMEDIATE so two writers queue on the lock instead of failing half-way when both try to upgrade, and one
worker runs per store. On PostgreSQL, several workers share the store and PostgreSQL coordinates them:
transaction-level advisory locks on a partner (an inbound item holds it alone) or on the orders and SKUs a
command touches (taken in one fixed key order), `FOR UPDATE SKIP LOCKED` claims of outbox batches under a lease,
and a session-level advisory lock per polled source.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    String,
    and_,
    any_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    make_url,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from gateway import logs
from gateway.domain.allocation import Line
from gateway.domain.caps import ALL_COLLECTIONS, AssemblyCaps, Override
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.domain.status import OrderStatus
from gateway.store import outbox_locks, schema, sqlite_writer
from gateway.store.errors import primary_message, translate
from gateway.store.port import (
    AlreadyApplied,
    CapRow,
    ChannelRecord,
    Claim,
    Conflict,
    LedgerCounts,
    LedgerRecord,
    LineRecord,
    MergeOutcome,
    OrderRecord,
    OutboxCount,
    OutboxRecord,
    StockRecord,
    StoreBusy,
    StoreError,
)
from gateway.store.quarantine import TransportFailureStatements

_Item = TypeVar("_Item")
_Message = TypeVar("_Message", bound=tuple[Any, ...])
_CHUNK = 500  # SKUs per IN (...) look-up: well under every driver's bound-parameter limit
_RANGE_LIMIT = 40_000  # rows one key-range look-up may return before it gives way to IN look-ups
_PG_CONNECT_ARGS = {"connect_timeout": 10, "application_name": "stock-gateway"}

_S = schema.stock
_O = schema.orders
_L = schema.order_lines
_C = schema.confirmations
_G = schema.ingest_ledger
_X = schema.outbox
_P = schema.partners
_K = schema.caps
_H = schema.channels
_F = schema.feed_cursors
_R = schema.platform_requests


def _migrations_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The schema revision this release writes."""
    config = Config()
    config.set_main_option("script_location", "gateway.store:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    config = Config()
    config.set_main_option("script_location", "gateway.store:migrations")
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def _postgres_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The server probes an idle connection after 30 s and drops it after 3 unanswered probes 10 s apart: the locks
    # of a worker whose machine died (no FIN ever sent) return within about a minute, not the kernel's two hours.
    with dbapi_connection.cursor() as cursor:
        for name, value in (("tcp_keepalives_idle", 30), ("tcp_keepalives_interval", 10), ("tcp_keepalives_count", 3)):
            cursor.execute(f"SET {name} = {value}")
    dbapi_connection.commit()


def lock_key(name: str) -> int:
    """A name's 32-bit signed key for a PostgreSQL advisory lock (two names may share one: they then queue)."""
    key = zlib.crc32(name.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


class _LockSpace:
    """The first key of the two-key PostgreSQL advisory locks of one store: advisory locks are per database, so
    each is drawn from the store's schema name too, and two stores in two schemas of one database never meet."""

    def __init__(self, schema: str) -> None:
        self.partner = lock_key(f"{schema}\x00partner")  # second key: the partner's id
        self.source = lock_key(f"{schema}\x00source")  # second key: the source's name
        self.migrate = lock_key(f"{schema}\x00migrate")
        self.schema = schema

    def orders_of(self, partner_id: int) -> int:
        """The first key of a partner's orders (second key: the order id's)."""
        return lock_key(f"{self.schema}\x00orders\x00{partner_id}")

    def skus_of(self, partner_id: int) -> int:
        """The first key of a partner's SKUs (second key: the SKU's)."""
        return lock_key(f"{self.schema}\x00skus\x00{partner_id}")

    def batch(self, batch_id: str) -> tuple[int, int]:
        """The two keys of an outbox batch being claimed."""
        return lock_key(f"{self.schema}\x00batch"), lock_key(batch_id)


class SqlStore:
    """A store on one SQLAlchemy engine. Build it with `SqlStore.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._partner_ids: dict[str, int] = {}
        # SQLite takes one writer at a time: the threads of one process queue here, not on the database lock
        self._writer = sqlite_writer.Writer() if self.dialect == "sqlite" else None
        self._worker_lock: IO[str] | None = None
        self._lock_engine: Engine | None = None
        self._space = _LockSpace("")
        # the driver's own errors, raised by its cursors used directly (PostgreSQL's COPY loader)
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        if self.dialect == "postgresql":
            try:
                with engine.connect() as connection:
                    self._space = _LockSpace(str(connection.execute(text("SELECT current_schema()")).scalar() or ""))
            except sa_exc.OperationalError as exc:
                raise translate(exc) from None

    def claim_worker(self) -> None:
        """Make this process the one worker of a SQLite store: StoreBusy naming the holder when another runs.

        The lock is an advisory lock on NAME.worker.lock beside the database, released when the process ends
        (even killed). Several workers share a PostgreSQL store; there is nothing to claim.
        """
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return
        path = Path(f"{database}.worker.lock")
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreBusy(
                f"another worker ({holder}) runs on the SQLite store {database}; a SQLite store takes one worker "
                "(several workers need PostgreSQL)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._worker_lock = handle

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        password: str | None = None,
        pool_size: int = 5,
        max_overflow: int = 5,
        pool_timeout: float = 30.0,
    ) -> SqlStore:
        """Connect to the store at `url` and bring its schema to this release's head revision.

        On PostgreSQL, `password` (read from the environment or a file, never the configuration) joins the URL,
        and each process keeps a pool of `pool_size` connections, `max_overflow` more under load."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql":
            if password is not None:
                parsed = parsed.set(password=password)
            engine = create_engine(
                parsed,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
                pool_pre_ping=True,  # a connection the server dropped (a restart) is replaced, not handed out
                connect_args=dict(_PG_CONNECT_ARGS),
            )
            event.listen(engine, "connect", _postgres_on_connect)
        else:
            engine = create_engine(parsed)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", sqlite_writer.on_connect)
            event.listen(engine, "begin", sqlite_writer.on_begin)
            database = engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema in place to `revision` (a store made by an older release keeps its data).

        A store already at the head is only read: a command never queues behind a worker's write for nothing."""
        try:
            current = self.revision()
            if revision == "head" and current == head_revision():
                return
            if current is not None and current not in _known_revisions():
                raise StoreError(
                    f"the store is at schema revision {current}, which this release does not know: a newer release "
                    "upgraded it; run that release (or a later one) against this store"
                )
            with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    # workers starting together: one upgrades, the others wait and find the schema at head
                    connection.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": self._space.migrate})
                command.upgrade(_migrations_config(connection), revision)
        except sa_exc.OperationalError as exc:
            raise translate(exc) from None
        except sa_exc.DBAPIError as exc:  # a schema that does not exist, no right to create tables, ...
            raise StoreError(f"the store's schema cannot be brought up to date: {exc.orig}") from exc

    def revision(self) -> str | None:
        """The schema revision the store is at (None for an empty database)."""
        with sqlite_writer.reading(self.engine.connect()) as connection, connection.begin():
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def write(self, *, rollback: bool = False, wait: float | None = None) -> Iterator[SqlTransaction]:
        """One write transaction; `rollback=True` rehearses it (a dry run) and commits nothing. With `wait`, StoreBusy
        when SQLite's writer (this process's or another's) is not free within that many seconds."""
        if self._writer is None:
            with self._write(rollback=rollback, wait=None) as tx:
                yield tx
            return
        with self._writer.hold(wait) as left, self._write(rollback=rollback, wait=left) as tx:
            yield tx

    @contextmanager
    def _write(self, *, rollback: bool, wait: float | None) -> Iterator[SqlTransaction]:
        try:
            with sqlite_writer.patient(self.engine.connect(), wait) as connection:
                transaction = connection.begin()
                try:
                    yield SqlTransaction(connection, self._partner_ids, self._space)
                except BaseException:
                    transaction.rollback()
                    raise
                if rollback:
                    transaction.rollback()
                else:
                    transaction.commit()
        except sa_exc.IntegrityError as exc:
            raise Conflict(primary_message(exc.orig or exc)) from None
        except (sa_exc.DBAPIError, self._driver_error) as exc:
            raise translate(exc) from None
        except sa_exc.TimeoutError as exc:
            raise StoreBusy(f"the store is busy: no connection free in the pool ({exc})") from exc

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        """One read-only transaction (a deferred BEGIN on SQLite: readers never wait for the writer)."""
        try:
            with sqlite_writer.reading(self.engine.connect()) as connection, connection.begin():
                yield SqlTransaction(connection, self._partner_ids, self._space)
        except (sa_exc.DBAPIError, self._driver_error) as exc:
            raise translate(exc) from None
        except sa_exc.TimeoutError as exc:
            raise StoreBusy(f"the store is busy: no connection free in the pool ({exc})") from exc

    @contextmanager
    def source_lock(self, name: str) -> Iterator[bool]:
        """Whether this process may poll the source `name` now: True while it holds the source's lock.

        On PostgreSQL a session-level advisory lock, tried without waiting and released when the block ends (or
        when the process dies: the connection goes, and the lock with it), so each source is polled by one
        worker at a time. SQLite has one worker per store: always True.
        """
        if self.dialect != "postgresql":
            yield True
            return
        params = {"ns": self._space.source, "key": lock_key(name)}
        if self._lock_engine is None:
            # a connection of its own per held source, outside the pool: polls holding their locks never take
            # the connections their own work needs (a full pool would leave them all waiting on each other)
            self._lock_engine = create_engine(self.engine.url, poolclass=NullPool, connect_args=dict(_PG_CONNECT_ARGS))
            event.listen(self._lock_engine, "connect", _postgres_on_connect)
        try:
            connection = self._lock_engine.connect()
        except sa_exc.OperationalError as exc:
            raise translate(exc) from None
        held = False
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar())
            connection.commit()  # the lock outlives the transaction; the connection sits idle, not in one
            yield held
        finally:
            try:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
                    connection.commit()
            except sa_exc.DBAPIError:
                connection.invalidate()  # the connection broke: the session, and the lock with it, are gone
            finally:
                connection.close()

    def close(self) -> None:
        """Release every pooled connection (and the worker lock)."""
        self.engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()
        if self._worker_lock is not None:
            self._worker_lock.close()
            self._worker_lock = None


def _chunks(items: Sequence[_Item]) -> Iterator[Sequence[_Item]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _due() -> tuple[Any, ...]:
    """A partner's messages of one kind due for delivery (bound: of_partner, of_kind, now)."""
    now: Any = bindparam("now")
    return (
        _X.c.partner_id == bindparam("of_partner"),
        _X.c.kind == bindparam("of_kind"),
        _IS_PENDING,  # a literal, so SQLite can use the partial index ix_outbox_pending
        or_(_X.c.next_attempt_at.is_(None), _X.c.next_attempt_at <= now),
        or_(_X.c.claimed_until.is_(None), _X.c.claimed_until <= now),
    )


def _claim_update(chosen: Any) -> Any:
    """Claim the chosen messages under a batch id until a lease ends, returning them."""
    return (
        update(_X)
        .where(_X.c.id.in_(chosen.scalar_subquery()))
        .values(batch_id=bindparam("new_batch"), claimed_until=bindparam("lease"))
        .returning(*_OUTBOX_COLUMNS)
    )


def _outbox_record(row: Any, batch_id: str | None = None) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        partner=row.name,
        kind=row.kind,
        key=row.key,
        value=row.value,
        as_of=row.as_of,
        payload=row.payload,
        ledger_id=row.ledger_id,
        created_at=row.created_at,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_status=row.last_status,
        batch_id=batch_id if batch_id is not None else row.batch_id,
        delivered_at=row.delivered_at,
        run_id=row.run_id,
        claimed_until=row.claimed_until,
    )


def _stock_record(row: Any) -> StockRecord:
    return StockRecord(
        sku=row.sku,
        quantity=row.quantity,
        as_of=row.as_of,
        allocated=row.allocated,
        published=row.published,
        last_moved_at=row.last_moved_at,
        set_by=row.set_by,
    )


_STOCK_COLUMNS = (
    _S.c.sku,
    _S.c.quantity,
    _S.c.as_of,
    _S.c.allocated,
    _S.c.published,
    _S.c.last_moved_at,
    _S.c.set_by,
)


class _Compiled:
    """A Core statement compiled once per dialect and run through the driver with plain tuples.

    Bulk paths (a million-row snapshot) spend most of their time binding parameters; compiling once and
    handing tuples to the driver's executemany keeps SQLAlchemy's portable SQL without its per-row cost.
    """

    def __init__(self, statement: Any, dialect: Any, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        self.keys = list(keys)
        constants = compiled.params  # parameters fixed in the statement itself, such as a LIMIT
        positions = compiled.positiontup
        self.named = positions is None
        self.constants = {name: value for name, value in constants.items() if name not in self.keys}
        self.order: list[int | str] | None = None
        if positions is not None and list(positions) != self.keys:
            self.order = [self.keys.index(name) if name in self.keys else name for name in positions]

    def params(self, rows: Sequence[tuple[Any, ...]]) -> Any:
        if self.named:
            return [dict(zip(self.keys, row, strict=True)) | self.constants for row in rows]
        if self.order is not None:
            order, constants = self.order, self.constants
            return [tuple(row[i] if isinstance(i, int) else constants[i] for i in order) for row in rows]
        return rows


_COMPILED: dict[tuple[str, str], _Compiled] = {}

_STOCK_KEYS = (
    "partner_id",
    "sku",
    "quantity",
    "as_of",
    "allocated",
    "published",
    "last_moved_at",
    "set_by",
    "updated_at",
)
_ATS_KEYS = (
    "partner_id",
    "kind",
    "key",
    "value",
    "as_of",
    "ledger_id",
    "created_at",
    "state",
    "batch_id",
    "run_id",
    "attempts",
)
# a newer value replaces an undelivered older one and leaves the batch it was sent in: a re-send of that batch
# (same Idempotency-Key) must not carry a value the partner may already have deduplicated away
_REQUEUE = ("value", "as_of", "payload", "ledger_id", "created_at", "batch_id", "run_id", "attempts")
_PENDING_KEY = ("partner_id", "kind", "key")  # one undelivered message per key: ux_outbox_pending_key
_PENDING = "state = 'pending'"
_IS_PENDING = text("outbox.state = 'pending'")
_OUTBOX_COLUMNS = (
    _X.c.id,
    _X.c.kind,
    _X.c.key,
    _X.c.value,
    _X.c.as_of,
    _X.c.payload,
    _X.c.ledger_id,
    _X.c.created_at,
    _X.c.state,
    _X.c.attempts,
    _X.c.next_attempt_at,
    _X.c.last_error,
    _X.c.last_status,
    _X.c.batch_id,
    _X.c.delivered_at,
    _X.c.run_id,
    _X.c.claimed_until,
)
_LOOKUP_KEYS = ("partner_id", *(f"sku_{i}" for i in range(_CHUNK)))


_MERGE_LEVELS = """
WITH fresh AS (
    INSERT INTO stock (partner_id, sku, quantity, as_of, allocated, published, set_by, updated_at)
    SELECT %(p)s, i.sku, i.quantity, i.as_of, 0, GREATEST(i.quantity, 0), %(set_by)s, %(now)s
    FROM gateway_levels AS i
    WHERE NOT EXISTS (SELECT 1 FROM stock AS s WHERE s.partner_id = %(p)s AND s.sku = i.sku)
    RETURNING sku, as_of, CAST(NULL AS BIGINT) AS before, published AS after
), moved AS (
    UPDATE stock AS s
    SET quantity = i.quantity, as_of = i.as_of, set_by = %(set_by)s, updated_at = %(now)s,
        published = GREATEST(i.quantity - s.allocated, 0)
    FROM gateway_levels AS i, stock AS o
    WHERE s.partner_id = %(p)s AND s.sku = i.sku AND o.partner_id = s.partner_id AND o.sku = s.sku
      AND (s.quantity, s.as_of) IS DISTINCT FROM (i.quantity, i.as_of)
      AND NOT (s.as_of IS NOT NULL AND i.as_of < s.as_of)
    RETURNING s.sku, s.as_of, o.published AS before, s.published AS after
), published AS (
    SELECT sku, as_of, before, after FROM fresh
    UNION ALL
    SELECT sku, as_of, before, after FROM moved WHERE after IS DISTINCT FROM before
), queued AS (
    INSERT INTO outbox (partner_id, kind, key, value, as_of, ledger_id, created_at, state, batch_id, run_id, attempts)
    SELECT %(p)s, 'ats', sku, after, as_of, %(ledger)s, %(now)s, 'pending', NULL, %(run)s, 0 FROM published
    ON CONFLICT (partner_id, kind, key) WHERE state = 'pending' DO UPDATE
    SET value = excluded.value, as_of = excluded.as_of, payload = NULL, ledger_id = excluded.ledger_id,
        created_at = excluded.created_at, batch_id = NULL, run_id = excluded.run_id, attempts = 0
)
SELECT sku, before, after, count(*) OVER () FROM published LIMIT %(sample)s
"""
_STALE = "s.as_of IS NOT NULL AND i.as_of < s.as_of"
_LEVEL_STATS = f"""
SELECT count(*) FILTER (WHERE {_STALE}),
       count(*) FILTER (WHERE NOT ({_STALE}) AND (s.quantity, s.as_of) IS DISTINCT FROM (i.quantity, i.as_of)
                          AND s.last_moved_at IS NOT NULL AND i.as_of < s.last_moved_at)
FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
"""
_STALE_SAMPLE = f"""
SELECT i.sku FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
WHERE {_STALE} ORDER BY i.sku LIMIT 20
"""
_PREDATES_SAMPLE = f"""
SELECT i.sku FROM gateway_levels AS i JOIN stock AS s ON s.partner_id = %(p)s AND s.sku = i.sku
WHERE NOT ({_STALE}) AND (s.quantity, s.as_of) IS DISTINCT FROM (i.quantity, i.as_of)
  AND s.last_moved_at IS NOT NULL AND i.as_of < s.last_moved_at
ORDER BY i.sku LIMIT 20
"""


class _PostgresLevelLoader:
    """PostgreSQL's LevelLoader: rows go by binary COPY into a temporary table dropped at commit, then one
    statement merges them into the stock and queues the published ATS that moved (see port.LevelLoader)."""

    def __init__(self, transaction: SqlTransaction, partner_id: int, ledger_id: int | None) -> None:
        self.transaction = transaction
        self.partner_id = partner_id
        self.ledger_id = ledger_id
        self.rows = 0
        self.cursor = transaction.connection.connection.cursor()
        self.cursor.execute("DROP TABLE IF EXISTS pg_temp.gateway_levels")
        self.cursor.execute(
            "CREATE TEMPORARY TABLE gateway_levels (sku TEXT NOT NULL, quantity BIGINT NOT NULL, as_of BIGINT NOT NULL)"
            " ON COMMIT DROP"
        )

    def add(self, rows: Sequence[tuple[str, int, Instant]]) -> None:
        with self.cursor.copy("COPY gateway_levels (sku, quantity, as_of) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int8", "int8"])
            write = copy.write_row
            for row in rows:
                write(row)
        self.rows += len(rows)

    def merge(self, *, set_by: int | None, now: Instant, moves_stock: bool, sample: int) -> MergeOutcome:
        outcome = MergeOutcome(rows=self.rows)
        if not self.rows:
            return outcome
        cursor = self.cursor
        params: dict[str, Any] = {"p": self.partner_id}
        cursor.execute("ANALYZE gateway_levels")  # a plan for a million rows, not for an empty table
        cursor.execute(_LEVEL_STATS, params)
        stale, predates = cursor.fetchone() or (0, 0)
        outcome.skipped = int(stale)
        if stale:
            cursor.execute(_STALE_SAMPLE, params)
            outcome.stale_sample = [row[0] for row in cursor.fetchall()]
        if moves_stock and predates:
            outcome.predates_movement = int(predates)
            cursor.execute(_PREDATES_SAMPLE, params)
            outcome.predates_sample = [row[0] for row in cursor.fetchall()]
        params |= {
            "set_by": set_by,
            "now": now,
            "ledger": self.ledger_id,
            "run": self.transaction.run_id,
            "sample": max(sample, 1),
        }
        cursor.execute(_MERGE_LEVELS, params)
        listed = cursor.fetchall()
        outcome.changed = int(listed[0][3]) if listed else 0
        outcome.changes = [(sku, before, after) for sku, before, after, _ in listed[:sample]]
        return outcome


class SqlTransaction(TransportFailureStatements):
    """The port's Transaction on one SQLAlchemy connection inside one database transaction."""

    def __init__(self, connection: Connection, partner_ids: dict[str, int], space: _LockSpace) -> None:
        self.connection = connection
        self._space = space
        self._dialect = connection.dialect.name
        self._partner_ids = partner_ids
        self.run_id = logs.current_run()  # the inbound item being handled, if any: kept with what it queues
        self._alone: set[int] = set()  # partners this transaction holds alone
        self._shared: set[int] = set()  # partners this transaction holds beside others (commands)
        self._keys: set[tuple[int, int]] = set()  # (space, key) of the orders and SKUs it holds

    def level_loader(self, partner_id: int, ledger_id: int | None) -> _PostgresLevelLoader | None:
        """PostgreSQL's COPY-and-merge loader for a large snapshot; None on SQLite (the row path is its fastest)."""
        if self._dialect != "postgresql":
            return None
        return _PostgresLevelLoader(self, partner_id, ledger_id)

    # locks (PostgreSQL: advisory, held to the end of the transaction; SQLite's one writer needs none)

    def lock_partner(self, partner_id: int) -> None:
        """Hold the partner alone for the rest of the transaction (an inbound item: a file, a page)."""
        if self._dialect != "postgresql" or partner_id in self._alone:
            return
        self.connection.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": self._space.partner, "id": partner_id}
        )
        self._alone.add(partner_id)

    def _share(self, partner_id: int) -> bool:
        """Hold the partner shared (PostgreSQL) unless held already; whether a lock was taken now."""
        if self._dialect != "postgresql" or partner_id in self._alone or partner_id in self._shared:
            return False
        self.connection.execute(
            text("SELECT pg_advisory_xact_lock_shared(:ns, :id)"), {"ns": self._space.partner, "id": partner_id}
        )
        self._shared.add(partner_id)
        return True

    def lock_keys(self, partner_id: int, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> bool:
        """Hold these orders and SKUs of the partner for the rest of the transaction (a command); return whether
        it took a lock it did not hold (and so may have waited: what it read before may be out of date).

        The partner is held shared (commands run side by side; an inbound item waits for them and they for
        it), then the orders' keys, then the SKUs', each in ascending order, so two commands never wait on each
        other in a cycle."""
        if self._dialect != "postgresql" or partner_id in self._alone:
            return False
        took = self._share(partner_id)
        # every order key before every SKU key, each group in ascending order: one global order for all commands
        # (set_status takes its order, reads it, then takes its SKUs: it never waits for an order holding a SKU)
        held = self._keys
        wanted = [(self._space.orders_of(partner_id), key) for key in sorted({lock_key(o) for o in orders})]
        wanted += [(self._space.skus_of(partner_id), key) for key in sorted({lock_key(sku) for sku in skus})]
        keys = [pair for pair in wanted if pair not in held]
        if keys:
            self.connection.execute(
                text(
                    "SELECT pg_advisory_xact_lock(ns, k) "
                    "FROM unnest(CAST(:spaces AS integer[]), CAST(:keys AS integer[])) AS t(ns, k)"
                ),
                {"spaces": [ns for ns, _ in keys], "keys": [key for _, key in keys]},
            )
            held.update(keys)
            took = True
        return took

    def _insert(self, table: Any) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(self, table: Any, key: Sequence[str], update: Sequence[str], where: str | None = None) -> Any:
        """INSERT ... ON CONFLICT (key) [WHERE where] DO UPDATE SET each of `update` from the new row."""
        insert = self._insert(table)
        return insert.on_conflict_do_update(
            index_elements=[table.c[name] for name in key],
            index_where=None if where is None else text(where),  # a literal: bound parameters break executemany
            set_={name: insert.excluded[name] for name in update},
        )

    def _compiled(self, name: str) -> _Compiled:
        key = (self._dialect, name)
        found = _COMPILED.get(key)
        if found is None:
            statement, keys = getattr(self, f"_statement_{name}")()
            found = _COMPILED[key] = _Compiled(statement, self.connection.dialect, keys)
        return found

    def _run_many(self, name: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            compiled = self._compiled(name)
            self.connection.exec_driver_sql(compiled.sql, compiled.params(rows))

    def _run_one(self, name: str, params: dict[str, Any]) -> Any:
        compiled = self._compiled(name)
        return self.connection.exec_driver_sql(
            compiled.sql, compiled.params([tuple(params[k] for k in compiled.keys)])[0]
        )

    # On PostgreSQL, rows another worker is claiming right now are skipped, not waited for (SQLite renders no
    # FOR UPDATE: its one writer claims alone).

    def _statement_claim_first(self) -> tuple[Any, Sequence[str]]:
        statement = select(_X.c.batch_id).where(*_due()).order_by(_X.c.id).limit(1).with_for_update(skip_locked=True)
        return statement, ("of_partner", "of_kind", "now")

    def _statement_claim_new(self) -> tuple[Any, Sequence[str]]:
        chosen = (
            select(_X.c.id)
            .where(*_due(), _X.c.batch_id.is_(None))
            .order_by(_X.c.id)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        return _claim_update(chosen), ("of_partner", "of_kind", "now", "limit", "new_batch", "lease")

    def _statement_claim_resend(self) -> tuple[Any, Sequence[str]]:
        chosen = select(_X.c.id).where(*_due(), _X.c.batch_id == bindparam("new_batch")).with_for_update()
        return _claim_update(chosen), ("of_partner", "of_kind", "now", "new_batch", "lease")

    def _statement_settle_delivered(self) -> tuple[Any, Sequence[str]]:
        statement = (
            update(_X)
            .where(
                _X.c.id >= bindparam("first"),
                _X.c.id <= bindparam("last"),
                _X.c.batch_id == bindparam("of_batch"),
                _X.c.claimed_until == bindparam("lease"),
                _IS_PENDING,
            )
            .values(
                state="delivered",
                delivered_at=bindparam("at"),
                claimed_until=None,
                attempts=_X.c.attempts + bindparam("tries"),
                last_status=bindparam("answer"),
                last_error=None,
            )
        )
        return statement, ("first", "last", "of_batch", "lease", "at", "tries", "answer")

    def _statement_put_stock(self) -> tuple[Any, Sequence[str]]:
        return self._upsert(_S, ("partner_id", "sku"), _STOCK_KEYS[2:]), _STOCK_KEYS

    def _statement_insert_stock(self) -> tuple[Any, Sequence[str]]:
        keys = ("partner_id", "sku", "quantity", "as_of", "published", "set_by", "updated_at")
        return _S.insert(), keys

    def _statement_queue_ats(self) -> tuple[Any, Sequence[str]]:
        return self._upsert(_X, _PENDING_KEY, _REQUEUE[:2] + _REQUEUE[3:], _PENDING), _ATS_KEYS

    def _statement_versions(self) -> tuple[Any, Sequence[str]]:
        statement = select(_S.c.sku, _S.c.quantity, _S.c.as_of).where(
            _S.c.partner_id == bindparam("partner_id"),
            _S.c.sku.in_([bindparam(key) for key in _LOOKUP_KEYS[1:]]),
        )
        return statement, _LOOKUP_KEYS

    def _statement_versions_range(self) -> tuple[Any, Sequence[str]]:
        statement = (
            select(_S.c.sku, _S.c.quantity, _S.c.as_of)
            .where(
                _S.c.partner_id == bindparam("partner_id"),
                _S.c.sku >= bindparam("first"),
                _S.c.sku <= bindparam("last"),
            )
            .limit(_RANGE_LIMIT + 1)
        )
        return statement, ("partner_id", "first", "last")

    def _by_skus(self, name: str, partner_id: int, chunk: Sequence[str]) -> tuple[str, Any]:
        """SQL and parameters of look-up `name` for up to _CHUNK SKUs: on SQLite an IN list padded to one fixed
        size (one statement for the driver to cache); on PostgreSQL one array parameter (a query with hundreds
        of placeholders would be parsed again by the driver every time)."""
        if self._dialect == "postgresql":
            compiled = self._compiled(f"{name}_any")
            [params] = compiled.params([(partner_id, list(chunk))])
        else:
            compiled = self._compiled(name)
            [params] = compiled.params([(partner_id, *chunk, *([chunk[-1]] * (_CHUNK - len(chunk))))])
        return compiled.sql, params

    def _statement_lookup_any(self) -> tuple[Any, Sequence[str]]:
        statement = select(*_STOCK_COLUMNS).where(
            _S.c.partner_id == bindparam("partner_id"), _S.c.sku == any_(bindparam("skus", type_=ARRAY(String)))
        )
        return statement, ("partner_id", "skus")

    def _statement_versions_any(self) -> tuple[Any, Sequence[str]]:
        statement = select(_S.c.sku, _S.c.quantity, _S.c.as_of).where(
            _S.c.partner_id == bindparam("partner_id"), _S.c.sku == any_(bindparam("skus", type_=ARRAY(String)))
        )
        return statement, ("partner_id", "skus")

    def _statement_lookup(self) -> tuple[Any, Sequence[str]]:
        statement = select(*_STOCK_COLUMNS).where(
            _S.c.partner_id == bindparam("partner_id"),
            _S.c.sku.in_([bindparam(key) for key in _LOOKUP_KEYS[1:]]),
        )
        return statement, _LOOKUP_KEYS

    # partners

    def partner_id(self, name: str) -> int:
        """The store id of partner `name`."""
        cached = self._partner_ids.get(name)
        if cached is not None:
            return cached
        found = self.connection.execute(select(_P.c.id).where(_P.c.name == name)).scalar_one_or_none()
        if found is None:
            raise StoreError(f"partner {name!r} is not registered in the store")
        self._partner_ids[name] = found
        return int(found)

    def sync_partner(self, name: str, policy: Policy, now: Instant) -> tuple[int, bool]:
        """Register `name` with `policy`; return its id and whether the policy differs from the stored one."""
        if self._dialect == "postgresql":  # workers starting together register a new partner once
            self.connection.execute(text("SELECT pg_advisory_xact_lock(:ns, 1)"), {"ns": self._space.migrate})
        row = self.connection.execute(
            select(_P.c.id, _P.c.stock_mode, _P.c.pending_allocation).where(_P.c.name == name)
        ).one_or_none()
        if row is None:
            new_id = self.connection.execute(
                _P.insert().values(
                    name=name,
                    stock_mode=policy.mode.value,
                    pending_allocation=policy.pending_allocation,
                    created_at=now,
                )
            ).inserted_primary_key
            assert new_id is not None
            self._partner_ids[name] = int(new_id[0])
            return int(new_id[0]), False
        changed = row.stock_mode != policy.mode.value or bool(row.pending_allocation) != policy.pending_allocation
        if changed:
            self.connection.execute(
                update(_P)
                .where(_P.c.id == row.id)
                .values(stock_mode=policy.mode.value, pending_allocation=policy.pending_allocation)
            )
        self._partner_ids[name] = int(row.id)
        return int(row.id), changed

    # stock

    def stock(self, partner_id: int, skus: Sequence[str]) -> dict[str, StockRecord]:
        """The existing stock rows of `skus`."""
        found: dict[str, StockRecord] = {}
        # the driver's own cursor: a snapshot looks up every SKU it holds, and row objects would double the cost
        cursor = self.connection.connection.cursor()
        try:
            for chunk in _chunks(skus):
                cursor.execute(*self._by_skus("lookup", partner_id, chunk))
                for sku, quantity, as_of, allocated, published, last_moved_at, set_by in cursor.fetchall():
                    found[sku] = StockRecord(sku, quantity, as_of, allocated, published, last_moved_at, set_by)
        finally:
            cursor.close()
        return found

    def stock_versions(
        self, partner_id: int, skus: Sequence[str]
    ) -> dict[str, tuple[str, int, Instant | None]] | list[tuple[str, int, Instant | None]]:
        """(sku, quantity, as_of) of the existing stock rows of `skus`: enough to tell what a snapshot changes.

        Partners often export sorted by SKU: a sorted batch is read as one key range, which costs a fraction of
        looking each SKU up, and comes back as a list in SKU order (it may hold stored SKUs the batch omits).
        Otherwise, or when the range holds many more rows than the batch (a sparse file), a dict by SKU.
        """
        found: dict[str, tuple[str, int, Instant | None]] = {}
        cursor = self.connection.connection.cursor()
        try:
            # (not on PostgreSQL: its collation may order SKUs otherwise than Python, and its array look-up is cheap)
            if self._dialect == "sqlite" and _CHUNK < len(skus) <= _RANGE_LIMIT // 4 and skus == sorted(skus):
                ranged = self._compiled("versions_range")
                [params] = ranged.params([(partner_id, skus[0], skus[-1])])
                cursor.execute(ranged.sql, params)
                ranged_rows: list[tuple[str, int, Instant | None]] = list(cursor.fetchall())
                if len(ranged_rows) <= _RANGE_LIMIT:
                    return ranged_rows
            for chunk in _chunks(skus):
                cursor.execute(*self._by_skus("versions", partner_id, chunk))
                rows = cursor.fetchall()
                found.update(zip(map(itemgetter(0), rows), rows, strict=True))
        finally:
            cursor.close()
        return found

    def holds_stock(self, partner_id: int) -> bool:
        """Whether the partner has any stock row at all."""
        query = select(_S.c.sku).where(_S.c.partner_id == partner_id).limit(1)
        return self.connection.execute(query).first() is not None

    def iter_stock(self, partner_id: int, skus: Sequence[str] | None = None) -> Iterator[StockRecord]:
        """Stock rows in SKU order: all of the partner's, or those of `skus`."""
        if skus is not None:
            found = self.stock(partner_id, sorted(set(skus)))
            yield from (found[sku] for sku in sorted(found))
            return
        query = select(*_STOCK_COLUMNS).where(_S.c.partner_id == partner_id).order_by(_S.c.sku)
        for row in self.connection.execute(query.execution_options(yield_per=5000)):
            yield _stock_record(row)

    def put_stock(self, partner_id: int, records: Sequence[StockRecord], now: Instant) -> None:
        """Insert or replace these stock rows in one statement batch."""
        self._run_many(
            "put_stock",
            [
                (partner_id, r.sku, r.quantity, r.as_of, r.allocated, r.published, r.last_moved_at, r.set_by, now)
                for r in records
            ],
        )

    def insert_stock(
        self, partner_id: int, levels: Sequence[tuple[str, int, Instant, int]], set_by: int | None, now: Instant
    ) -> None:
        """Insert rows for SKUs not held yet (a conflict would be a bug upstream, and fails the transaction)."""
        self._run_many(
            "insert_stock",
            [(partner_id, sku, quantity, as_of, published, set_by, now) for sku, quantity, as_of, published in levels],
        )

    # orders

    def order(self, partner_id: int, order_id: str) -> OrderRecord | None:
        """The order `order_id` with its lines, or None."""
        head = self.connection.execute(
            select(_O.c.status, _O.c.updated_at).where(_O.c.partner_id == partner_id, _O.c.order_id == order_id)
        ).one_or_none()
        if head is None:
            return None
        lines = self.connection.execute(
            select(
                _L.c.sku,
                _L.c.quantity,
                _L.c.confirmed_quantity,
                _L.c.confirmed_at,
                _L.c.assembly,
                _L.c.collection,
            )
            .where(_L.c.partner_id == partner_id, _L.c.order_id == order_id)
            .order_by(_L.c.sku)
        )
        return OrderRecord(
            order_id=order_id,
            status=OrderStatus(head.status),
            lines=tuple(
                LineRecord(
                    sku=row.sku,
                    quantity=row.quantity,
                    confirmed_quantity=row.confirmed_quantity,
                    confirmed_at=row.confirmed_at,
                    assembly=row.assembly,
                    collection=row.collection,
                )
                for row in lines
            ),
            updated_at=head.updated_at,
        )

    def add_order(
        self, partner_id: int, order_id: str, status: OrderStatus, lines: Sequence[LineRecord], now: Instant
    ) -> None:
        """Store a new order and its lines."""
        self.connection.execute(
            _O.insert().values(
                partner_id=partner_id, order_id=order_id, status=status.value, created_at=now, updated_at=now
            )
        )
        self.connection.execute(
            _L.insert(),
            [
                {
                    "partner_id": partner_id,
                    "order_id": order_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "assembly": line.assembly,
                    "collection": line.collection,
                }
                for line in lines
            ],
        )

    def set_order_status(self, partner_id: int, order_id: str, status: OrderStatus, now: Instant) -> None:
        """Record the order's new status."""
        self.connection.execute(
            update(_O)
            .where(_O.c.partner_id == partner_id, _O.c.order_id == order_id)
            .values(status=status.value, updated_at=now)
        )

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
        """Keep the confirmation; when in force, make it the line's."""
        self.connection.execute(
            _C.insert().values(
                partner_id=partner_id,
                order_id=order_id,
                sku=sku,
                confirmed_quantity=quantity,
                confirmed_at=at,
                received_at=now,
                in_force=in_force,
            )
        )
        if in_force:
            self.connection.execute(
                update(_L)
                .where(_L.c.partner_id == partner_id, _L.c.order_id == order_id, _L.c.sku == sku)
                .values(confirmed_quantity=quantity, confirmed_at=at)
            )

    def _lines_query(self, partner_id: int) -> Any:
        return (
            select(
                _L.c.order_id,
                _L.c.sku,
                _L.c.quantity,
                _O.c.status,
                _L.c.confirmed_quantity,
                _L.c.confirmed_at,
            )
            .select_from(_L.join(_O, and_(_O.c.partner_id == _L.c.partner_id, _O.c.order_id == _L.c.order_id)))
            .where(_L.c.partner_id == partner_id)
        )

    @staticmethod
    def _line(row: Any) -> Line:
        return Line(
            order_id=row.order_id,
            sku=row.sku,
            quantity=row.quantity,
            status=OrderStatus(row.status),
            confirmed_quantity=row.confirmed_quantity,
            confirmed_at=row.confirmed_at,
        )

    def lines_of(self, partner_id: int, skus: Sequence[str], statuses: Sequence[OrderStatus]) -> list[Line]:
        """Lines of `skus` whose order is in one of `statuses`, by SKU then order id."""
        found: list[Line] = []
        wanted = [s.value for s in statuses]
        for chunk in _chunks(sorted(set(skus))):
            query = self._lines_query(partner_id).where(_L.c.sku.in_(chunk), _O.c.status.in_(wanted))
            found.extend(self._line(row) for row in self.connection.execute(query))
        found.sort(key=lambda line: (line.sku, line.order_id))
        return found

    def all_lines(self, partner_id: int) -> Iterator[Line]:
        """Every line of the partner whose order is not cancelled."""
        query = self._lines_query(partner_id).where(_O.c.status != OrderStatus.CANCELLED.value)
        for row in self.connection.execute(query.execution_options(yield_per=5000)):
            yield self._line(row)

    # outbox

    def queue_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, Instant | None]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue ATS values; an undelivered older value of the same SKU is replaced."""
        self._run_many(
            "queue_ats",
            [
                (partner_id, "ats", sku, value, as_of, ledger_id, now, "pending", None, self.run_id, 0)
                for sku, value, as_of in self._in_lock_order(partner_id, messages)
            ],
        )

    def _in_lock_order(self, partner_id: int, messages: Sequence[_Message]) -> Sequence[_Message]:
        """A command's messages in key order (PostgreSQL); an inbound item holds the partner alone: as they come."""
        if self._dialect != "postgresql" or partner_id in self._alone:
            return messages
        return outbox_locks.in_key_order(messages)

    def queue_message(
        self, partner_id: int, kind: str, key: str, payload: str, ledger_id: int | None, now: Instant
    ) -> bool:
        """Queue an order message once per (kind, key), whatever its delivery state."""
        already = self.connection.execute(
            select(func.count())
            .select_from(_X)
            .where(_X.c.partner_id == partner_id, _X.c.kind == kind, _X.c.key == key)
        ).scalar_one()
        if already:
            return False
        self.connection.execute(
            _X.insert().values(
                partner_id=partner_id,
                kind=kind,
                key=key,
                payload=payload,
                ledger_id=ledger_id,
                created_at=now,
                state="pending",
                run_id=self.run_id,
            )
        )
        return True

    # caps and channels

    def caps(self, partner_id: int, skus: Sequence[str]) -> dict[tuple[str, str], AssemblyCaps]:
        """The cap settings of the given SKUs, by (sku, assembly)."""
        found: dict[tuple[str, str], AssemblyCaps] = {}
        for chunk in _chunks(sorted(set(skus))):
            query = select(_K.c.sku, _K.c.assembly, _K.c.collection, _K.c.max_units).where(
                _K.c.partner_id == partner_id, _K.c.sku.in_(chunk)
            )
            for row in self.connection.execute(query):
                settings = found.setdefault((row.sku, row.assembly), AssemblyCaps())
                if row.collection == ALL_COLLECTIONS:
                    settings.default = row.max_units
                else:
                    settings.overrides[row.collection] = Override(row.max_units)
        return found

    def put_caps(self, partner_id: int, sku: str, assembly: str, settings: AssemblyCaps, now: Instant) -> None:
        """Replace every cap setting of one SKU in one assembly."""
        self.connection.execute(
            delete(_K).where(_K.c.partner_id == partner_id, _K.c.sku == sku, _K.c.assembly == assembly)
        )
        rows = [(collection, override.limit) for collection, override in settings.overrides.items()]
        if settings.default is not None:
            rows.append((ALL_COLLECTIONS, settings.default))
        if rows:
            self.connection.execute(
                _K.insert(),
                [
                    {
                        "partner_id": partner_id,
                        "sku": sku,
                        "assembly": assembly,
                        "collection": collection,
                        "max_units": limit,
                        "updated_at": now,
                    }
                    for collection, limit in rows
                ],
            )

    def cap_rows(self, partner_id: int, sku: str | None = None, assembly: str | None = None) -> list[CapRow]:
        """Stored cap settings in (sku, assembly, collection) order; "*" sorts before collection names."""
        query = select(_K.c.sku, _K.c.assembly, _K.c.collection, _K.c.max_units).where(_K.c.partner_id == partner_id)
        if sku is not None:
            query = query.where(_K.c.sku == sku)
        if assembly is not None:
            query = query.where(_K.c.assembly == assembly)
        rows = self.connection.execute(query.order_by(_K.c.sku, _K.c.assembly, _K.c.collection))
        return [CapRow(r.sku, r.assembly, r.collection, r.max_units) for r in rows]

    def holds_channels(self, partner_id: int) -> bool:
        """Whether the partner has any channel."""
        query = select(_H.c.sku).where(_H.c.partner_id == partner_id).limit(1)
        return self.connection.execute(query).first() is not None

    def channels(self, partner_id: int, skus: Sequence[str]) -> list[ChannelRecord]:
        """The channels of the given SKUs, in key order."""
        found: list[ChannelRecord] = []
        for chunk in _chunks(sorted(set(skus))):
            query = (
                select(_H.c.sku, _H.c.assembly, _H.c.collection, _H.c.ordered, _H.c.published)
                .where(_H.c.partner_id == partner_id, _H.c.sku.in_(chunk))
                .order_by(_H.c.sku, _H.c.assembly, _H.c.collection)
            )
            found.extend(ChannelRecord(*row) for row in self.connection.execute(query))
        return found

    def put_channels(self, partner_id: int, records: Sequence[ChannelRecord]) -> None:
        """Insert or replace these channels."""
        if not records:
            return
        statement = self._upsert(_H, ("partner_id", "sku", "assembly", "collection"), ("ordered", "published"))
        self.connection.execute(
            statement,
            [
                {
                    "partner_id": partner_id,
                    "sku": r.sku,
                    "assembly": r.assembly,
                    "collection": r.collection,
                    "ordered": r.ordered,
                    "published": r.published,
                }
                for r in records
            ],
        )

    def queue_channel_ats(
        self, partner_id: int, messages: Sequence[tuple[str, int, str]], ledger_id: int | None, now: Instant
    ) -> None:
        """Queue channel ATS values; an undelivered older value of the same channel is replaced."""
        if not messages:
            return
        statement = self._upsert(_X, _PENDING_KEY, _REQUEUE, _PENDING)
        self.connection.execute(
            statement,
            [
                {
                    "partner_id": partner_id,
                    "kind": "channel_ats",
                    "key": key,
                    "value": value,
                    "payload": payload,
                    "ledger_id": ledger_id,
                    "as_of": None,
                    "created_at": now,
                    "state": "pending",
                    "batch_id": None,
                    "run_id": self.run_id,
                    "attempts": 0,  # a new value starts its own count
                }
                for key, value, payload in self._in_lock_order(partner_id, messages)
            ],
        )

    def outbox(
        self, partner_id: int, state: str | None = "pending", kind: str | None = None, limit: int | None = None
    ) -> list[OutboxRecord]:
        """The partner's messages in `state` (every state for None) and `kind` (every kind for None), oldest first."""
        query = select(_X, _P.c.name).select_from(_X.join(_P, _P.c.id == _X.c.partner_id))
        query = query.where(_X.c.partner_id == partner_id)
        if state is not None:
            query = query.where(_X.c.state == state)
        if kind is not None:
            query = query.where(_X.c.kind == kind)
        query = query.order_by(_X.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [_outbox_record(row) for row in self.connection.execute(query)]

    def pending_kinds(self, partner_id: int) -> set[str]:
        """The kinds waiting (read from the partial index of pending messages)."""
        query = select(_X.c.kind).where(_X.c.partner_id == partner_id, _IS_PENDING).distinct()
        return set(self.connection.execute(query).scalars())

    def outbox_counts(self, partner_id: int) -> list[OutboxCount]:
        """Messages by kind and state."""
        query = (
            select(
                _X.c.kind,
                _X.c.state,
                func.count(),
                func.min(_X.c.created_at),
                func.min(_X.c.next_attempt_at),
            )
            .where(_X.c.partner_id == partner_id)
            .group_by(_X.c.kind, _X.c.state)
            .order_by(_X.c.kind, _X.c.state)
        )
        return [OutboxCount(*row) for row in self.connection.execute(query)]

    def claim(
        self, partner_id: int, kind: str, now: Instant, limit: int, lease_until: Instant, batch_id: str
    ) -> Claim | None:
        """The next due batch: one sent before (same id) first, else up to `limit` never-batched messages."""
        # Compiled once per dialect and run through the driver: a delivery pass claims many batches.
        params = {"of_partner": partner_id, "of_kind": kind, "now": now, "lease": lease_until, "limit": limit}
        self._share(partner_id)  # like settling: never waiting on an inbound item's rows while it waits on ours
        first = self._run_one("claim_first", params).fetchone()
        if first is None:
            return None
        resend = first[0] is not None
        if resend:
            batch_id = first[0]
            if self._dialect == "postgresql" and not self._try_batch(batch_id):
                return None  # another worker is claiming this batch right now: it goes whole, with them
            if self._dialect == "postgresql" and not outbox_locks.lock_all_or_none(
                self.connection, (*_due(), _X.c.batch_id == batch_id), params
            ):
                return None  # a command is replacing one of its values right now: the batch goes later, whole

            # a batch sent before goes again whole, under its key, whatever the limit
            rows = self._run_one("claim_resend", params | {"new_batch": batch_id}).fetchall()
        else:
            rows = self._run_one("claim_new", params | {"new_batch": batch_id}).fetchall()
        if not rows:  # another worker claimed them between the look and the claim
            return None
        rows = sorted(rows, key=itemgetter(0))  # RETURNING promises no order
        partner = self._partner_name(partner_id)
        make = OutboxRecord._make
        messages = tuple([make((row[0], partner, *row[1:])) for row in rows])
        return Claim(batch_id, kind, messages, resend, lease_until)

    def _try_batch(self, batch_id: str) -> bool:
        """Whether this transaction may claim a batch sent before (one worker at a time: two workers each holding
        a row of it would otherwise wait on each other)."""
        first, second = self._space.batch(batch_id)
        query = text("SELECT pg_try_advisory_xact_lock(:first, :second)")
        return bool(self.connection.execute(query, {"first": first, "second": second}).scalar())

    def _settling(self, claim: Claim) -> None:
        """Settling waits for an inbound item of the partner (whose merge queues new values in key order while a
        settle updates the batch's rows in id order: they would deadlock), not for other settles or commands; then
        it locks the batch's rows in key order, as commands take theirs: it may wait for a command holding one, never
        in a cycle (see outbox_locks)."""
        if claim.messages:
            self._share(self.partner_id(claim.messages[0].partner))
            if self._dialect == "postgresql":
                outbox_locks.lock_rows(self.connection, claim.ids)

    def _partner_name(self, partner_id: int) -> str:
        for name, known in self._partner_ids.items():
            if known == partner_id:
                return name
        name_found: str = self.connection.execute(select(_P.c.name).where(_P.c.id == partner_id)).scalar_one()
        return name_found

    def _release(self, claim: Claim, settled: int) -> None:
        """Messages of the claim replaced by a newer value meanwhile are claimable again."""
        if settled == len(claim.messages):
            return  # none was replaced
        for chunk in _chunks(claim.ids):
            self.connection.execute(
                update(_X).where(_X.c.id.in_(chunk), _IS_PENDING, _X.c.batch_id.is_(None)).values(claimed_until=None)
            )

    def _in_batch(self, claim: Claim) -> Any:
        # the batch's id range (primary key) narrows the search; its id says which rows of the range are its own
        first, last = claim.messages[0].id, claim.messages[-1].id
        return and_(
            _X.c.id >= first,
            _X.c.id <= last,
            _X.c.batch_id == claim.batch_id,
            _X.c.claimed_until == claim.lease_until,  # still ours: a lease that ran out may have been re-claimed
            _IS_PENDING,
        )

    def unclaim(self, claim: Claim) -> None:
        """A claimed batch that was not sent is claimable again; one sent before keeps its id (its key)."""
        self._settling(claim)
        values: dict[str, Any] = {"claimed_until": None}
        if not claim.resend:
            values["batch_id"] = None
        given_back = self.connection.execute(update(_X).where(self._in_batch(claim)).values(**values)).rowcount
        self._release(claim, given_back)  # and those replaced by a newer value meanwhile

    def settle_delivered(self, claim: Claim, status: int | None, now: Instant, attempts: int = 1) -> int:
        """The batch's messages are delivered, except those replaced meanwhile (they stay pending)."""
        self._settling(claim)
        params = {
            "first": claim.messages[0].id,
            "last": claim.messages[-1].id,
            "of_batch": claim.batch_id,
            "lease": claim.lease_until,
            "at": now,
            "tries": attempts,
            "answer": status,
        }
        done = self._run_one("settle_delivered", params).rowcount
        self._release(claim, done)
        return int(done)

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
        """Due again later, or to dead letter past the attempts or the age allowed."""
        self._settling(claim)
        dead = self._bury(
            claim,
            attempts,
            status,
            error,
            or_(_X.c.attempts + attempts >= max_attempts, _X.c.created_at < queued_before),
        )
        settled = (
            dead
            + self.connection.execute(
                update(_X)
                .where(self._in_batch(claim))
                .values(
                    attempts=_X.c.attempts + attempts,
                    last_status=status,
                    last_error=error,
                    next_attempt_at=next_attempt_at,
                    claimed_until=None,
                )
            ).rowcount
        )
        self._release(claim, settled)
        return int(dead)

    def _bury(self, claim: Claim, attempts: int, status: int | None, error: str, *condition: Any) -> int:
        """The batch's messages (those meeting `condition`) go to dead letter; how many did."""
        return int(
            self.connection.execute(
                update(_X)
                .where(self._in_batch(claim), *condition)
                .values(
                    state="dead",
                    attempts=_X.c.attempts + attempts,
                    last_status=status,
                    last_error=error,
                    claimed_until=None,
                    next_attempt_at=None,
                )
            ).rowcount
        )

    def settle_dead(self, claim: Claim, *, attempts: int, status: int | None, error: str, now: Instant) -> int:
        """The batch's messages go to dead letter with the partner's answer."""
        self._settling(claim)
        dead = self._bury(claim, attempts, status, error)
        self._release(claim, dead)
        return int(dead)

    def revive(self, partner_id: int, ids: Sequence[int] | None, now: Instant) -> tuple[int, int]:
        """Dead messages back in the queue; a dead value with a newer one of its key since is superseded."""
        self.lock_partner(partner_id)  # no value of the partner is queued meanwhile (PostgreSQL; rare and short)
        query = select(_X.c.id, _X.c.kind, _X.c.key, _X.c.created_at).where(
            _X.c.partner_id == partner_id, _X.c.state == "dead"
        )
        if ids is not None:
            query = query.where(_X.c.id.in_(list(ids)))
        revived = superseded = 0
        for row in self.connection.execute(query.order_by(_X.c.id)).all():
            newer = self.connection.execute(
                select(_X.c.id)
                .where(
                    _X.c.partner_id == partner_id,
                    _X.c.kind == row.kind,
                    _X.c.key == row.key,
                    _X.c.id != row.id,
                    _X.c.state.in_(("pending", "delivered", "dead")),
                    or_(
                        _X.c.created_at > row.created_at,
                        and_(_X.c.created_at == row.created_at, _X.c.id > row.id),
                    ),
                )
                .limit(1)
            ).first()
            if newer is not None:
                self.connection.execute(update(_X).where(_X.c.id == row.id).values(state="superseded"))
                superseded += 1
                continue
            self.connection.execute(
                update(_X)
                .where(_X.c.id == row.id)
                .values(state="pending", attempts=0, next_attempt_at=None, claimed_until=None, batch_id=None)
            )
            revived += 1
        return revived, superseded

    # feed cursors

    def feed_cursor(self, partner_id: int, feed: str) -> str | None:
        """The cursor to send next to a polled feed."""
        query = select(_F.c.cursor).where(_F.c.partner_id == partner_id, _F.c.feed == feed)
        found: str | None = self.connection.execute(query).scalar_one_or_none()
        return found

    def feed_position(self, partner_id: int, feed: str) -> tuple[str | None, str | None]:
        """(cursor, digest of the last page applied) of a polled feed."""
        query = select(_F.c.cursor, _F.c.last_sha256).where(_F.c.partner_id == partner_id, _F.c.feed == feed)
        row = self.connection.execute(query).first()
        return (None, None) if row is None else (row[0], row[1])

    def set_feed_cursor(
        self,
        partner_id: int,
        feed: str,
        cursor: str | None,
        ledger_id: int | None,
        now: Instant,
        last_sha256: str | None = None,
    ) -> None:
        """Record where a feed stands (and, after a page applied, that page's digest)."""
        row = {"partner_id": partner_id, "feed": feed, "cursor": cursor, "ledger_id": ledger_id, "updated_at": now}
        update_columns = ["cursor", "ledger_id", "updated_at"]
        if last_sha256 is not None:
            row["last_sha256"] = last_sha256
            update_columns.append("last_sha256")
        self.connection.execute(self._upsert(_F, ("partner_id", "feed"), update_columns), row)

    def request_answer(self, partner_id: int, key: str) -> tuple[str, int, str] | None:
        """The answer given to an Idempotency-Key."""
        query = select(_R.c.request_sha256, _R.c.status, _R.c.body).where(
            _R.c.partner_id == partner_id, _R.c.key == key
        )
        row = self.connection.execute(query).first()
        return None if row is None else (row[0], int(row[1]), row[2])

    def keep_answer(self, partner_id: int, key: str, request_sha256: str, status: int, body: str, now: Instant) -> None:
        """Remember an answer."""
        self.connection.execute(
            _R.insert().values(
                partner_id=partner_id, key=key, request_sha256=request_sha256, status=status, body=body, created_at=now
            )
        )

    def partner_policies(self) -> dict[str, tuple[str, bool]]:
        """Every registered partner's (stock mode, pending allocation)."""
        rows = self.connection.execute(select(_P.c.name, _P.c.stock_mode, _P.c.pending_allocation))
        return {row[0]: (row[1], bool(row[2])) for row in rows}

    def release_claims(self) -> int:
        """Free every claimed message (the one worker of a SQLite store starting: no claim is anyone's)."""
        statement = update(_X).where(_IS_PENDING, _X.c.claimed_until.is_not(None)).values(claimed_until=None)
        return int(self.connection.execute(statement).rowcount)

    def breaker_open_until(self, partner_id: int) -> Instant | None:
        """Until when the partner's delivery breaker is open."""
        query = select(_P.c.breaker_open_until).where(_P.c.id == partner_id)
        found: Instant | None = self.connection.execute(query).scalar_one_or_none()
        return found

    def set_breaker(self, partner_id: int, open_until: Instant | None) -> None:
        """Open (or close) the partner's delivery breaker."""
        self.connection.execute(update(_P).where(_P.c.id == partner_id).values(breaker_open_until=open_until))

    # ledger

    def ledger_applied(self, partner_id: int, kind: str, sha256: str, outcome: str = "applied") -> int | None:
        """The entry that already applied this content for this partner and kind (or the first with `outcome`)."""
        found = self.connection.execute(
            select(_G.c.id)
            .where(
                _G.c.partner_id == partner_id,
                _G.c.kind == kind,
                _G.c.sha256 == sha256,
                _G.c.outcome == outcome,
            )
            .order_by(_G.c.id)
            .limit(1)
        ).scalar_one_or_none()
        return None if found is None else int(found)

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
        """Start an entry; an `applied` one claims the content, so the same content cannot apply twice."""
        try:
            key = self.connection.execute(
                _G.insert().values(
                    partner_id=partner_id,
                    kind=kind,
                    source=source,
                    sha256=sha256,
                    size=size,
                    received_at=received_at,
                    outcome=outcome,
                )
            ).inserted_primary_key
        except sa_exc.IntegrityError as exc:
            raise AlreadyApplied(f"{kind} content {sha256} was applied already") from exc
        assert key is not None
        return int(key[0])

    def ledger_close(
        self,
        entry_id: int,
        outcome: str,
        counts: LedgerCounts,
        error: str | None,
        report: str | None,
        now: Instant,
    ) -> None:
        """Record the item's outcome and counts."""
        self.connection.execute(
            update(_G)
            .where(_G.c.id == entry_id)
            .values(
                outcome=outcome,
                rows_applied=counts.applied,
                rows_skipped=counts.skipped,
                rows_refused=counts.refused,
                error=error,
                report=report,
                finished_at=now,
            )
        )

    def ledger_since(self, partner_id: int, since: Instant) -> list[tuple[str, str, int, int, int]]:
        """Items received since `since`, by kind and outcome."""
        query = (
            select(
                _G.c.kind,
                _G.c.outcome,
                func.count(),
                func.coalesce(func.sum(_G.c.rows_applied), 0),
                func.coalesce(func.sum(_G.c.rows_refused), 0),
            )
            .where(_G.c.partner_id == partner_id, _G.c.received_at >= since)
            .group_by(_G.c.kind, _G.c.outcome)
            .order_by(_G.c.kind, _G.c.outcome)
        )
        return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in self.connection.execute(query)]

    def ledger(self, partner_id: int, limit: int = 100) -> list[LedgerRecord]:
        """The latest entries of the partner, newest first."""
        query = (
            select(_G, _P.c.name)
            .select_from(_G.join(_P, _P.c.id == _G.c.partner_id))
            .where(_G.c.partner_id == partner_id)
            .order_by(_G.c.id.desc())
            .limit(limit)
        )
        return [
            LedgerRecord(
                id=row.id,
                partner=row.name,
                kind=row.kind,
                source=row.source,
                sha256=row.sha256,
                size=row.size,
                received_at=row.received_at,
                finished_at=row.finished_at,
                outcome=row.outcome,
                rows_applied=row.rows_applied,
                rows_skipped=row.rows_skipped,
                rows_refused=row.rows_refused,
                error=row.error,
                report=row.report,
            )
            for row in self.connection.execute(query)
        ]
