"""Acknowledgements: the partner's status moves and confirmations of order lines.

An acknowledgements file brings status moves alone (one row per order), a confirmations file confirmations
alone, an acknowledgements page both, in page order; each is applied alone, and one the rules refuse (an
unknown order, an illegal move) is counted and listed; so is a confirmation stamped more than the partner's
`max_clock_skew` ahead of the gateway's clock (`future_timestamp`) or above the ordered quantity
(`confirmed_above_ordered`, unless the partner allows it).
"""

from __future__ import annotations

from datetime import tzinfo

from gateway.formats import pages
from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problems
from gateway.formats.rows import AcknowledgementRow, ConfirmationRow
from gateway.service.appliers.base import Applier, Applying, counting, one_by_one
from gateway.service.items import Rejected


class Confirmations(Applier[None]):
    """Confirmations files, applied as the confirmations of an acknowledgements page are."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Confirm each line of the file; a malformed row refuses the file whole."""
        rows = list(counting(formats.read_confirmations(table, item.partner.zone), item.progress))
        if table.problems:
            raise Rejected(table.problems)
        one_by_one(rows, lambda row: _acknowledge(item, row), item.result)


class Acknowledgements(Applier[pages.Acknowledgements]):
    """Acknowledgements files (status moves alone) and pages (status moves and confirmations): one word, one
    applier, so that a file and a page of the same acknowledgements do the same."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Move each order of the file to its status, as a page's status item does; a malformed row, or an order
        given twice, refuses the file whole."""
        rows = list(counting(formats.read_acknowledgements(table, item.partner.zone), item.progress))
        if table.problems:
            raise Rejected(table.problems)
        one_by_one(rows, lambda row: _acknowledge(item, row), item.result)

    def read_page(self, page: pages.Page, zone: tzinfo, problems: Problems) -> pages.Acknowledgements:
        """The page's status moves and confirmations, in page order."""
        return pages.acknowledgement_items(page, zone, problems)

    def apply_page(self, item: Applying, items: pages.Acknowledgements) -> None:
        """Status moves and confirmations in page order, each refused alone when the rules refuse it."""
        one_by_one(items.items, lambda ack: _acknowledge(item, ack), item.result, unit="item")


def _acknowledge(item: Applying, ack: pages.StatusItem | AcknowledgementRow | ConfirmationRow) -> object:
    engine = item.engine
    # A status move carries no instant into the engine: the gateway stamps it with its own clock, whether it
    # came as a page's item or as a file's row (whose `updated_at`, when given, was checked and is not used).
    if isinstance(ack, pages.StatusItem | AcknowledgementRow):
        return engine.set_status(ack.order_id, ack.status)
    item.check_not_future("confirmed_at", ack.confirmed_at)
    return engine.confirm(
        ack.order_id,
        ack.sku,
        ack.confirmed_quantity,
        ack.confirmed_at,
        allow_above=item.partner.allow_over_confirmation,
    )
