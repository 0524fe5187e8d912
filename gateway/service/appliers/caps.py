"""Caps: a file of cap settings, applied in file order."""

from __future__ import annotations

from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.service.appliers.base import Applier, Applying, counting
from gateway.service.items import Rejected


class Caps(Applier[None]):
    """Caps come as flat files only."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Set each cap; a malformed row refuses the file whole."""
        # In file order: a "*" row then a collection row give the collection its own setting under the default.
        rows = list(counting(formats.read_caps(table, item.partner.zone), item.progress))
        if table.problems:
            raise Rejected(table.problems)
        for row in rows:
            item.engine.set_cap(row.sku, row.assembly, row.collection, row.limit)
            item.result.counts.applied += 1
