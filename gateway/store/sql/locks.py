"""The locks of a store several workers share (PostgreSQL's advisory locks), and their absence on one with a single
writer (SQLite).

Transaction-level advisory locks on a partner (an inbound item holds it alone) or on the orders and SKUs a command
touches (taken in one fixed key order); a session-level advisory lock per polled source. Each lock has two 32-bit
keys: the first names the kind of lock within the store (its space), the second the thing locked.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from gateway.store.sql import outbox_locks, statements
from gateway.store.sql.errors import translate_errors

_Message = TypeVar("_Message", bound=tuple[Any, ...])


def lock_key(name: str) -> int:
    """A name's 32-bit signed key for a PostgreSQL advisory lock (two names may share one: they then queue)."""
    key = zlib.crc32(name.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


class LockSpace:
    """The first key of the two-key PostgreSQL advisory locks of one store: advisory locks are per database, so
    each is drawn from the store's schema name too, and two stores in two schemas of one database never meet."""

    def __init__(self, schema: str) -> None:
        self.partner = lock_key(f"{schema}\x00partner")  # second key: the partner's id
        self.source = lock_key(f"{schema}\x00source")  # second key: the source's name
        self.migrate = lock_key(f"{schema}\x00migrate")  # second key: 0 to migrate, 1 to register a partner
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


class TransactionLocks:
    """The locks a transaction holds. As they are here, on a store that takes one writer at a time (SQLite): it
    writes alone, so it takes none, and every call says so (no lock taken, a batch always claimable)."""

    def partner(self, partner_id: int) -> None:
        """Hold the partner alone for the rest of the transaction (an inbound item: a file, a page)."""

    def share(self, partner_id: int) -> bool:
        """Hold the partner shared unless held already; whether a lock was taken now."""
        return False

    def keys(self, partner_id: int, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> bool:
        """Hold these orders and SKUs of the partner (a command); whether a lock was taken now."""
        return False

    def in_key_order(self, partner_id: int, messages: Sequence[_Message]) -> Sequence[_Message]:
        """Messages to queue, in the order their rows are to be locked."""
        return messages

    def registering(self) -> None:
        """Hold the partners' register until the transaction ends (workers starting together add a partner once)."""

    def migrating(self) -> None:
        """Hold the schema until the transaction ends (workers starting together: one upgrades it)."""

    def resending(self, batch_id: str, where: Sequence[Any], params: Mapping[str, Any]) -> bool:
        """Whether this transaction may claim the batch `batch_id`, sent before, whose due rows meet `where`."""
        return True

    def settling(self, partner_id: int, ids: Sequence[int]) -> None:
        """Hold what settling a claimed batch of the partner (these outbox ids) needs."""


class AdvisoryLocks(TransactionLocks):
    """The locks of a transaction on PostgreSQL: advisory locks held to the end of the transaction, and the
    outbox rows a settle or a re-claim touches (see outbox_locks)."""

    def __init__(self, connection: Connection, space: LockSpace) -> None:
        self.connection = connection
        self.space = space
        self._alone: set[int] = set()  # partners this transaction holds alone
        self._shared: set[int] = set()  # partners this transaction holds beside others (commands)
        self._keys: set[tuple[int, int]] = set()  # (space, key) of the orders and SKUs it holds

    def partner(self, partner_id: int) -> None:
        """Hold the partner alone for the rest of the transaction (an inbound item: a file, a page)."""
        if partner_id in self._alone:
            return
        self.connection.execute(text(statements.LOCK), {"ns": self.space.partner, "key": partner_id})
        self._alone.add(partner_id)

    def share(self, partner_id: int) -> bool:
        """Hold the partner shared unless held already; whether a lock was taken now."""
        if partner_id in self._alone or partner_id in self._shared:
            return False
        self.connection.execute(text(statements.LOCK_SHARED), {"ns": self.space.partner, "key": partner_id})
        self._shared.add(partner_id)
        return True

    def keys(self, partner_id: int, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> bool:
        """Hold these orders and SKUs of the partner for the rest of the transaction (a command); return whether
        it took a lock it did not hold (and so may have waited: what it read before may be out of date).

        The partner is held shared (commands run side by side; an inbound item waits for them and they for
        it), then the orders' keys, then the SKUs', each in ascending order, so two commands never wait on each
        other in a cycle."""
        if partner_id in self._alone:
            return False
        took = self.share(partner_id)
        # every order key before every SKU key, each group in ascending order: one global order for all commands
        # (set_status takes its order, reads it, then takes its SKUs: it never waits for an order holding a SKU)
        held = self._keys
        wanted = [(self.space.orders_of(partner_id), key) for key in sorted({lock_key(o) for o in orders})]
        wanted += [(self.space.skus_of(partner_id), key) for key in sorted({lock_key(sku) for sku in skus})]
        keys = [pair for pair in wanted if pair not in held]
        if keys:
            self.connection.execute(
                text(statements.LOCK_EACH), {"spaces": [ns for ns, _ in keys], "keys": [key for _, key in keys]}
            )
            held.update(keys)
            took = True
        return took

    def in_key_order(self, partner_id: int, messages: Sequence[_Message]) -> Sequence[_Message]:
        """A command's messages in key order; an inbound item holds the partner alone: as they come."""
        if partner_id in self._alone:
            return messages
        return outbox_locks.in_key_order(messages)

    def registering(self) -> None:
        """Workers starting together register a new partner once."""
        self.connection.execute(text(statements.LOCK), {"ns": self.space.migrate, "key": 1})

    def migrating(self) -> None:
        """Workers starting together: one upgrades, the others wait and find the schema at head."""
        self.connection.execute(text(statements.LOCK), {"ns": self.space.migrate, "key": 0})

    def resending(self, batch_id: str, where: Sequence[Any], params: Mapping[str, Any]) -> bool:
        """Whether this transaction may claim a batch sent before: one worker at a time (two workers each holding
        a row of it would otherwise wait on each other), and only when all its rows can be locked at once."""
        first, second = self.space.batch(batch_id)
        if not self.connection.execute(text(statements.TRY_LOCK), {"ns": first, "key": second}).scalar():
            return False  # another worker is claiming this batch right now: it goes whole, with them
        # a command replacing one of its values right now: the batch goes later, whole
        return outbox_locks.lock_all_or_none(self.connection, where, params)

    def settling(self, partner_id: int, ids: Sequence[int]) -> None:
        """Settling waits for an inbound item of the partner (whose merge queues new values in key order while a
        settle updates the batch's rows in id order: they would deadlock), not for other settles or commands; then
        it locks the batch's rows in key order, as commands take theirs: it may wait for a command holding one, never
        in a cycle (see outbox_locks)."""
        self.share(partner_id)
        outbox_locks.lock_rows(self.connection, ids)


class SourceLocks:
    """The locks that let one worker at a time poll each source. As they are here, on a store with one worker
    (SQLite): every source is its own."""

    engine: Engine | None = None

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Whether this process may poll the source `name` now: always."""
        yield True

    def close(self) -> None:
        """Release what the locks hold."""


class AdvisorySourceLocks(SourceLocks):
    """The source locks of a store several workers share (PostgreSQL): a session-level advisory lock per source,
    tried without waiting, each on a connection of its own."""

    def __init__(self, space: LockSpace, connect: Callable[[], Engine], driver_error: type[Exception]) -> None:
        self.space = space
        self._connect = connect
        self._driver_error = driver_error

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Whether this process may poll the source `name` now: True while it holds the source's lock.

        The lock is released when the block ends (or when the process dies: the connection goes, and the lock
        with it), so each source is polled by one worker at a time.
        """
        params = {"ns": self.space.source, "key": lock_key(name)}
        if self.engine is None:
            # a connection of its own per held source, outside the pool: polls holding their locks never take
            # the connections their own work needs (a full pool would leave them all waiting on each other)
            self.engine = self._connect()
        with translate_errors(self._driver_error):
            connection = self.engine.connect()
        held = False
        try:
            held = bool(connection.execute(text(statements.TRY_SESSION_LOCK), params).scalar())
            connection.commit()  # the lock outlives the transaction; the connection sits idle, not in one
            yield held
        finally:
            try:
                if held:
                    connection.execute(text(statements.SESSION_UNLOCK), params)
                    connection.commit()
            except sa_exc.DBAPIError:
                connection.invalidate()  # the connection broke: the session, and the lock with it, are gone
            finally:
                connection.close()

    def close(self) -> None:
        """Close the locks' connections (a lock still held goes with its connection)."""
        if self.engine is not None:
            self.engine.dispose()
