"""Placing orders (under an Idempotency-Key), moving them and recording their confirmations; reading one order
whole, and listing a partner's orders by status."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Query
from fastapi.responses import Response

from gateway import bootstrap, views
from gateway.domain import days, durations, identifiers
from gateway.domain.errors import Refusal, UnknownOrder
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.platform_api.problems import PROBLEM, malformed, refusal
from gateway.platform_api.routes.common import REFUSED, Gateway, Name, Partner, changes_out, moment, partner_router, run
from gateway.platform_api.schemas import CommandOut, ConfirmationIn, OrderIn, OrderOut, OrderSummaryOut, StatusIn
from gateway.platform_api.threads import run_command
from gateway.service import order_reads, orders
from gateway.service.snapshots import AtsChange

router = partner_router()


@router.post("/orders", status_code=201, response_model=CommandOut, responses=REFUSED)
async def place(
    app: Gateway,
    partner: Partner,
    order: OrderIn,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> Response:
    """Place an order: all lines or none. The same Idempotency-Key with the same body answers as the first time;
    with another body, 409."""
    return await place_order(app, partner, order, idempotency_key)


async def place_order(app: bootstrap.App, partner: str, order: OrderIn, key: str) -> Response:
    """The answer to placing `order` for `partner` under the Idempotency-Key `key` (201, or the key's first answer
    again); a refusal raised as problem details. The route's, and the fast path's (gateway.platform_api.fast)."""
    why = identifiers.channel_problem(order.assembly, order.collection)
    if why is not None:
        raise malformed(why)
    wanted_on = None
    if order.wanted_on is not None:
        try:
            wanted_on = days.parse_day(order.wanted_on, app.settings.partner(partner).zone)
        except ValueError as exc:
            raise malformed(f"wanted_on: {exc}") from None
    # the body as the model reads it (the same request written differently is the same request); without
    # wanted_on as before it existed, so a key kept by an earlier release answers the same request the same way
    unset = {"wanted_on"} if order.wanted_on is None else None
    request = orders.OrderRequest(
        partner=partner,
        order_id=order.order_id,
        lines=[RequestedLine(line.sku, line.quantity, order.assembly, order.collection) for line in order.lines],
        key=key,
        # the body as the model reads it: the same request written differently is the same request
        digest=hashlib.sha256(order.model_dump_json(exclude=unset).encode()).hexdigest(),
        wanted_on=wanted_on,
    )
    answers = _Answers(partner, order.order_id)
    wait = app.settings.api.write_wait
    outcome = await run_command(app.commands, wait, lambda commands: orders.place(commands, request, answers))
    match outcome:
        case orders.Placed(_, answer):  # the answer kept for the key: a replay is byte for byte this one
            return Response(answer.body, status_code=answer.status, media_type="application/json")
        case orders.Refused(refused):
            raise refusal(refused)
        case orders.Replayed(answer):
            media = PROBLEM if answer.status >= 400 else "application/json"
            return Response(answer.body, status_code=answer.status, media_type=media)


@dataclass(frozen=True)
class _Answers:
    """The answers to one placement, as kept for its Idempotency-Key."""

    partner: str
    order_id: str

    def body(self, changes: list[AtsChange]) -> CommandOut:
        """What the placement did."""
        return CommandOut(partner=self.partner, order_id=self.order_id, ats_changes=changes_out(changes))

    def placed(self, changes: list[AtsChange]) -> orders.Answer:
        """201 with what the placement did."""
        return orders.Answer(201, self.body(changes).model_dump_json())

    def refused(self, refused: Refusal) -> orders.Answer:
        """The refusal's problem details."""
        problem = refusal(refused)
        body = bytes(problem.response().body).decode()  # kept as sent: a replay is byte for byte the first answer
        return orders.Answer(problem.status, body)


@router.post("/orders/{order_id:path}/status", response_model=CommandOut, responses=REFUSED)
async def set_status(app: Gateway, partner: Partner, order_id: Name, move: StatusIn) -> CommandOut:
    """Move an order (all its lines) to a status: forward only, never out of closed or cancelled."""
    changes = await run(app, lambda commands: commands.set_status(partner, order_id, move.status))
    return CommandOut(partner=partner, order_id=order_id, ats_changes=changes)


@router.post("/orders/{order_id:path}/confirmations", response_model=CommandOut, responses=REFUSED)
async def confirm(app: Gateway, partner: Partner, order_id: Name, confirmation: ConfirmationIn) -> CommandOut:
    """Record the partner's confirmed quantity for one line of an order."""
    at = moment(app, confirmation.confirmed_at, partner, "confirmed_at")
    assert at is not None
    sku, quantity = confirmation.sku, confirmation.confirmed_quantity
    changes = await run(app, lambda commands: commands.confirm(partner, order_id, sku, quantity, at))
    return CommandOut(partner=partner, order_id=order_id, ats_changes=changes)


@router.get("/orders", response_model=list[OrderSummaryOut])
def list_orders(
    app: Gateway,
    partner: Partner,
    status: Annotated[list[OrderStatus] | None, Query(max_length=5)] = None,
    allocating: bool = False,
    older_than: Annotated[str | None, Query(max_length=40, description="e.g. 90m, 2h, 3d, 1w")] = None,
    limit: Annotated[int, Query(ge=1, le=order_reads.MAX_LISTED)] = 100,
) -> list[OrderSummaryOut]:
    """The partner's orders, those longest in their status first: in one of `status` (repeatable; default any),
    with `allocating` only those with a line that holds stock under the stock mode, with `older_than` only those
    in their status for longer than that; at most `limit`."""
    try:
        age = None if older_than is None else durations.parse_duration(older_than)
    except ValueError as exc:
        raise malformed(f"query.older_than: {exc}") from None
    wanted = order_reads.OrderFilter(statuses=status or (), allocating=allocating, older_than=age, limit=limit)
    found = order_reads.orders(app.store, partner, app.settings.partner(partner).policy, wanted, app.clock())
    return [OrderSummaryOut.model_validate(views.order_summary(v)) for v in found.orders]


@router.get("/orders/{order_id:path}", response_model=OrderOut)
def read_order(app: Gateway, partner: Partner, order_id: Name) -> OrderOut:
    """One order whole: its lines and whether (and why) each allocates, each status it reached with when and what
    moved it, and the confirmations received (404 for an order the gateway does not hold)."""
    try:
        found = order_reads.order(app.store, partner, app.settings.partner(partner).policy, order_id)
    except UnknownOrder as unknown:
        raise refusal(unknown) from None
    return OrderOut.model_validate(views.order(found))
