"""The locks a transaction takes on a store that several workers share (none on a store with one writer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Locks(Protocol):
    """Who may write what, held until the transaction ends.

    On PostgreSQL, advisory locks: an inbound item holds its partner alone; a command holds the partner shared and
    then the orders and SKUs it touches, in one fixed key order, so two commands never wait on each other in a
    cycle. A store that takes one writer at a time (SQLite) takes none: every method is then a no-op.
    Raises: a lock waited for beyond the database's time-out, or a deadlock the database broke, leave the
    transaction's block as StoreBusy or StoreContention (run it again from its start).
    """

    def partner(self, partner_id: int) -> None:
        """Hold the partner alone until the transaction ends (an inbound item): other workers' items and
        commands of the partner wait. A no-op on a store that takes one writer at a time."""
        ...

    def keys(self, partner_id: int, orders: Sequence[str] = (), skus: Sequence[str] = ()) -> bool:
        """Hold these orders and SKUs of the partner until the transaction ends (a command), in one fixed key
        order; return whether a lock was taken now (so what was read before may be out of date)."""
        ...
