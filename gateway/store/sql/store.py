"""The store on SQLAlchemy Core: SQLite (the embedded default) and PostgreSQL (several workers), one SQL.

Driver errors are turned into the project's own at this edge. On SQLite, a write transaction starts with
BEGIN IMMEDIATE so two writers queue on the lock instead of failing half-way when both try to upgrade, and one
worker runs per store. On PostgreSQL, several workers share the store and PostgreSQL coordinates them:
transaction-level advisory locks on a partner (an inbound item holds it alone) or on the orders and SKUs a
command touches (taken in one fixed key order), `FOR UPDATE SKIP LOCKED` claims of outbox batches under a lease,
and a session-level advisory lock per polled source.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from sqlalchemy import Connection, Engine, RootTransaction

from gateway.store.records import PlaceAtOnce, PlacedAtOnce
from gateway.store.sql import engine as engines
from gateway.store.sql import sqlite_writer
from gateway.store.sql.dialects import Dialect, Pool, dialect_class
from gateway.store.sql.errors import translate_errors
from gateway.store.sql.repository import KnownPartners, Shared
from gateway.store.sql.unit_of_work import SqlUnitOfWork


class SqlStore:
    """A store on one SQLAlchemy engine. Build it with `SqlStore.open(url)`."""

    def __init__(self, engine: Engine, database: Dialect | None = None) -> None:
        self.engine = engine
        # the database's ways (see dialects.py); `dialect` is its name
        self.database = database or dialect_class(engine.dialect.name)(engine.dialect)
        self.dialect = self.database.name
        self._partners = KnownPartners()
        # SQLite takes one writer at a time: the threads of one process queue here, not on the database lock
        self._writer = self.database.writer()
        self._worker_lock: IO[str] | None = None
        self._space = self.database.lock_space(engine)
        self._sources = self.database.source_locks(engine, self._space)
        # every commit of a write passes this gate, any number at a time; hold_commits() closes it for good (a
        # worker out of its grace period) once the commits under way have ended
        self._gate = threading.Condition()
        self._held = False
        self._committing = 0
        self._open_writes = 0  # write transactions begun and neither committed nor rolled back

    def claim_worker(self) -> bool:
        """Make this process the one worker of a SQLite store: StoreBusy naming the holder when another runs;
        True when this process is now the store's one worker.

        The lock is an advisory lock on NAME.worker.lock beside the database, released when the process ends
        (even killed). Several workers share a PostgreSQL store; there is nothing to claim (False).
        """
        handle = self.database.claim_worker(self.engine.url.database)
        if handle is None:
            return False
        self._worker_lock = handle
        return True

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
        engine, database = engines.open_engine(url, Pool(password, pool_size, max_overflow, pool_timeout))
        store = cls(engine, database)
        if migrate:
            store.migrate()
        return store

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema in place to `revision` (a store made by an older release keeps its data).

        A store already at the head is only read: a command never queues behind a worker's write for nothing."""
        engines.migrate(self.engine, self.database, self._space, revision)

    def revision(self) -> str | None:
        """The schema revision the store is at (None for an empty database)."""
        return engines.revision(self.engine)

    @contextmanager
    def write(
        self, *, rollback: bool = False, wait: float | None = None, run_id: str | None = None
    ) -> Iterator[SqlUnitOfWork]:
        """One write transaction; `rollback=True` rehearses it (a dry run) and commits nothing. With `wait`, StoreBusy
        when SQLite's writer (this process's or another's) is not free within that many seconds."""
        if self._writer is None:
            with self._write(rollback=rollback, wait=None, run_id=run_id) as tx:
                yield tx
            return
        with self._writer.hold(wait) as left, self._write(rollback=rollback, wait=left, run_id=run_id) as tx:
            yield tx

    @contextmanager
    def _write(self, *, rollback: bool, wait: float | None, run_id: str | None) -> Iterator[SqlUnitOfWork]:
        with (
            translate_errors(self.database.driver_error),
            sqlite_writer.patient(self.engine.connect(), wait) as connection,
        ):
            transaction = connection.begin()
            self._count(+1)
            ended = False
            try:
                try:
                    yield self._transaction(connection, run_id)
                except BaseException:
                    transaction.rollback()
                    raise
                if rollback:
                    transaction.rollback()
                else:
                    self._commit(transaction)
                    ended = True
            finally:
                if not ended:
                    self._count(-1)

    def _count(self, step: int) -> None:
        with self._gate:
            self._open_writes += step

    def _commit(self, transaction: RootTransaction) -> None:
        with self._passing():
            transaction.commit()
            self._count(-1)  # inside: hold_commits never counts a committed transaction as open

    @contextmanager
    def _passing(self) -> Iterator[None]:
        """A commit through the gate: once commits are held it waits for good, and the process leaves with its
        transaction uncommitted. Commits do not wait for one another."""
        with self._gate:
            while self._held:
                self._gate.wait()
            self._committing += 1
        try:
            yield
        finally:
            with self._gate:
                self._committing -= 1
                self._gate.notify_all()

    def hold_commits(self) -> int:
        """No write commits from now on (a worker whose grace period ran out, about to leave): a commit under way
        ends first; one asked for later waits for good, its transaction rolled back when the process ends. How
        many write transactions were open, so will never commit: 0 means each item in hand either committed or
        wrote nothing."""
        with self._gate:
            self._held = True  # never undone: the process is leaving
            while self._committing:
                self._gate.wait()
            return self._open_writes

    @contextmanager
    def read(self) -> Iterator[SqlUnitOfWork]:
        """One read-only transaction (a deferred BEGIN on SQLite: readers never wait for the writer)."""
        with (
            translate_errors(self.database.driver_error),
            sqlite_writer.reading(self.engine.connect()) as connection,
            connection.begin(),
        ):
            yield self._transaction(connection, None)

    def _transaction(self, connection: Connection, run_id: str | None) -> SqlUnitOfWork:
        """The repositories of a transaction begun on `connection`, and the locks it is to hold; `run_id` is the
        inbound item being handled, if any, kept with what it queues."""
        locks = self.database.locks(connection, self._space)
        return SqlUnitOfWork.on(Shared(connection, self.database, locks, self._partners, run_id))

    def place_at_once(self, request: PlaceAtOnce) -> PlacedAtOnce | None:
        """Place an order in one statement where the database can (PostgreSQL; None on SQLite, whose one writer
        runs the engine's path): see placement.py. The statement commits itself: it passes the commit gate as a
        whole (a placement asked for once commits are held waits for good, like any commit)."""
        with self._passing():
            return self.database.place_at_once(self.engine, self._space, self._partners, request)

    @contextmanager
    def source_lock(self, name: str) -> Iterator[bool]:
        """Whether this process may poll the source `name` now: True while it holds the source's lock.

        On PostgreSQL a session-level advisory lock, tried without waiting and released when the block ends (or
        when the process dies: the connection goes, and the lock with it), so each source is polled by one
        worker at a time. SQLite has one worker per store: always True.
        """
        with self._sources.hold(name) as held:
            yield held

    def close(self) -> None:
        """Release every pooled connection (and the worker lock)."""
        self.engine.dispose()
        self._sources.close()
        if self._worker_lock is not None:
            self._worker_lock.close()
            self._worker_lock = None
