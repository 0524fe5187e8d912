"""What the gateway owes a partner: the kinds of outbox message and the states a message goes through.

Pure words, kept here so that every layer (the store that queues and settles them, the services that route and
deliver them, the settings that name them, the CLI and the API that show them) names them from one place. The
values are what the store holds, what the configuration says and what is printed: they never change.
"""

from __future__ import annotations

from enum import StrEnum


class MessageKind(StrEnum):
    """What one outbox message carries (the configuration's `api.deliver` and `export.kinds` name them)."""

    ATS = "ats"  # a SKU's published ATS, keyed by SKU: a newer value replaces an undelivered older one
    CHANNEL_ATS = "channel_ats"  # a channel's ATS (SKU, assembly, collection), replaced the same way
    ORDER_CLOSED = "order_closed"  # an order that reached closed, queued once
    ORDER_EXPORT = "order_export"  # an order that reached invoicing (advanced mode's export), queued once


class OutboxState(StrEnum):
    """Where one outbox message is in its delivery."""

    PENDING = "pending"  # waiting: due now or later, perhaps claimed by a delivery right now
    DELIVERED = "delivered"  # taken by the partner (a 2xx, or its file written)
    DEAD = "dead"  # given up on (refused, or past the attempts or the age allowed) until an operator revives it
    SUPERSEDED = "superseded"  # a dead value not revived: a newer value of its key was queued since
