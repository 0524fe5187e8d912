"""SQLite's one writer: the connections' set-up, how their transactions begin, the queue of a process's writers,
and the one worker a SQLite store takes.

A write transaction starts with BEGIN IMMEDIATE (two writers queue on the lock instead of failing half-way when
both try to upgrade); a read starts with a deferred BEGIN and, the journal being WAL, never waits for the writer.
The threads of one process queue for the writer on an in-process lock; another process's writer is waited for by
SQLite's busy handler. A caller with little patience (a platform request) gives both a time limit together: past
it, StoreBusy at once, rather than after the default busy time-out.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection
from sqlalchemy.pool import ConnectionPoolEntry

from gateway.store.errors import StoreBusy

BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another process's writer when its caller sets no limit
_BEGIN = "gateway_begin"  # execution option: "IMMEDIATE" (the default) or "DEFERRED" (a read)
_BUSY = "gateway_busy_ms"  # execution option: this transaction's busy time-out
_SET = "gateway_busy_ms"  # key of the connection's current busy time-out in its pool entry's info


def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """A new SQLite connection: WAL, foreign keys, the default busy time-out."""
    # Transactions are begun by on_begin, not by the driver's own guesswork.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()
    record.info[_SET] = BUSY_TIMEOUT_MS


def on_begin(connection: Connection) -> None:
    """BEGIN IMMEDIATE for a write, DEFERRED for a read; a write's busy time-out as its caller asked."""
    options = connection.get_execution_options()
    mode = options.get(_BEGIN, "IMMEDIATE")
    pooled = connection.connection
    # on the driver's connection: each transaction begins so, and SQLAlchemy's statement machinery would cost more
    # than SQLite's work (its errors are the driver's, translated at the store's edge all the same)
    driver = pooled.driver_connection
    assert driver is not None
    if mode == "IMMEDIATE":
        busy = int(options.get(_BUSY, BUSY_TIMEOUT_MS))
        if pooled.info.get(_SET) != busy:
            driver.execute(f"PRAGMA busy_timeout={busy}")
            pooled.info[_SET] = busy
    driver.execute(f"BEGIN {mode}")


def reading(connection: Connection) -> Connection:
    """The connection, its next transaction a read (a deferred BEGIN: it never waits for the writer)."""
    return connection.execution_options(**{_BEGIN: "DEFERRED"})


def patient(connection: Connection, seconds: float | None) -> Connection:
    """The connection, its next write waiting at most `seconds` for another process's writer (None: the default)."""
    if seconds is None:
        return connection
    return connection.execution_options(**{_BUSY: max(0, int(seconds * 1000))})


class Writer:
    """The writer of one process: its threads take turns here, not on the database's lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    @contextmanager
    def hold(self, wait: float | None) -> Iterator[float | None]:
        """Hold the writer for the block; yield what is left of `wait` (None: no limit) for the database's lock.

        StoreBusy when another thread of the process holds it for longer than `wait` seconds."""
        started = time.monotonic()
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            raise StoreBusy(
                f"the store is busy: another write (a large inbound file?) has held it for more than {wait:g} s; "
                "try again shortly"
            )
        try:
            yield None if wait is None else max(0.0, wait - (time.monotonic() - started))
        finally:
            self._lock.release()


def claim_worker(database: str | None) -> IO[str] | None:
    """Make this process the one worker of the SQLite store `database`: StoreBusy naming the holder when another
    runs. Returns the lock's open file (closing it lets go), None for a store in memory.

    The lock is an advisory lock on NAME.worker.lock beside the database, released when the process ends
    (even killed).
    """
    if not database or database == ":memory:":
        return None
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
    return handle
