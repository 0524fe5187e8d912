"""The collections repository on SQL: each dated collection's window and pickup date, one row per collection."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, select

from gateway.domain.days import CollectionDates
from gateway.domain.instant import Instant
from gateway.store import schema
from gateway.store.records import CollectionRow
from gateway.store.sql.repository import SqlRepository

_D = schema.collection_dates


class SqlCollections(SqlRepository):
    """The port's CollectionRepository."""

    def get(self, partner_id: int, assembly: str, collection: str) -> CollectionDates | None:
        """One keyed read on the driver's cursor (asked by every placement in a collection: a Core query cost a
        placement in a collection about 7% more)."""
        found = self._fetch("collection_dates", partner_id, assembly, collection)
        if not found:
            return None
        opens_at, closes_at, pickup_on = found[0]
        return CollectionDates(opens_at, closes_at, _day(pickup_on))

    def put(self, partner_id: int, assembly: str, collection: str, dates: CollectionDates, now: Instant) -> None:
        """Delete, then insert unless every date is None: a collection without dates keeps no row."""
        self.connection.execute(
            delete(_D).where(_D.c.partner_id == partner_id, _D.c.assembly == assembly, _D.c.collection == collection)
        )
        if dates == CollectionDates():
            return
        self.connection.execute(
            _D.insert(),
            {
                "partner_id": partner_id,
                "assembly": assembly,
                "collection": collection,
                "opens_at": dates.opens_at,
                "closes_at": dates.closes_at,
                "pickup_on": dates.pickup_on,
                "updated_at": now,
            },
        )

    def rows(self, partner_id: int, assembly: str | None = None) -> list[CollectionRow]:
        """In (assembly, collection) order."""
        query = select(_D).where(_D.c.partner_id == partner_id)
        if assembly is not None:
            query = query.where(_D.c.assembly == assembly)
        found = self.connection.execute(query.order_by(_D.c.assembly, _D.c.collection))
        return [
            CollectionRow(r.assembly, r.collection, CollectionDates(r.opens_at, r.closes_at, r.pickup_on), r.updated_at)
            for r in found
        ]


def _day(stored: date | str | None) -> date | None:
    """A stored date as the driver gives it: PostgreSQL's driver a date, SQLite's the ISO text SQLAlchemy wrote."""
    return date.fromisoformat(stored) if isinstance(stored, str) else stored
