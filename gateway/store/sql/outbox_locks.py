"""On PostgreSQL, the pending outbox rows of a partner are locked by everyone in one order: by key (code points).

Two transactions that take rows in one order never wait on each other in a cycle. Commands queue their values in
key order (the engine meets its SKUs in whatever order the database returned them). A delivery's settle locks the
rows of its batch, those still in it and those a command replaced meanwhile, in one statement in that same order,
before it writes any (marking the first delivered and then releasing the others, it used to hold some while
waiting for others, out of order). A batch sent before is claimed again only when all its rows can be locked at
once, without waiting: the claim follows a settle in one transaction, and waiting there would be out of order.
SQLite has one writer at a time: none of this applies to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import ARRAY, Connection, Integer, any_, bindparam, func, select

from gateway.store import schema

_X = schema.outbox
# "C": code point order, as Python's sorted(); a database collation may order keys otherwise
KEY_ORDER = (_X.c.key.collate("C"), _X.c.id)
_Message = TypeVar("_Message", bound=tuple[Any, ...])


def in_key_order(messages: Sequence[_Message]) -> list[_Message]:
    """Messages whose first item is their key, sorted by it (the order the rows are locked in)."""
    return sorted(messages, key=itemgetter(0))


def lock_rows(connection: Connection, ids: Sequence[int]) -> None:
    """Lock these outbox rows for the rest of the transaction, in key order, waiting for each in turn."""
    chosen = select(_X.c.id).where(_X.c.id == any_(bindparam("ids", type_=ARRAY(Integer))))
    connection.execute(chosen.order_by(*KEY_ORDER).with_for_update(), {"ids": list(ids)})


def lock_all_or_none(connection: Connection, where: Sequence[Any], params: Mapping[str, Any]) -> bool:
    """Lock the rows meeting `where` in key order without waiting for any; whether none was held by another
    transaction (then all are locked). When some were, those locked stay so until the transaction ends."""
    total = connection.execute(select(func.count()).select_from(_X).where(*where), dict(params)).scalar_one()
    chosen = select(_X.c.id).where(*where).order_by(*KEY_ORDER).with_for_update(skip_locked=True)
    return len(connection.execute(chosen, dict(params)).all()) == total
