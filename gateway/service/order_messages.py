"""What an order's move tells the partner: an order export when it reaches invoicing, a closed-order message when it
closes (one JSON body each, keyed by the order id); nothing for the other statuses."""

from __future__ import annotations

import json

from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind
from gateway.domain.status import OrderStatus
from gateway.store.port import OrderRecord


def message(order: OrderRecord, status: OrderStatus, now: Instant) -> tuple[MessageKind, str] | None:
    """The kind and JSON payload of the message the order's move to `status` queues, if any."""
    reached_invoicing = status == OrderStatus.INVOICING
    if not (reached_invoicing or status == OrderStatus.CLOSED):
        return None
    kind = MessageKind.ORDER_EXPORT if reached_invoicing else MessageKind.ORDER_CLOSED
    body = {
        "order_id": order.order_id,
        "status": status.value,
        "updated_at": instant.to_iso(now),
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "confirmed_quantity": line.confirmed_quantity,
                "assembly": line.assembly,
                "collection": line.collection,
            }
            for line in order.lines
        ],
    }
    return kind, json.dumps(body, sort_keys=True)
