"""Order lines as requested: an order holds at most one line per SKU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain.errors import InvalidOrder
from gateway.domain.identifiers import channel_problem


@dataclass(frozen=True)
class RequestedLine:
    """One line of an order to place, optionally in an assembly's collection."""

    sku: str
    quantity: int
    assembly: str | None = None
    collection: str | None = None


def merge_lines(order_id: str, lines: Sequence[RequestedLine]) -> dict[str, RequestedLine]:
    """Merge lines of the same SKU given together into one line per SKU, in first-seen order.

    Refuses an order with no lines, a quantity below 1, or one SKU given for two different channels.
    """
    if not lines:
        raise InvalidOrder(order_id, "an order needs at least one line")
    merged: dict[str, RequestedLine] = {}
    for line in lines:
        why = channel_problem(line.assembly, line.collection)
        if why is not None:
            raise InvalidOrder(order_id, f"SKU {line.sku}: {why}")
        if line.quantity < 1:
            raise InvalidOrder(order_id, f"SKU {line.sku}: quantity must be at least 1, got {line.quantity}")
        held = merged.get(line.sku)
        if held is None:
            merged[line.sku] = line
            continue
        if (held.assembly, held.collection) != (line.assembly, line.collection):
            raise InvalidOrder(order_id, f"SKU {line.sku} is given for two different assemblies or collections")
        merged[line.sku] = RequestedLine(line.sku, held.quantity + line.quantity, line.assembly, line.collection)
    return merged
