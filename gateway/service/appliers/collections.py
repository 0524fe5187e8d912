"""Collections: a file of collections' dates (when each takes orders, its pickup date), applied in file order."""

from __future__ import annotations

from gateway.domain.days import CollectionDates
from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.formats.rows import CollectionRowIn
from gateway.service import collections
from gateway.service.appliers.base import Applier, Applying, counting, one_by_one
from gateway.service.items import Rejected


class Collections(Applier[None]):
    """Collections' dates come as flat files only."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Set each collection's dates; a malformed row refuses the file whole, a window closing at or before it
        opens (`collection_window_empty`) is refused alone."""
        rows = list(counting(formats.read_collections(table, item.partner.zone), item.progress))
        if table.problems:
            raise Rejected(table.problems)
        engine = item.engine

        def apply(row: CollectionRowIn) -> None:
            dates = CollectionDates(row.opens_at, row.closes_at, row.pickup_on)
            collections.set_dates(engine.tx, engine.partner_id, row.assembly, row.collection, dates, engine.now)

        one_by_one(rows, apply, item.result)
