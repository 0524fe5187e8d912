"""A driver's error as the store's own: busy (try again later), contention (run it again now), conflict or failed.

Every place the adapter meets its driver's errors goes through `translate_errors()`: a transaction's block, the
engine's first connection, a migration, a source lock's connection, a ledger entry's claim.

PostgreSQL's errors carry a DETAIL (process and transaction ids, the other transaction's statement), a HINT and
a CONTEXT: internals of the server, meant for its own log. Only the primary message and the SQLSTATE are kept, so
an answer or a log line of the gateway never shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from gateway.store.errors import Conflict, StoreBusy, StoreContention, StoreError

# the transaction was rolled back to untie it from another: serialization failure, deadlock
CONTENTION_SQLSTATES = frozenset({"40001", "40P01"})
# it waited longer than allowed: lock time-out, statement time-out (or cancel)
BUSY_SQLSTATES = frozenset({"55P03", "57014"})
_SECTIONS = ("\nDETAIL:", "\nHINT:", "\nCONTEXT:")


def primary_message(error: BaseException) -> str:
    """The driver error's own message, without PostgreSQL's DETAIL, HINT and CONTEXT."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return str(primary)
    message = str(error)
    for section in _SECTIONS:
        message = message.split(section, 1)[0]
    return message.strip()


def translate(exc: BaseException) -> StoreError:
    """The store's error for a driver's error, wrapped by SQLAlchemy or raw (the PostgreSQL COPY loader's cursor);
    raise it `from None`: the driver's own, chained, would show its DETAIL in a traceback."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    sqlstate = getattr(orig, "sqlstate", None)
    message = primary_message(orig)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        # the pool pings no connection on checkout: one the server dropped (a restart) fails here and is replaced;
        # the transaction runs again on a new one (a command's retry; an inbound item's next attempt)
        return StoreContention(f"the connection to the store was lost: {message}; the transaction did not complete")
    if sqlstate in CONTENTION_SQLSTATES:
        return StoreContention(f"the store is busy: {message} (SQLSTATE {sqlstate}); the transaction was rolled back")
    if sqlstate in BUSY_SQLSTATES:
        return StoreBusy(f"the store is busy: {message} (SQLSTATE {sqlstate})")
    operational = isinstance(exc, sa_exc.OperationalError) or type(orig).__name__ == "OperationalError"
    if operational and ("locked" in message or "busy" in message):  # SQLite: another process holds the write lock
        return StoreBusy(f"the store is busy: {message}")
    return StoreError(f"the store failed: {message}")


def _conflict(message: str) -> StoreError:
    return Conflict(message)


@contextmanager
def translate_errors(
    driver_error: type[Exception] | tuple[type[Exception], ...] = (),
    *,
    conflict: Callable[[str], StoreError] = _conflict,
    failing: str | None = None,
) -> Iterator[None]:
    """Turn the driver's errors raised in the block into the store's.

    A uniqueness rule hit: `conflict(message)` (a Conflict unless the caller names a more precise one). An error
    the database reports (locked, busy, rolled back, failed): as `translate` says. No connection free in the pool:
    StoreBusy. `driver_error`: the driver's own base exception, raised by its cursors used directly (PostgreSQL's
    COPY loader). `failing`: what the block does, for the errors that are not the database's state but the
    request's (a schema that does not exist, no right to create tables): `StoreError("{failing}: ...")`.
    """
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise translate(exc) from None
    except sa_exc.DBAPIError as exc:
        if failing is not None:
            raise StoreError(f"{failing}: {exc.orig}") from exc
        if isinstance(exc, sa_exc.IntegrityError):
            raise conflict(primary_message(exc.orig or exc)) from None
        raise translate(exc) from None
    except driver_error as exc:
        raise translate(exc) from None
    except sa_exc.TimeoutError as exc:
        raise StoreBusy(f"the store is busy: no connection free in the pool ({exc})") from exc
