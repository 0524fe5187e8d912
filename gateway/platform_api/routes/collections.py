"""Dated collections: when a collection takes orders (`opens_at`, `closes_at`) and its pickup date (`pickup_on`).

Named in the body and the query, as caps are: an assembly or a collection may hold a slash."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query

from gateway import views
from gateway.domain import days
from gateway.domain.days import CollectionDates
from gateway.platform_api.problems import malformed
from gateway.platform_api.routes.common import REFUSED, Gateway, Partner, execute, moment, partner_router
from gateway.platform_api.schemas import CollectionIn, CollectionLineOut, CollectionOut, Identifier
from gateway.service import reads

router = partner_router()


@router.put("/collections", response_model=CollectionOut, responses=REFUSED)
async def set_collection(app: Gateway, partner: Partner, body: CollectionIn) -> CollectionOut:
    """Replace one collection's dates (a date left out or null is none; all of them none: the collection has no
    dates any more). Orders in it are refused outside [opens_at, closes_at) (`collection_closed`); a window closing
    at or before it opens is refused (409 `collection_window_empty`). As `gateway collection set --json`."""
    dates = CollectionDates(
        moment(app, body.opens_at, partner, "opens_at"),
        moment(app, body.closes_at, partner, "closes_at"),
        _day(app, body.pickup_on, partner),
    )
    done = await execute(app, lambda commands: commands.set_collection(partner, body.assembly, body.collection, dates))
    return CollectionOut.model_validate({"partner": partner} | views.collection_done(done))


@router.get("/collections", response_model=list[CollectionLineOut])
def read_collections(
    app: Gateway, partner: Partner, assembly: Annotated[Identifier | None, Query()] = None
) -> list[CollectionLineOut]:
    """The partner's dated collections (of one assembly), by assembly and collection, each saying whether it takes
    orders now. A collection without dates is not listed: it takes orders at any time. As `gateway collection show
    --json`."""
    lines = reads.collections_of(app.store, partner, assembly, app.clock())
    return [CollectionLineOut.model_validate(views.collection(line)) for line in lines]


def _day(app: Gateway, text: str | None, partner: str) -> date | None:
    """The pickup date of the body: 422 when it is none."""
    if text is None:
        return None
    try:
        return days.parse_day(text, app.settings.partner(partner).zone)
    except (ValueError, OverflowError):  # an instant at the edge of the years may leave them in the zone
        raise malformed(f"body.pickup_on: not an ISO 8601 date: {text[:40]!r}") from None
