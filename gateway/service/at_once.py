"""A placement in one round trip, where the store can (PostgreSQL): the rules decide what each line allocates, the
store places the order in one statement (Store.place_at_once), and anything it cannot decide alone goes to the
engine's general path.

Only orders whose lines name no channel go this way (a channel's cap is checked by the engine). The store answers
`busy` when a lock is held elsewhere, and `general` for a SKU with channels or without stock: then nothing was
written, and the caller runs the engine's path, which waits for the locks and decides. A refusal (`exists`,
`short`) is the same Refusal the engine raises, logged the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway import logs
from gateway.domain import allocation as rules
from gateway.domain.allocation import Line
from gateway.domain.errors import InsufficientStock, OrderExists, Refusal, Shortage
from gateway.domain.modes import Policy
from gateway.domain.orders import RequestedLine, merge_lines
from gateway.domain.status import OrderStatus
from gateway.service.snapshots import AtsChange
from gateway.store.port import LineAtOnce, PlaceAtOnce, Store
from gateway.store.retry import retried

log = logs.get(__name__)

EVENT = "order_placed"
PENDING = OrderStatus.PENDING


@dataclass(frozen=True)
class Decided:
    """The store decided the placement alone: placed (the ATS values it moved), or the key's earlier `answer`
    (digest, status, body) when an Idempotency-Key answered already."""

    changes: list[AtsChange]
    answer: tuple[str, int, str] | None = None
    body: str | None = None  # placed under an Idempotency-Key: the 201's body, as kept for the key


def request(
    partner: str,
    order_id: str,
    lines: Sequence[RequestedLine],
    *,
    policy: Policy,
    now: int,
    command: str | None,
    key: str | None = None,
    digest: str | None = None,
) -> PlaceAtOnce | None:
    """The placement as the store takes it, or None when it is for the engine alone: a line naming a channel, or
    lines the rules refuse (the engine refuses them, after its own checks, in its own words)."""
    try:
        merged = merge_lines(order_id, lines)
    except Refusal:
        return None
    if any(line.assembly is not None or line.collection is not None for line in merged.values()):
        return None
    units = {
        sku: rules.line_allocation(policy, Line(order_id, sku, line.quantity, PENDING), None).units
        for sku, line in merged.items()
    }
    at_once = tuple(LineAtOnce(sku, line.quantity, units[sku]) for sku, line in merged.items())
    return PlaceAtOnce(partner, order_id, at_once, now, command, key, digest)


def place(store: Store, placement: PlaceAtOnce, *, retries: int) -> Decided | None:
    """Place in one statement: Decided, a Refusal raised (logged `command_refused`), or None when the engine's path
    is to place the order (nothing was written)."""
    bound = log.bind(partner=placement.partner, order_id=placement.order_id)
    done = retried(
        lambda: store.place_at_once(placement),
        what=EVENT,
        retries=retries,
        context={"partner": placement.partner, "order_id": placement.order_id},
    )
    if done is None or done.outcome in ("busy", "general"):
        return None
    if done.outcome == "replay":
        return Decided([], done.answer)
    refusal: Refusal | None = None
    if done.outcome == "exists":
        refusal = OrderExists(placement.order_id)
    elif done.outcome == "short":
        shortages = tuple(Shortage(sku, asked, ats) for sku, asked, ats in sorted(done.shortages))
        refusal = InsufficientStock(placement.order_id, shortages)
    if refusal is not None:
        bound.warning("command_refused", command=EVENT, code=refusal.code, reason=str(refusal))
        raise refusal
    return Decided([AtsChange(sku, before, after) for sku, before, after in done.changes], body=done.body)
