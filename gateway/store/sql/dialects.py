"""What differs between the databases the store runs on, in one object per database: SQLite and PostgreSQL.

The rest of the adapter writes one SQL and asks its dialect object where the databases part: how an engine is
made, the insert (and upsert) construct, how a batch of SKUs is looked up, whether a bulk loader exists, and which
locks a transaction takes. `Dialect` holds what needs nothing special; each database overrides its own part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import Dialect as SqlAlchemyDialect
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from gateway.store.errors import StoreError
from gateway.store.records import PlaceAtOnce, PlacedAtOnce
from gateway.store.sql import placement, sqlite_writer, statements
from gateway.store.sql.errors import translate_errors
from gateway.store.sql.locks import AdvisoryLocks, AdvisorySourceLocks, LockSpace, SourceLocks, TransactionLocks

if TYPE_CHECKING:
    from gateway.store.port import LevelLoader
    from gateway.store.sql.repository import KnownPartners, SqlRepository

_PG_CONNECT_ARGS = {"connect_timeout": 10, "application_name": "stock-gateway"}
FEW_SKUS = 16  # on SQLite, up to this many SKUs are read one keyed read each rather than in one IN list


@dataclass(frozen=True)
class Pool:
    """How a store's engine connects: `password` joins a PostgreSQL URL (read from the environment or a file, never
    the configuration); `size`, `overflow` and `timeout` size a PostgreSQL pool. SQLite needs none of them."""

    password: str | None
    size: int
    overflow: int
    timeout: float


class Dialect:
    """One database's ways, built on the SQLAlchemy dialect of the engine it serves."""

    name: ClassVar[str]

    def __init__(self, dialect: SqlAlchemyDialect) -> None:
        self.sa = dialect
        # the driver's own errors, raised by its cursors used directly (PostgreSQL's COPY loader, the repositories'
        # statements): any of them, and a uniqueness rule broken
        self.driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self.integrity_error: type[Exception] = dialect.loaded_dbapi.IntegrityError

    @classmethod
    def create_engine(cls, url: URL, pool: Pool) -> Engine:
        """An engine on `url`, its connections set up for the store."""
        return create_engine(url)

    def insert(self, table: Any) -> Any:
        """The database's INSERT construct (one that knows ON CONFLICT)."""
        raise NotImplementedError

    def upsert(self, table: Any, key: Sequence[str], update: Sequence[str], where: str | None = None) -> Any:
        """INSERT ... ON CONFLICT (key) [WHERE where] DO UPDATE SET each of `update` from the new row."""
        insert = self.insert(table)
        return insert.on_conflict_do_update(
            index_elements=[table.c[name] for name in key],
            index_where=None if where is None else text(where),  # a literal: bound parameters break executemany
            set_={name: insert.excluded[name] for name in update},
        )

    def by_skus(self, name: str, partner_id: int, chunk: Sequence[str]) -> tuple[str, Any]:
        """SQL and parameters of look-up `name` for up to CHUNK SKUs: an IN list padded to one fixed size (one
        statement for the driver to cache)."""
        compiled = statements.compiled(self, name)
        [params] = compiled.params([(partner_id, *chunk, *([chunk[-1]] * (statements.CHUNK - len(chunk))))])
        return compiled.sql, params

    def reads_range(self, skus: Sequence[str]) -> bool:
        """Whether a batch of SKUs is looked up as one key range (see SqlStock.stock_versions)."""
        return False

    def looks_up_each(self, count: int) -> bool:
        """Whether `count` SKUs' stock rows are read one keyed read each rather than in one batch (by_skus): one
        SKU, where the batch's statement costs more than the keyed one (one round trip either way)."""
        return count == 1

    def level_loader(self, transaction: SqlRepository, partner_id: int, ledger_id: int | None) -> LevelLoader | None:
        """A bulk loader for a large snapshot, where the database has one."""
        return None

    def place_at_once(
        self, engine: Engine, space: LockSpace, partners: KnownPartners, request: PlaceAtOnce
    ) -> PlacedAtOnce | None:
        """A placement in one statement, where the database has one (see placement.py)."""
        return None

    def writer(self) -> sqlite_writer.Writer | None:
        """The queue of this process's writers, for a database that takes one writer at a time."""
        return None

    def claims_alone(self) -> bool:
        """Whether a write transaction claims outbox rows alone (one writer at a time: no other claims between its
        look and its mark)."""
        return False

    def claim_worker(self, database: str | None) -> IO[str] | None:
        """Make this process the store's one worker, for a database that takes one (its lock's open file)."""
        return None

    def lock_space(self, engine: Engine) -> LockSpace:
        """The first keys of the store's locks."""
        return LockSpace("")

    def locks(self, connection: Connection, space: LockSpace) -> TransactionLocks:
        """The locks of a transaction on `connection`."""
        return TransactionLocks()

    def source_locks(self, engine: Engine, space: LockSpace) -> SourceLocks:
        """The locks that let one worker at a time poll each source."""
        return SourceLocks()


