"""Acknowledgements: the partner's status moves and confirmations of order lines.

A confirmations file brings confirmations alone, an acknowledgements page both, in page order; each is applied
alone, and one the rules refuse is counted and listed: a confirmation stamped more than the partner's
`max_clock_skew` ahead of the gateway's clock (`future_timestamp`) or above the ordered quantity
(`confirmed_above_ordered`, unless the partner allows it) among them.
"""

from __future__ import annotations

from datetime import tzinfo

from gateway.formats import pages
from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problems
from gateway.formats.rows import ConfirmationRow
from gateway.service.appliers.base import Applier, Applying, counting, one_by_one
from gateway.service.items import Rejected


class Acknowledgements(Applier[pages.Acknowledgements]):
    """Confirmations files and acknowledgements pages."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Confirm each line of the file; a malformed row refuses the file whole."""
        rows = list(counting(formats.read_confirmations(table, item.partner.zone), item.progress))
        if table.problems:
            raise Rejected(table.problems)
        one_by_one(rows, lambda row: _acknowledge(item, row), item.result)

    def read_page(self, page: pages.Page, zone: tzinfo, problems: Problems) -> pages.Acknowledgements:
        """The page's status moves and confirmations, in page order."""
        return pages.acknowledgement_items(page, zone, problems)

    def apply_page(self, item: Applying, items: pages.Acknowledgements) -> None:
        """Status moves and confirmations in page order, each refused alone when the rules refuse it."""
        one_by_one(items.items, lambda ack: _acknowledge(item, ack), item.result, unit="item")


def _acknowledge(item: Applying, ack: pages.StatusItem | ConfirmationRow) -> object:
    engine = item.engine
    if isinstance(ack, pages.StatusItem):
        return engine.set_status(ack.order_id, ack.status)
    item.check_not_future("confirmed_at", ack.confirmed_at)
    return engine.confirm(
        ack.order_id,
        ack.sku,
        ack.confirmed_quantity,
        ack.confirmed_at,
        allow_above=item.partner.allow_over_confirmation,
    )
