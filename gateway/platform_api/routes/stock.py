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
    moment,
    partner_router,
    ran,
    run,
)
from gateway.platform_api.schemas import CapIn, CommandOut, StockIn, StockOut, WarningOut

router = partner_router()


@router.put("/caps", response_model=CommandOut, responses=REFUSED)
async def set_cap(app: Gateway, partner: Partner, cap: CapIn) -> CommandOut:
    """Set one cap: a collection's, or the assembly default (collection "*"); max null: no maximum."""
    collection = None if cap.collection == "*" else cap.collection
    if collection is not None and "*" in collection:
        raise malformed("collection: a name, or * for all collections")
    changes = await run(app, lambda commands: commands.set_cap(partner, cap.sku, cap.assembly, collection, cap.max))
    return CommandOut(partner=partner, ats_changes=changes)


@router.put("/stock/{sku:path}", response_model=StockOut, responses=REFUSED)
async def set_stock(app: Gateway, partner: Partner, sku: Name, level: StockIn) -> StockOut:
    """Set one SKU's stock level (refused when older than the level it would replace); `warnings` names a level
    older than the last confirmation applied for the SKU (`snapshot_predates_confirmation`), set all the same."""
    as_of = moment(app, level.as_of, partner, "as_of")
    done = await ran(app, lambda commands: commands.set_stock(partner, sku, level.quantity, as_of))
    warnings = [WarningOut.model_validate(w) for w in views.warnings(done.warnings)]
    return StockOut(partner=partner, ats_changes=changes_out(done.changes), warnings=warnings)
