"""Publish: deliver the outbox to partners, at least once, each request under an Idempotency-Key.

A delivery pass claims due messages in batches (one kind per batch), sends each batch through the partner's
route (its HTTP API, or an export file for order exports) and settles it in the store: delivered on a 2xx, due
again later after timeouts, connection errors, 5xx and 429 (exponential backoff with jitter, capped, and never
sooner than a Retry-After), dead letter on any other 4xx or past the attempts or age allowed. A batch sent
before without a known outcome is sent again with the same key. A per-partner circuit breaker stops a pass
from hammering a partner that keeps failing, and lets one batch probe it after a pause.

The modules, each apart: `routes` (where each kind goes, and the senders), `retry` (the policy), `attempts`
(one batch's attempts within a pass), `breaker` (pure), `publisher` (the delivery loop). The names other
modules use are re-exported here.
"""

from __future__ import annotations

from gateway.service.publish.breaker import Breaker
from gateway.service.publish.publisher import (
    MAX_ERROR,
    Clock,
    DeliveryReport,
    Publisher,
    Sleep,
    release_claims,
)
from gateway.service.publish.routes import (
    FILE_PREFIXES,
    Api,
    ApiSender,
    FileExportSender,
    Outbound,
    Sender,
    export_name,
    routes,
)

__all__ = [
    "FILE_PREFIXES",
    "MAX_ERROR",
    "Api",
    "ApiSender",
    "Breaker",
    "Clock",
    "DeliveryReport",
    "FileExportSender",
    "Outbound",
    "Publisher",
    "Sender",
    "Sleep",
    "export_name",
    "release_claims",
    "routes",
]
