"""Reading a partner's caps and returning one collection to the assembly default (setting one: routes/stock.py).

A cap is named by query parameters, as `PUT caps` names it in its body: a SKU, an assembly or a collection may hold
a slash ("BOX/12"), so none of them can be a path segment beside another."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from gateway import views
from gateway.platform_api.problems import malformed
from gateway.platform_api.routes.common import Gateway, Partner, execute, partner_router
from gateway.platform_api.schemas import CapLineOut, CapOut, Identifier
from gateway.service import reads

router = partner_router()


@router.get("/caps", response_model=list[CapLineOut])
def read_caps(
    app: Gateway,
    partner: Partner,
    sku: Annotated[Identifier | None, Query()] = None,
    assembly: Annotated[Identifier | None, Query()] = None,
) -> list[CapLineOut]:
    """The partner's caps (of one SKU, one assembly): each assembly default (collection "*"), then each collection
    with its own setting or with units ordered under the default: its cap, units ordered, what is left and
    whether it is over its cap. As `gateway cap show --json`."""
    return [CapLineOut.model_validate(views.cap(line)) for line in reads.caps(app.store, partner, sku, assembly)]


@router.delete("/caps", response_model=CapOut)
async def clear_cap(
    app: Gateway,
    partner: Partner,
    sku: Annotated[Identifier, Query()],
    assembly: Annotated[Identifier, Query()],
    collection: Annotated[Identifier, Query()],
) -> CapOut:
    """Return one collection to the assembly default: its own setting is erased (`erased`), and the answer says
    what applies now. Idempotent: a collection with no setting of its own answers 200 with `erased` empty. A
    channel ATS that moves is queued for the partner. As `gateway cap clear --json`."""
    if "*" in collection:
        raise malformed("collection: a name (the assembly default is set by PUT caps with collection *)")
    done = await execute(app, lambda commands: commands.clear_cap(partner, sku, assembly, collection))
    return CapOut.model_validate({"partner": partner} | views.cap_done(done))