class SQLite(Dialect):
    """SQLite, the embedded default: one writer at a time (WAL, BEGIN IMMEDIATE), one worker per store."""

    name = "sqlite"

    @classmethod
    def create_engine(cls, url: URL, pool: Pool) -> Engine:
        """An engine whose connections begin their transactions as sqlite_writer says; the database's folder is
        made if missing."""
        engine = create_engine(url)
        event.listen(engine, "connect", sqlite_writer.on_connect)
        event.listen(engine, "begin", sqlite_writer.on_begin)
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return engine

    def insert(self, table: Any) -> Any:
        """SQLite's INSERT construct."""
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415 - a store loads its own database's dialect alone

        return sqlite.insert(table)

    def reads_range(self, skus: Sequence[str]) -> bool:
        """A sorted batch of more than one look-up, whose key range may hold few more rows than the batch.
        (Not on PostgreSQL: its collation may order SKUs otherwise than Python, and its array look-up is cheap.)"""
        return statements.CHUNK < len(skus) <= statements.RANGE_LIMIT // 4 and skus == sorted(skus)

    def claims_alone(self) -> bool:
        """One writer at a time."""
        return True

    def looks_up_each(self, count: int) -> bool:
        """A command's few SKUs (an order's lines): a keyed read costs SQLite a few µs, the batch's IN list of
        CHUNK parameters (padded to one fixed size) a hundred."""
        return count <= FEW_SKUS

    def writer(self) -> sqlite_writer.Writer:
        """SQLite takes one writer at a time: the threads of one process queue here, not on the database lock."""
        return sqlite_writer.Writer()

    def claim_worker(self, database: str | None) -> IO[str] | None:
        """A lock file beside the database (see sqlite_writer.claim_worker)."""
        return sqlite_writer.claim_worker(database)


def _postgres_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The server probes an idle connection after 30 s and drops it after 3 unanswered probes 10 s apart: the locks
    # of a worker whose machine died (no FIN ever sent) return within about a minute, not the kernel's two hours.
    with dbapi_connection.cursor() as cursor:
        for name, value in (("tcp_keepalives_idle", 30), ("tcp_keepalives_interval", 10), ("tcp_keepalives_count", 3)):
            cursor.execute(f"SET {name} = {value}")
    dbapi_connection.commit()


class PostgreSQL(Dialect):
    """PostgreSQL, for several workers on one store: advisory locks, array look-ups, COPY for large snapshots."""

    name = "postgresql"

    @classmethod
    def create_engine(cls, url: URL, pool: Pool) -> Engine:
        """A pool of `pool.size` connections, `pool.overflow` more under load; the password joins the URL."""
        if pool.password is not None:
            url = url.set(password=pool.password)
        engine = create_engine(
            url,
            pool_size=pool.size,
            max_overflow=pool.overflow,
            pool_timeout=pool.timeout,
            # no ping per checkout (a round trip per transaction): a connection the server dropped fails its first
            # statement, is invalidated, and the transaction runs again on a new one (errors.translate)
            connect_args=dict(_PG_CONNECT_ARGS),
        )
        event.listen(engine, "connect", _postgres_on_connect)
        return engine

    def insert(self, table: Any) -> Any:
        """PostgreSQL's INSERT construct."""
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 - a store loads its own database's dialect alone

        return postgresql.insert(table)

    def by_skus(self, name: str, partner_id: int, chunk: Sequence[str]) -> tuple[str, Any]:
        """One array parameter (a query with hundreds of placeholders would be parsed again by the driver every
        time)."""
        compiled = statements.compiled(self, f"{name}_any")
        [params] = compiled.params([(partner_id, list(chunk))])
        return compiled.sql, params

    def level_loader(self, transaction: SqlRepository, partner_id: int, ledger_id: int | None) -> LevelLoader:
        """COPY into a temporary table, then one merge (see levels.py)."""
        from gateway.store.sql.levels import PostgresLevelLoader  # noqa: PLC0415 - psycopg's COPY, for PostgreSQL

        return PostgresLevelLoader(transaction, partner_id, ledger_id)

    def place_at_once(
        self, engine: Engine, space: LockSpace, partners: KnownPartners, request: PlaceAtOnce
    ) -> PlacedAtOnce:
        """`gateway_place` in autocommit: one round trip (see placement.py)."""
        return placement.place_at_once(engine, space, partners, self.driver_error, request)

    def lock_space(self, engine: Engine) -> LockSpace:
        """Keys drawn from the store's schema name too: two stores in two schemas of one database never meet."""
        with translate_errors(self.driver_error), engine.connect() as connection:
            return LockSpace(str(connection.execute(text(statements.CURRENT_SCHEMA)).scalar() or ""))

    def locks(self, connection: Connection, space: LockSpace) -> AdvisoryLocks:
        """Advisory locks held to the end of the transaction."""
        return AdvisoryLocks(connection, space)

    def source_locks(self, engine: Engine, space: LockSpace) -> AdvisorySourceLocks:
        """Session-level advisory locks, each on a connection of its own outside the pool."""

        def connect() -> Engine:
            unpooled = create_engine(engine.url, poolclass=NullPool, connect_args=dict(_PG_CONNECT_ARGS))
            event.listen(unpooled, "connect", _postgres_on_connect)
            return unpooled

        return AdvisorySourceLocks(space, connect, self.driver_error)


DIALECTS: dict[str, type[Dialect]] = {"sqlite": SQLite, "postgresql": PostgreSQL}


def dialect_class(backend: str) -> type[Dialect]:
    """The dialect of the database named `backend` (a URL's): StoreError for one the store does not run on."""
    found = DIALECTS.get(backend)
    if found is None:
        raise StoreError(f"the store runs on SQLite or PostgreSQL, not {backend}")
    return found
