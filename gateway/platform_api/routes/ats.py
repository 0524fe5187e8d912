"""Reading ATS: per SKU or per collection, and explained line by line."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from gateway.domain import identifiers, instant
from gateway.platform_api.problems import malformed
from gateway.platform_api.routes.common import Gateway, Name, Partner, partner_router
from gateway.platform_api.schemas import AtsOut, ChannelOut, Identifier
from gateway.service import reads

router = partner_router()


@router.get("/ats", response_model=list[AtsOut] | list[ChannelOut])
def read_ats(
    app: Gateway,
    partner: Partner,
    sku: Annotated[list[Identifier] | None, Query(max_length=1000)] = None,
    assembly: Annotated[Identifier | None, Query()] = None,
    collection: Annotated[Identifier | None, Query()] = None,
) -> list[AtsOut] | list[ChannelOut]:
    """ATS per SKU (all of them without `sku`), or with `assembly` and `collection` per collection."""
    why = identifiers.channel_problem(assembly, collection)
    if why is not None:
        raise malformed(why)
    if assembly is not None and collection is not None:
        if not sku:
            raise malformed("a collection's ATS needs at least one sku")
        return [
            ChannelOut(sku=v.sku, assembly=v.assembly, collection=v.collection, ats=v.ats, cap=v.cap, ordered=v.ordered)
            for v in reads.channels(app.store, partner, sku, assembly, collection)
        ]
    views = reads.ats(app.store, partner, sku)
    return [
        AtsOut(sku=v.sku, stock=v.stock, allocated=v.allocated, ats=v.ats, as_of=instant.to_iso(v.as_of)) for v in views
    ]


@router.get("/ats/{sku:path}/explain")
def explain(app: Gateway, partner: Partner, sku: Name) -> dict[str, Any]:
    """Why a SKU's ATS is what it is: the snapshot it stands on and every allocating line with its rule."""
    found = reads.explain(app.store, partner, app.settings.partner(partner).policy, sku)
    view = found.view
    return {
        "sku": view.sku,
        "mode": found.mode,
        "stock": view.stock,
        "as_of": instant.to_iso(view.as_of),
        "allocated": view.allocated,
        "ats": view.ats,
        "set_by_ledger_entry": found.set_by,
        "lines": [
            {
                "order_id": line.order_id,
                "status": line.status,
                "quantity": line.quantity,
                "confirmed_quantity": line.confirmed_quantity,
                "units": line.units,
                "rule": line.rule,
            }
            for line in found.lines
        ],
        "non_allocating_lines": found.non_allocating,
    }
