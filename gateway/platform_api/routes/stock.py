"""Setting caps and stock levels."""

from __future__ import annotations

from gateway import views
from gateway.platform_api.problems import malformed
from gateway.platform_api.routes.common import (
    REFUSED,
    Gateway,
    Name,
    Partner,
    changes_out,
    execute,
    moment,
    partner_router,
)
from gateway.platform_api.schemas import CapIn, CapOut, StockIn, StockOut, WarningOut

router = partner_router()


@router.put("/caps", response_model=CapOut, responses=REFUSED)
async def set_cap(app: Gateway, partner: Partner, cap: CapIn) -> CapOut:
    """Set one cap: a collection's, or the assembly default (collection "*"); max null: no maximum. The default
    erases every collection's own setting in the assembly: the answer lists them (`erased`) and the collections now
    over their cap (`over_cap`). Reading and clearing caps: routes/caps.py."""
    collection = None if cap.collection == "*" else cap.collection
    if collection is not None and "*" in collection:
        raise malformed("collection: a name, or * for all collections")
    done = await execute(app, lambda commands: commands.set_cap(partner, cap.sku, cap.assembly, collection, cap.max))
    return CapOut.model_validate({"partner": partner} | views.cap_done(done))


@router.put("/stock/{sku:path}", response_model=StockOut, responses=REFUSED)
async def set_stock(app: Gateway, partner: Partner, sku: Name, level: StockIn) -> StockOut:
    """Set one SKU's stock level (refused when older than the level it would replace); `warnings` names a level
    older than the last confirmation applied for the SKU (`snapshot_predates_confirmation`), set all the same."""
    as_of = moment(app, level.as_of, partner, "as_of")
    done = await execute(app, lambda commands: commands.set_stock(partner, sku, level.quantity, as_of))
    warnings = [WarningOut.model_validate(w) for w in views.warnings(done.warnings)]
    return StockOut(partner=partner, ats_changes=changes_out(done.changes), warnings=warnings)
