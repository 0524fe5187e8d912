"""What every route of the platform API shares: its router, the app and partner of a request, running a command on
a command thread, reading an instant of a body."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.routing import APIRoute

from gateway import bootstrap, views
from gateway.domain import instant
from gateway.domain.errors import Refusal
from gateway.platform_api.problems import ApiProblem, refusal
from gateway.platform_api.schemas import ChangeOut, Identifier, ProblemOut
from gateway.platform_api.threads import run_command
from gateway.service.commands import Commands
from gateway.service.snapshots import AtsChange

PREFIX = "/v1/partners/{partner}"
_T = TypeVar("_T")


class _Utf8Request(Request):
    """A request whose JSON body is UTF-8 (json.loads of bytes alone takes UTF-16 and UTF-32 too)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # a UnicodeDecodeError is the framework's 400, answered 422 as a malformed body
            self._json = json.loads((await self.body()).decode("utf-8-sig"))
        return self._json


class Utf8JsonRoute(APIRoute):
    """A route that reads its JSON body as UTF-8 only."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def utf8(request: Request) -> Response:
            return await handler(_Utf8Request(request.scope, request.receive))

        return utf8


def partner_router() -> APIRouter:
    """A router of routes under `/v1/partners/{partner}`, reading JSON bodies as UTF-8 only."""
    return APIRouter(prefix=PREFIX, route_class=Utf8JsonRoute)


async def _gateway(request: Request) -> bootstrap.App:
    found: bootstrap.App = request.app.state.gateway
    return found


async def _partner_of(request: Request, partner: str) -> str:
    """The partner of the path (the token was checked by the middleware): 404 when it is unknown."""
    gateway: bootstrap.App = request.app.state.gateway
    if partner not in gateway.settings.partners:
        raise ApiProblem(404, "Not found", f"partner {partner} is unknown", "unknown_partner")
    return partner


Gateway = Annotated[bootstrap.App, Depends(_gateway)]
Partner = Annotated[str, Depends(_partner_of)]
Name = Annotated[Identifier, Path()]

REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ProblemOut, "description": "Refused by the rules (the detail says what and why)"}
}


def changes_out(changes: list[AtsChange]) -> list[ChangeOut]:
    """The ATS values a command moved, as answered."""
    return [ChangeOut.model_validate(views.ats_change(c)) for c in changes]


async def execute(app: bootstrap.App, action: Callable[[Commands], _T]) -> _T:
    """A command on a command thread (gateway.platform_api.threads), its result; a refusal as problem details."""
    try:
        return await run_command(app.commands, app.settings.api.write_wait, action)
    except Refusal as refused:
        raise refusal(refused) from None


async def run(app: bootstrap.App, action: Callable[[Commands], list[AtsChange]]) -> list[ChangeOut]:
    """A command on a command thread (gateway.platform_api.threads), the ATS it moved; a refusal as problem
    details."""
    return changes_out(await execute(app, action))


def moment(app: bootstrap.App, text: str | None, partner: str, field: str) -> int | None:
    """The instant `text` of the body's `field` (in the partner's zone without an offset): 422 when it is none."""
    if text is None:
        return None
    try:
        return instant.parse(text, app.settings.partner(partner).zone)
    except ValueError as exc:
        raise ApiProblem(422, "Malformed request", f"body.{field}: {exc}", "malformed") from None
