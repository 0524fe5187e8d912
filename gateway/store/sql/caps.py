"""The caps repository on SQL: cap settings by (sku, assembly, collection), and the channels they govern."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from gateway.domain.caps import ALL_COLLECTIONS, AssemblyCaps
from gateway.domain.instant import Instant
from gateway.store import schema
from gateway.store.records import CapRow, ChannelRecord
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import chunks

_K = schema.caps
_H = schema.channels


class SqlCaps(SqlRepository):
    """The port's CapRepository."""

    def get(self, partner_id: int, skus: Sequence[str]) -> dict[tuple[str, str], AssemblyCaps]:
        """Read by chunks of SKUs: a "*" row is the assembly's default, any other a collection's override."""
        found: dict[tuple[str, str], AssemblyCaps] = {}
        for chunk in chunks(sorted(set(skus))):
            query = select(_K.c.sku, _K.c.assembly, _K.c.collection, _K.c.max_units).where(
                _K.c.partner_id == partner_id, _K.c.sku.in_(chunk)
            )
            for row in self.connection.execute(query):
                settings = found.setdefault((row.sku, row.assembly), AssemblyCaps())
                if row.collection == ALL_COLLECTIONS:
                    settings.default = row.max_units
                else:
                    settings.overrides[row.collection] = row.max_units
        return found

    def put(self, partner_id: int, sku: str, assembly: str, settings: AssemblyCaps, now: Instant) -> None:
        """The SKU's rows in the assembly are deleted, then one is inserted per override, and a "*" row for the
        default."""
        self.connection.execute(
            delete(_K).where(_K.c.partner_id == partner_id, _K.c.sku == sku, _K.c.assembly == assembly)
        )
        rows = list(settings.overrides.items())
        if settings.default is not None:
            rows.append((ALL_COLLECTIONS, settings.default))
        if rows:
            self.connection.execute(
                _K.insert(),
                [
                    {
                        "partner_id": partner_id,
                        "sku": sku,
                        "assembly": assembly,
                        "collection": collection,
                        "max_units": limit,
                        "updated_at": now,
                    }
                    for collection, limit in rows
                ],
            )

    def rows(self, partner_id: int, sku: str | None = None, assembly: str | None = None) -> list[CapRow]:
        """Stored cap settings in (sku, assembly, collection) order; "*" sorts before collection names."""
        query = select(_K.c.sku, _K.c.assembly, _K.c.collection, _K.c.max_units).where(_K.c.partner_id == partner_id)
        if sku is not None:
            query = query.where(_K.c.sku == sku)
        if assembly is not None:
            query = query.where(_K.c.assembly == assembly)
        rows = self.connection.execute(query.order_by(_K.c.sku, _K.c.assembly, _K.c.collection))
        return [CapRow(r.sku, r.assembly, r.collection, r.max_units) for r in rows]

    def holds_channels(self, partner_id: int) -> bool:
        """Whether the partner has any channel (a keyed read: asked by every command that moves an ATS)."""
        return bool(self._fetch("holds_channels", partner_id))

    def channels(self, partner_id: int, skus: Sequence[str]) -> list[ChannelRecord]:
        """The channels of the given SKUs, in key order."""
        found: list[ChannelRecord] = []
        for chunk in chunks(sorted(set(skus))):
            query = (
                select(_H.c.sku, _H.c.assembly, _H.c.collection, _H.c.ordered, _H.c.published)
                .where(_H.c.partner_id == partner_id, _H.c.sku.in_(chunk))
                .order_by(_H.c.sku, _H.c.assembly, _H.c.collection)
            )
            found.extend(ChannelRecord(*row) for row in self.connection.execute(query))
        return found

    def put_channels(self, partner_id: int, records: Sequence[ChannelRecord]) -> None:
        """One upsert on the channel's key (partner, SKU, assembly, collection)."""
        if not records:
            return
        statement = self.dialect.upsert(_H, ("partner_id", "sku", "assembly", "collection"), ("ordered", "published"))
        self.connection.execute(
            statement,
            [
                {
                    "partner_id": partner_id,
                    "sku": r.sku,
                    "assembly": r.assembly,
                    "collection": r.collection,
                    "ordered": r.ordered,
                    "published": r.published,
                }
                for r in records
            ],
        )
