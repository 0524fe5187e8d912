"""The supply repository on SQL: each SKU's dated receipts, replaced whole by a snapshot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import delete, insert, select

from gateway.domain.atp import Receipts
from gateway.store import schema
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import chunks

_R = schema.supply_receipts


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
        found: dict[str, list[tuple[date, int]]] = defaultdict(list)
        for chunk in chunks(sorted(set(skus))):
            query = (
                select(_R.c.sku, _R.c.available_from, _R.c.units)
                .where(_R.c.partner_id == partner_id, _R.c.sku.in_(chunk))
                .order_by(_R.c.sku, _R.c.available_from)
            )
            for sku, day, units in self.connection.execute(query):
                found[sku].append((day, int(units)))
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
