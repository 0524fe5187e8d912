"""The adapter's SQL for its bulk paths: the statements compiled once by name, and the raw SQL of PostgreSQL's
advisory locks (the SQL of PostgreSQL's snapshot loading is in level_statements.py).

Bulk paths (a million-row snapshot, a delivery pass claiming many batches) spend most of their time binding
parameters: their statements are built with SQLAlchemy Core (one portable SQL), compiled once per database, and
run through the driver with plain tuples. Code asks for one by its name in `BULK`; the other queries are built
with Core where they are used, in the repository that runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ARRAY, String, any_, bindparam, func, literal_column, or_, select, text, update

from gateway.domain.messages import OutboxState
from gateway.store import schema

if TYPE_CHECKING:
    from gateway.store.sql.dialects import Dialect

_Item = TypeVar("_Item")
CHUNK = 500  # SKUs per IN (...) look-up: well under every driver's bound-parameter limit
RANGE_LIMIT = 40_000  # rows one key-range look-up may return before it gives way to IN look-ups

_S = schema.stock
_X = schema.outbox


def chunks(items: Sequence[_Item]) -> Iterator[Sequence[_Item]]:
    """`items` in slices of CHUNK, the size of one look-up."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


STOCK_COLUMNS = (
    _S.c.sku,
    _S.c.quantity,
    _S.c.as_of,
    _S.c.allocated,
    _S.c.published,
    _S.c.last_moved_at,
    _S.c.set_by,
)
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
REQUEUE = ("value", "as_of", "payload", "ledger_id", "created_at", "batch_id", "run_id", "attempts")
PENDING_KEY = ("partner_id", "kind", "key")  # one undelivered message per key: ux_outbox_pending_key
PENDING = f"state = '{OutboxState.PENDING.value}'"
IS_PENDING = text(f"outbox.state = '{OutboxState.PENDING.value}'")
OUTBOX_COLUMNS = (
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
# what a claim reads back of each message: the columns it did not set itself or choose by (partner, kind, state)
CLAIMED_COLUMNS = (
    _X.c.id,
    _X.c.key,
    _X.c.value,
    _X.c.as_of,
    _X.c.payload,
    _X.c.ledger_id,
    _X.c.created_at,
    _X.c.attempts,
    _X.c.next_attempt_at,
    _X.c.last_error,
    _X.c.last_status,
    _X.c.delivered_at,
    _X.c.run_id,
)
_LOOKUP_KEYS = ("partner_id", *(f"sku_{i}" for i in range(CHUNK)))


def due() -> tuple[Any, ...]:
    """A partner's messages of one kind due for delivery (bound: of_partner, of_kind, now)."""
    now: Any = bindparam("now")
    return (
        _X.c.partner_id == bindparam("of_partner"),
        _X.c.kind == bindparam("of_kind"),
        IS_PENDING,  # a literal, so SQLite can use the partial index ix_outbox_pending
        or_(_X.c.next_attempt_at.is_(None), _X.c.next_attempt_at <= now),
        or_(_X.c.claimed_until.is_(None), _X.c.claimed_until <= now),
    )


def _claim_update(chosen: Any) -> Any:
    """Claim the chosen messages under a batch id until a lease ends, returning them (CLAIMED_COLUMNS)."""
    return (
        update(_X)
        .where(_X.c.id.in_(chosen.scalar_subquery()))
        .values(batch_id=bindparam("new_batch"), claimed_until=bindparam("lease"))
        .returning(*CLAIMED_COLUMNS)
    )


# On PostgreSQL, rows another worker is claiming right now are skipped, not waited for (SQLite renders no
# FOR UPDATE: its one writer claims alone).


def _claim_first(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_X.c.batch_id).where(*due()).order_by(_X.c.id).limit(1).with_for_update(skip_locked=True)
    return statement, ("of_partner", "of_kind", "now")


def _claim_new(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    chosen = (
        select(_X.c.id)
        .where(*due(), _X.c.batch_id.is_(None))
        .order_by(_X.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return _claim_update(chosen), ("of_partner", "of_kind", "now", "limit", "new_batch", "lease")


# SQLite's one writer claims alone: it looks for the rows, then marks them by their id range (nobody claims between
# the two), which costs it less than one UPDATE ... RETURNING.


def _claim_pick(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    chosen = select(*CLAIMED_COLUMNS).where(*due(), _X.c.batch_id.is_(None)).order_by(_X.c.id).limit(bindparam("limit"))
    return chosen, ("of_partner", "of_kind", "now", "limit")


def _claim_mark(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    # the rows picked are the first due and never-batched ones in id order: those of their range, and no other
    statement = (
        update(_X)
        .where(_X.c.id >= bindparam("first"), _X.c.id <= bindparam("last"), *due(), _X.c.batch_id.is_(None))
        .values(batch_id=bindparam("new_batch"), claimed_until=bindparam("lease"))
    )
    return statement, ("of_partner", "of_kind", "now", "first", "last", "new_batch", "lease")


def _claim_resend(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    chosen = select(_X.c.id).where(*due(), _X.c.batch_id == bindparam("new_batch")).with_for_update()
    return _claim_update(chosen), ("of_partner", "of_kind", "now", "new_batch", "lease")


def _settle_delivered(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = (
        update(_X)
        .where(
            _X.c.id >= bindparam("first"),
            _X.c.id <= bindparam("last"),
            _X.c.batch_id == bindparam("of_batch"),
            _X.c.claimed_until == bindparam("lease"),
            IS_PENDING,
        )
        .values(
            state=OutboxState.DELIVERED.value,
            delivered_at=bindparam("at"),
            claimed_until=None,
            attempts=_X.c.attempts + bindparam("tries"),
            last_status=bindparam("answer"),
            last_error=None,
        )
    )
    return statement, ("first", "last", "of_batch", "lease", "at", "tries", "answer")


def _put_stock(dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return dialect.upsert(_S, ("partner_id", "sku"), _STOCK_KEYS[2:]), _STOCK_KEYS


def _insert_stock(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    keys = ("partner_id", "sku", "quantity", "as_of", "published", "set_by", "updated_at")
    return _S.insert(), keys


def _queue_ats(dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return dialect.upsert(_X, PENDING_KEY, REQUEUE[:2] + REQUEUE[3:], PENDING), _ATS_KEYS


def _versions(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_S.c.sku, _S.c.quantity, _S.c.as_of).where(
        _S.c.partner_id == bindparam("partner_id"),
        _S.c.sku.in_([bindparam(key) for key in _LOOKUP_KEYS[1:]]),
    )
    return statement, _LOOKUP_KEYS


def _key_range(limit: Any) -> Any:
    """(sku, quantity, as_of) of a partner's stock rows from SKU `first` to `last`, at most `limit` of them."""
    return (
        select(_S.c.sku, _S.c.quantity, _S.c.as_of)
        .where(
            _S.c.partner_id == bindparam("partner_id"),
            _S.c.sku >= bindparam("first"),
            _S.c.sku <= bindparam("last"),
        )
        .limit(limit)
    )


def _versions_range(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    return _key_range(RANGE_LIMIT + 1), ("partner_id", "first", "last")


def _range_texts(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    # SQLite only (group_concat): a sorted batch's key range as three texts, one row in SQL instead of a tuple per
    # row in Python. The range is read in key order, and the caller checks the SKUs' text to be the batch's own:
    # should the rows ever come otherwise, it compares the batch row by row. The LIMIT (the batch's size plus one)
    # bounds the read of a range that holds many more rows than the batch; the separators are written in the SQL
    # (bound as parameters, they cost SQLite more).
    held = _key_range(bindparam("limit")).subquery()
    statement = select(
        func.group_concat(held.c.sku, literal_column("char(10)")),
        func.group_concat(held.c.quantity, literal_column("','")),
        func.group_concat(func.ifnull(held.c.as_of, literal_column("''")), literal_column("','")),
    )
    return statement, ("partner_id", "first", "last", "limit")


def _lookup_any(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(*STOCK_COLUMNS).where(
        _S.c.partner_id == bindparam("partner_id"), _S.c.sku == any_(bindparam("skus", type_=ARRAY(String)))
    )
    return statement, ("partner_id", "skus")


def _versions_any(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(_S.c.sku, _S.c.quantity, _S.c.as_of).where(
        _S.c.partner_id == bindparam("partner_id"), _S.c.sku == any_(bindparam("skus", type_=ARRAY(String)))
    )
    return statement, ("partner_id", "skus")


def _lookup(_dialect: Dialect) -> tuple[Any, Sequence[str]]:
    statement = select(*STOCK_COLUMNS).where(
        _S.c.partner_id == bindparam("partner_id"),
        _S.c.sku.in_([bindparam(key) for key in _LOOKUP_KEYS[1:]]),
    )
    return statement, _LOOKUP_KEYS


# name -> the statement for a database and the names of its parameters, in the order rows give them
BULK: dict[str, Callable[[Dialect], tuple[Any, Sequence[str]]]] = {
    "claim_first": _claim_first,
    "claim_new": _claim_new,
    "claim_pick": _claim_pick,
    "claim_mark": _claim_mark,
    "claim_resend": _claim_resend,
    "settle_delivered": _settle_delivered,
    "put_stock": _put_stock,
    "insert_stock": _insert_stock,
    "queue_ats": _queue_ats,
    # stock look-ups by SKU: an IN list (SQLite), an array (`_any`, PostgreSQL), a key range (a sorted batch)
    "lookup": _lookup,
    "lookup_any": _lookup_any,
    "versions": _versions,
    "versions_any": _versions_any,
    "versions_range": _versions_range,
    "range_texts": _range_texts,
}


class Compiled:
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
        """The driver's parameters for these rows (each a tuple in the order of the statement's keys)."""
        if self.named:
            return [dict(zip(self.keys, row, strict=True)) | self.constants for row in rows]
        if self.order is not None:
            order, constants = self.order, self.constants
            return [tuple(row[i] if isinstance(i, int) else constants[i] for i in order) for row in rows]
        return rows


_COMPILED: dict[tuple[str, str], Compiled] = {}


Builders = dict[str, Callable[["Dialect"], tuple[Any, Sequence[str]]]]


def compiled(dialect: Dialect, name: str, builders: Builders = BULK) -> Compiled:
    """The statement `name` of BULK (or of `builders`: keyed.KEYED), compiled for `dialect` (once per process)."""
    key = (dialect.name, name)
    found = _COMPILED.get(key)
    if found is None:
        statement, keys = builders[name](dialect)
        found = _COMPILED[key] = Compiled(statement, dialect.sa, keys)
    return found


# PostgreSQL's advisory locks (see locks.py): two 32-bit keys each, the first the store's space for the kind of lock

LOCK = "SELECT pg_advisory_xact_lock(:ns, :key)"
LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(:ns, :key)"
LOCK_EACH = (
    "SELECT pg_advisory_xact_lock(ns, k) FROM unnest(CAST(:spaces AS integer[]), CAST(:keys AS integer[])) AS t(ns, k)"
)
TRY_LOCK = "SELECT pg_try_advisory_xact_lock(:ns, :key)"
TRY_SESSION_LOCK = "SELECT pg_try_advisory_lock(:ns, :key)"
SESSION_UNLOCK = "SELECT pg_advisory_unlock(:ns, :key)"
CURRENT_SCHEMA = "SELECT current_schema()"
