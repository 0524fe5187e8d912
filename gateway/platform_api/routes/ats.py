"""Reading ATS: per SKU or per collection, the ATP on a date, and explained line by line."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Query

from gateway import bootstrap, views
from gateway.domain import days, identifiers
from gateway.platform_api.problems import malformed
from gateway.platform_api.routes.common import Gateway, Name, Partner, partner_router
from gateway.platform_api.schemas import AtpOut, AtsOut, ChannelOut, Identifier
from gateway.service import reads

router = partner_router()

ON = "The date to promise for (`2026-12-15`, or an instant: its date in the partner's zone); before today: today."


def _dates(app: bootstrap.App, partner: str, on: str | None) -> tuple[date, date | None]:
    """The partner's date today, and the date `on` names (422 when it names none)."""
    zone = app.settings.partner(partner).zone
    today = days.today(app.clock(), zone)
    if on is None:
        return today, None
    try:
        return today, days.parse_day(on, zone)
    except (ValueError, OverflowError) as exc:
        raise malformed(f"on: {exc}") from None


@router.get("/ats", response_model=list[AtsOut] | list[ChannelOut] | list[AtpOut])
def read_ats(
    app: Gateway,
    partner: Partner,
    sku: Annotated[list[Identifier] | None, Query(max_length=1000)] = None,
    assembly: Annotated[Identifier | None, Query()] = None,
    collection: Annotated[Identifier | None, Query()] = None,
    on: Annotated[str | None, Query(description=ON, max_length=64)] = None,
) -> list[AtsOut] | list[ChannelOut] | list[AtpOut]:
    """ATS per SKU (all of them without `sku`), or with `assembly` and `collection` per collection; with `on`, per
    SKU, the ATP on that date beside the ATS (`on`, `atp`)."""
    why = identifiers.channel_problem(assembly, collection)
    if why is not None:
        raise malformed(why)
    if assembly is not None and collection is not None:
        if not sku:
            raise malformed("a collection's ATS needs at least one sku")
        if on is not None:
            raise malformed("on: the ATP on a date is per SKU, not per collection")
        today, _ = _dates(app, partner, None)
        return [
            ChannelOut.model_validate(views.channel(v))
            for v in reads.channels(app.store, partner, sku, assembly, collection, today)
        ]
    today, day = _dates(app, partner, on)
    if day is not None:
        return [AtpOut.model_validate(views.atp(v)) for v in reads.atp_on(app.store, partner, sku, day, today)]
    return [AtsOut.model_validate(views.ats(v)) for v in reads.ats(app.store, partner, sku)]


@router.get("/ats/{sku:path}/explain")
def explain(
    app: Gateway,
    partner: Partner,
    sku: Name,
    on: Annotated[str | None, Query(description=ON, max_length=64)] = None,
) -> dict[str, Any]:
    """Why a SKU's ATS is what it is: the snapshot it stands on and every allocating line with its rule; with
    dated supply (or `on`), the supply schedule: each date's supply, demand and cumulative balance, the ATP on `on`
    (today without it) and the date that limits it."""
    today, day = _dates(app, partner, on)
    policy = app.settings.partner(partner).policy
    return views.explanation(reads.explain(app.store, partner, policy, sku, today=today, on=day))
