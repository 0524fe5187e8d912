"""What every repository of one transaction works on: its connection, its database's dialect, its locks, the run
it belongs to, and the partners the store knows.

Each repository (stock.py, orders.py, ...) is built on this base; SqlUnitOfWork (unit_of_work.py) holds one of each,
all on one `Shared`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, Table, select

from gateway.store import schema
from gateway.store.errors import Conflict, StoreError
from gateway.store.sql import statements
from gateway.store.sql.dialects import Dialect
from gateway.store.sql.errors import primary_message
from gateway.store.sql.keyed import KEYED
from gateway.store.sql.locks import TransactionLocks

_P = schema.partners


def with_partner(table: Table) -> Select[Any]:
    """Every column of a partner's `table`, with the partner's name (as `partner`) in place of its id: the fields
    of the table's record, by name."""
    columns = [column for column in table.c if column.name != "partner_id"]
    return select(*columns, _P.c.name.label("partner")).select_from(table.join(_P, _P.c.id == table.c.partner_id))


class KnownPartners:
    """Partner names and ids the store has met, kept for the store's life (a partner's id never changes)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def id_of(self, connection: Connection, name: str) -> int:
        """The store id of partner `name`: StoreError when it is not registered."""
        cached = self.ids.get(name)
        if cached is not None:
            return cached
        found = connection.execute(select(_P.c.id).where(_P.c.name == name)).scalar_one_or_none()
        if found is None:
            raise StoreError(f"partner {name!r} is not registered in the store")
        self.ids[name] = found
        return int(found)

    def name_of(self, connection: Connection, partner_id: int) -> str:
        """The name of the partner with id `partner_id`."""
        for name, known in self.ids.items():
            if known == partner_id:
                return name
        name_found: str = connection.execute(select(_P.c.name).where(_P.c.id == partner_id)).scalar_one()
        return name_found


@dataclass(frozen=True, slots=True)
class Shared:
    """What the repositories of one transaction share: its connection, the database's dialect, its `locks` (what
    the transaction holds), the store's known partners, and `run_id`, the inbound item being handled, if any,
    kept with what it queues."""

    connection: Connection
    dialect: Dialect
    locks: TransactionLocks
    partners: KnownPartners
    run_id: str | None


class SqlRepository:
    """One repository of a unit of work, on its SQLAlchemy connection inside one database transaction."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        # read by every statement: attributes of the repository's own
        self.connection = shared.connection
        self.dialect = shared.dialect
        self.locks = shared.locks

    def _run_many(
        self, name: str, rows: Sequence[tuple[Any, ...]], builders: statements.Builders = statements.BULK
    ) -> None:
        """Run statement `name` (statements.BULK, or `builders`) once per row, in one batch, on the driver's own
        cursor: a uniqueness rule broken is the store's Conflict, any other error the driver's (translated at the
        store's edge)."""
        if not rows:
            return
        compiled = statements.compiled(self.dialect, name, builders)
        params = compiled.params(rows)
        cursor = self.connection.connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(compiled.sql, params[0])
            else:
                cursor.executemany(compiled.sql, params)
        except self.dialect.integrity_error as exc:
            raise Conflict(primary_message(exc)) from None
        finally:
            cursor.close()

    def _fetch(self, name: str, *values: Any) -> list[Any]:
        """The rows (plain tuples) of the keyed read `name` (keyed.KEYED) with these parameters, on the driver's own
        cursor."""
        compiled = statements.compiled(self.dialect, name, KEYED)
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.params([values])[0])
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _write(self, name: str, *values: Any) -> None:
        """Run the keyed write `name` (keyed.KEYED) with these parameters (see _run_many)."""
        self._run_many(name, [values], KEYED)

    def _driver(self, name: str, params: dict[str, Any]) -> tuple[list[Any], int]:
        """Run statement `name` (statements.BULK) on the driver's own cursor: its rows, as the driver's tuples, and
        its row count. A delivery pass runs a few statements per batch: SQLAlchemy's result machinery cost more
        than the smaller ones, and row objects more than a claim's rows."""
        compiled = statements.compiled(self.dialect, name)
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.params([tuple(params[k] for k in compiled.keys)])[0])
            rows = list(cursor.fetchall()) if cursor.description is not None else []
            return rows, int(cursor.rowcount)
        finally:
            cursor.close()

    def _rows(self, name: str, params: dict[str, Any]) -> list[Any]:
        """The rows of statement `name`, as the driver's tuples (see _driver)."""
        return self._driver(name, params)[0]

    def _count(self, name: str, params: dict[str, Any]) -> int:
        """The rows statement `name` changed (see _driver)."""
        return self._driver(name, params)[1]

    def _run_one(self, name: str, params: dict[str, Any]) -> Any:
        """Run statement `name` (statements.BULK) with these parameters; its result."""
        compiled = statements.compiled(self.dialect, name)
        return self.connection.exec_driver_sql(
            compiled.sql, compiled.params([tuple(params[k] for k in compiled.keys)])[0]
        )
