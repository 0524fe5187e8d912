"""One applier per kind of inbound item, and the table from kind to applier that files and feed pages share.

A kind is a flat file's (`formats.rows.Kind`) or a feed's (`formats.pages.Feed`); stock and acknowledgements
are both (the same word), and a confirmations file is applied as the confirmations of an acknowledgements page
are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.formats.rows import Kind
from gateway.service.appliers.acknowledgements import Acknowledgements, Confirmations
from gateway.service.appliers.base import Applier, Applying
from gateway.service.appliers.caps import Caps
from gateway.service.appliers.collections import Collections
from gateway.service.appliers.orders import Orders
from gateway.service.appliers.stock import Stock

__all__ = ["APPLIERS", "Applier", "Applying", "applier"]

APPLIERS: Mapping[str, Applier[Any]] = {
    Kind.STOCK: Stock(),  # files and pages alike (Feed.STOCK is the same word)
    Kind.ORDERS: Orders(),
    Kind.CONFIRMATIONS: Confirmations(),
    Kind.CAPS: Caps(),
    Kind.ACKNOWLEDGEMENTS: Acknowledgements(),  # status-only files, and pages (Feed.ACKNOWLEDGEMENTS is the same word)
    Kind.COLLECTIONS: Collections(),
}


def applier(kind: str) -> Applier[Any]:
    """The applier of a file's kind or a feed's."""
    return APPLIERS[kind]
