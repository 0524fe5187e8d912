"""Reading ATS: per SKU or per collection, and explained line by line."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from gateway import views
from gateway.domain import identifiers
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
            ChannelOut.model_validate(views.channel(v))
            for v in reads.channels(app.store, partner, sku, assembly, collection)
        ]
    return [AtsOut.model_validate(views.ats(v)) for v in reads.ats(app.store, partner, sku)]


@router.get("/ats/{sku:path}/explain")
def explain(app: Gateway, partner: Partner, sku: Name) -> dict[str, Any]:
    """Why a SKU's ATS is what it is: the snapshot it stands on and every allocating line with its rule."""
    return views.explanation(reads.explain(app.store, partner, app.settings.partner(partner).policy, sku))
