"""The supply repository on SQL: each SKU's dated receipts, replaced whole by a snapshot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, insert, select

from gateway.domain.atp import Receipts
from gateway.store import schema
from gateway.store.sql.keyed import KEYED
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import chunks

_R = schema.supply_receipts
_D = schema.dated_demand
DatedRows = tuple[tuple[date, int], ...]


class SqlSupply(SqlRepository):
    """The port's SupplyRepository."""

    def holds(self, partner_id: int) -> bool:
        """One row read, at most."""
        query = select(_R.c.sku).where(_R.c.partner_id == partner_id).limit(1)
        return self.connection.execute(query).first() is not None

    def skus(self, partner_id: int) -> set[str]:
        """One read of the partner's receipts' SKUs."""
        query = select(_R.c.sku).where(_R.c.partner_id == partner_id).distinct()
        return set(self.connection.execute(query).scalars())

    def receipts(self, partner_id: int, skus: Sequence[str]) -> dict[str, Receipts]:
        """The SKUs' receipts, read a chunk of SKUs at a time."""
        return self._by_date(_R, _R.c.available_from, _R.c.units, partner_id, skus)

    def _by_date(self, table: Any, day: Any, units: Any, partner_id: int, skus: Sequence[str]) -> dict[str, DatedRows]:
        """(date, units) rows of `table` for the SKUs that have any, each SKU's in date order, a chunk at a time."""
        found: dict[str, list[tuple[date, int]]] = defaultdict(list)
        for chunk in chunks(sorted(set(skus))):
            query = (
                select(table.c.sku, day, units)
                .where(table.c.partner_id == partner_id, table.c.sku.in_(chunk))
                .order_by(table.c.sku, day)
            )
            for sku, on, count in self.connection.execute(query):
                found[sku].append((on, int(count)))
        return {sku: tuple(rows) for sku, rows in found.items()}

    def replace(self, partner_id: int, schedules: Mapping[str, Receipts]) -> None:
        """Delete the SKUs' receipts, then insert the new ones (a few per SKU: plain statements suffice)."""
        skus = sorted(schedules)
        for chunk in chunks(skus):
            self.connection.execute(delete(_R).where(_R.c.partner_id == partner_id, _R.c.sku.in_(chunk)))
        rows = [
            {"partner_id": partner_id, "sku": sku, "available_from": day, "units": units}
            for sku in skus
            for day, units in schedules[sku]
        ]
        if rows:
            self.connection.execute(insert(_R), rows)

    # dated demand: the units the dated lines of open orders allocate, per SKU and date

    def dated(self, partner_id: int, sku: str) -> tuple[DatedRows, DatedRows]:
        """The SKU's receipts and its dated demand, each in date order: two keyed reads on the driver's cursor (a
        placement asks them for each SKU it places)."""
        receipts = sorted((_day(day), int(units)) for day, units in self._fetch("receipts_of", partner_id, sku))
        demand = sorted((_day(day), int(units)) for day, units in self._fetch("demand_of", partner_id, sku))
        return tuple(receipts), tuple(demand)

    def demand(self, partner_id: int, skus: Sequence[str]) -> dict[str, DatedRows]:
        """The dated demand of the given SKUs that have any, each in date order."""
        return self._by_date(_D, _D.c.demand_on, _D.c.units, partner_id, skus)

    def move_demand(self, partner_id: int, changes: Mapping[tuple[str, date], int]) -> None:
        """Add units to each (SKU, date)'s dated demand (negative: a line gives them back); a date left at 0 keeps
        no row, so a SKU without dated demand has none. Keyed statements on the driver's cursor, a date as ISO text
        (see orders.add): an upsert per (SKU, date), and where units were given back, the row deleted if now 0."""
        moved = [(partner_id, sku, day.isoformat(), units) for (sku, day), units in sorted(changes.items()) if units]
        self._run_many("add_demand", moved, KEYED)
        self._run_many("drop_empty_demand", [row[:3] for row in moved if row[3] < 0], KEYED)

    def replace_demand(self, partner_id: int, rows: Iterable[tuple[str, date, int]]) -> None:
        """Make the partner's dated demand exactly `rows` (SKU, date, units): after a change of stock mode."""
        self.connection.execute(delete(_D).where(_D.c.partner_id == partner_id))
        totals: dict[tuple[str, date], int] = defaultdict(int)
        for sku, day, units in rows:
            totals[(sku, day)] += units
        kept = [
            {"partner_id": partner_id, "sku": sku, "demand_on": day, "units": units}
            for (sku, day), units in sorted(totals.items())
            if units
        ]
        if kept:
            self.connection.execute(insert(_D), kept)


def _day(stored: date | str) -> date:
    """A stored date as the driver gives it: PostgreSQL's driver a date, SQLite's the ISO text SQLAlchemy wrote."""
    return date.fromisoformat(stored) if isinstance(stored, str) else stored
