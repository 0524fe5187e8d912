"""The platform HTTP API (FastAPI): place orders, move them, set caps and stock, read ATS, while the worker runs.

Everything lives under `/v1/partners/{partner}/`. A bearer token scoped to partners is required (401 without
one or with a wrong one, 403 for another partner's data). Refusals are RFC 9457 problem details
(`application/problem+json`): 409 for not enough ATS, a cap reached or an illegal status move, 404 for an
unknown partner or order, 422 for a malformed request (an identifier is 1 to 128 characters, no control characters,
no leading or trailing whitespace; a quantity is a JSON integer). `POST orders` needs an `Idempotency-Key`: the same
key with the same body gets the first answer again, with another body a 409. What a client may cost is bounded: a
body larger than `api.max_body_bytes` is 413, a request's head slower than `api.header_timeout` 408, and a
connection past `api.max_connections` 503. A command that cannot get the store's
writer within `api.write_wait` seconds is answered 503 with Retry-After; reads never wait for the writer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import unquote

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import bootstrap, logs, platform_server
from gateway.access import Grant, Tokens
from gateway.command_threads import run_command
from gateway.domain import instant
from gateway.domain.errors import Refusal
from gateway.domain.orders import RequestedLine
from gateway.platform_limits import BodyLimit
from gateway.platform_models import (
    AtsOut,
    CapIn,
    ChangeOut,
    ChannelOut,
    CommandOut,
    ConfirmationIn,
    Identifier,
    OrderIn,
    ProblemOut,
    StatusIn,
    StockIn,
    Utf8JsonRoute,
)
from gateway.platform_problems import PROBLEM, ApiProblem, install, malformed, refusal
from gateway.service import queries
from gateway.service.commands import Commands
from gateway.service.engine import AtsChange
from gateway.store.port import Transaction
from gateway.store.retry import retried

log = logs.get(__name__)


def _changes(changes: list[AtsChange]) -> list[ChangeOut]:
    return [ChangeOut(sku=c.sku, before=c.before, after=c.after) for c in changes]


def create_app(app: bootstrap.App, tokens: Tokens) -> FastAPI:
    """The API over the use cases of `app`, guarded by `tokens`."""
    api = FastAPI(
        title="stock-gateway platform API",
        version="1",
        description=__doc__,
        responses={
            401: {"model": ProblemOut, "description": "No token, or a wrong one"},
            403: {"model": ProblemOut, "description": "The token may not act for this partner"},
            404: {"model": ProblemOut, "description": "Unknown partner or order"},
            408: {"model": ProblemOut, "description": "The request's head took longer than api.header_timeout"},
            413: {"model": ProblemOut, "description": "The body is larger than the server takes (api.max_body_bytes)"},
            422: {"model": ProblemOut, "description": "Malformed request"},
            503: {
                "model": ProblemOut,
                "description": "Too many connections (api.max_connections), or the store is busy: try again "
                "(Retry-After)",
            },
        },
    )
    api.state.gateway = app
    api.state.tokens = tokens
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    install(api)
    api.add_middleware(_Authorize)
    api.add_middleware(BodyLimit, max_bytes=app.settings.api.max_body_bytes)  # outermost: before the token
    api.include_router(router)
    return api


_PARTNER_PATH = re.compile(r"^/v1/partners/([^/]+)(/|$)")


class _Authorize:
    """Every partner route: the token first, before anything of the request is read (401, 403). A plain ASGI
    middleware: it costs a regular expression and a digest per request, nothing more."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PARTNER_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is not None:
            tokens: Tokens = scope["app"].state.tokens
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            grant: Grant | None = tokens.grant(authorization)
            partner = unquote(match.group(1))
            denied = None
            if grant is None:
                denied = ApiProblem(401, "Unauthorized", "a valid bearer token is required", "unauthorized")
            elif not grant.allows(partner):
                denied = ApiProblem(403, "Forbidden", f"this token may not act for partner {partner}", "forbidden")
            if denied is not None:
                await denied.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's document, saying what the API really answers: refusals as application/problem+json, and the
    bearer token every partner route needs."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    document = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation["security"] = [{"bearer": []}]
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM] = content.pop("application/json")
    document.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "a token scoped to partners ([api] tokens)"}
    }
    api.openapi_schema = document
    return document


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
router = APIRouter(prefix="/v1/partners/{partner}", route_class=Utf8JsonRoute)


async def _run(app: bootstrap.App, action: Callable[[Commands], list[AtsChange]]) -> list[ChangeOut]:
    """A command on a command thread (gateway.command_threads); a refusal as problem details."""

    def run(commands: Commands) -> list[ChangeOut]:
        try:
            return _changes(action(commands))
        except Refusal as refused:
            raise refusal(refused) from None

    return await run_command(app.commands, app.settings.api.write_wait, run)


def _moment(app: bootstrap.App, text: str | None, partner: str, field: str) -> int | None:
    if text is None:
        return None
    try:
        return instant.parse(text, app.settings.partner(partner).zone)
    except ValueError as exc:
        raise ApiProblem(422, "Malformed request", f"body.{field}: {exc}", "malformed") from None


@router.get("/ats", response_model=list[AtsOut] | list[ChannelOut])
def read_ats(
    app: Gateway,
    partner: Partner,
    sku: Annotated[list[Identifier] | None, Query(max_length=1000)] = None,
    assembly: Annotated[Identifier | None, Query()] = None,
    collection: Annotated[Identifier | None, Query()] = None,
) -> list[AtsOut] | list[ChannelOut]:
    """ATS per SKU (all of them without `sku`), or with `assembly` and `collection` per collection."""
    if (assembly is None) != (collection is None):
        raise malformed("assembly and collection go together")
    with app.store.read() as tx:
        if assembly is not None and collection is not None:
            if not sku:
                raise malformed("a collection's ATS needs at least one sku")
            channel_views = [queries.channel(tx, partner, s, assembly, collection) for s in dict.fromkeys(sku)]
            return [
                ChannelOut(
                    sku=v.sku, assembly=v.assembly, collection=v.collection, ats=v.ats, cap=v.cap, ordered=v.ordered
                )
                for v in channel_views
            ]
        views = queries.ats(tx, partner, sku)
    return [
        AtsOut(sku=v.sku, stock=v.stock, allocated=v.allocated, ats=v.ats, as_of=instant.to_iso(v.as_of)) for v in views
    ]


@router.get("/ats/{sku:path}/explain")
def explain(app: Gateway, partner: Partner, sku: Name) -> dict[str, Any]:
    """Why a SKU's ATS is what it is: the snapshot it stands on and every allocating line with its rule."""
    with app.store.read() as tx:
        found = queries.explain(tx, partner, app.settings.partner(partner).policy, sku)
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


_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ProblemOut, "description": "Refused by the rules (the detail says what and why)"}
}


@router.post("/orders", status_code=201, response_model=CommandOut, responses=_REFUSED)
async def place(
    app: Gateway,
    partner: Partner,
    order: OrderIn,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> Response:
    """Place an order: all lines or none. The same Idempotency-Key with the same body answers as the first time;
    with another body, 409."""
    if (order.assembly is None) != (order.collection is None):
        raise malformed("assembly and collection go together")
    wait = app.settings.api.write_wait
    return await run_command(app.commands, wait, lambda commands: _place(commands, partner, order, idempotency_key))


def _place(commands: Commands, partner: str, order: OrderIn, idempotency_key: str) -> Response:
    digest = hashlib.sha256(order.model_dump_json().encode()).hexdigest()
    lines = [RequestedLine(line.sku, line.quantity, order.assembly, order.collection) for line in order.lines]

    def answered(tx: Transaction) -> None:
        # in the placement's own write transaction: a retry racing the first request waits for its answer
        earlier = tx.request_answer(tx.partner_id(partner), idempotency_key)
        if earlier is not None:
            raise _Answered(earlier)

    def keep(tx: Transaction, changes: list[AtsChange]) -> None:
        body = CommandOut(partner=partner, order_id=order.order_id, ats_changes=_changes(changes))
        tx.keep_answer(tx.partner_id(partner), idempotency_key, digest, 201, body.model_dump_json(), commands.clock())

    try:
        changes = commands.place(partner, order.order_id, lines, also=keep, before=answered)
    except _Answered as first:
        return _replay(first.answer, digest, idempotency_key)
    except Refusal as refused:
        problem = refusal(refused)
        stored = _keep_refusal(commands, partner, idempotency_key, digest, problem)
        if stored is not None:  # another request with this key answered first: its answer stands
            return _replay(stored, digest, idempotency_key)
        raise problem from None
    body = CommandOut(partner=partner, order_id=order.order_id, ats_changes=_changes(changes))
    return JSONResponse(body.model_dump(), status_code=201)


@router.post("/orders/{order_id:path}/status", response_model=CommandOut, responses=_REFUSED)
async def set_status(app: Gateway, partner: Partner, order_id: Name, move: StatusIn) -> CommandOut:
    """Move an order (all its lines) to a status: forward only, never out of closed or cancelled."""
    changes = await _run(app, lambda commands: commands.set_status(partner, order_id, move.status))
    return CommandOut(partner=partner, order_id=order_id, ats_changes=changes)


@router.post("/orders/{order_id:path}/confirmations", response_model=CommandOut, responses=_REFUSED)
async def confirm(app: Gateway, partner: Partner, order_id: Name, confirmation: ConfirmationIn) -> CommandOut:
    """Record the partner's confirmed quantity for one line of an order."""
    at = _moment(app, confirmation.confirmed_at, partner, "confirmed_at")
    assert at is not None
    sku, quantity = confirmation.sku, confirmation.confirmed_quantity
    changes = await _run(app, lambda commands: commands.confirm(partner, order_id, sku, quantity, at))
    return CommandOut(partner=partner, order_id=order_id, ats_changes=changes)


@router.put("/caps", response_model=CommandOut, responses=_REFUSED)
async def set_cap(app: Gateway, partner: Partner, cap: CapIn) -> CommandOut:
    """Set one cap: a collection's, or the assembly default (collection "*"); max null: no maximum."""
    collection = None if cap.collection == "*" else cap.collection
    if collection is not None and "*" in collection:
        raise malformed("collection: a name, or * for all collections")
    changes = await _run(app, lambda commands: commands.set_cap(partner, cap.sku, cap.assembly, collection, cap.max))
    return CommandOut(partner=partner, ats_changes=changes)


@router.put("/stock/{sku:path}", response_model=CommandOut, responses=_REFUSED)
async def set_stock(app: Gateway, partner: Partner, sku: Name, level: StockIn) -> CommandOut:
    """Set one SKU's stock level (refused when older than the level it would replace)."""
    as_of = _moment(app, level.as_of, partner, "as_of")
    changes = await _run(app, lambda commands: commands.set_stock(partner, sku, level.quantity, as_of))
    return CommandOut(partner=partner, ats_changes=changes)


def _replay(earlier: tuple[str, int, str], digest: str, key: str) -> Response:
    """The first answer to a key again, or 409 when the body differs."""
    first_digest, status, body = earlier
    if first_digest != digest:
        raise ApiProblem(
            409,
            "Idempotency-Key reused",
            f"the Idempotency-Key {key} was used with another body; use a new key for another request",
            "idempotency_key_reused",
        )
    media = PROBLEM if status >= 400 else "application/json"
    return Response(body, status_code=status, media_type=media)


class _Answered(Exception):
    """The Idempotency-Key has an answer already."""

    def __init__(self, answer: tuple[str, int, str]) -> None:
        super().__init__("answered")
        self.answer = answer


def _keep_refusal(
    commands: Commands, partner: str, key: str, digest: str, problem: ApiProblem
) -> tuple[str, int, str] | None:
    """Keep a refused placement's answer for its key (the refusal rolled the order back); when another request
    with the key answered first, its answer."""
    body = bytes(problem.response().body).decode()  # kept as sent: a replay is byte for byte the first answer

    def keep() -> tuple[str, int, str] | None:
        with commands.store.write(wait=commands.wait) as tx:
            partner_id = tx.partner_id(partner)
            earlier = tx.request_answer(partner_id, key)
            if earlier is not None:
                return earlier
            tx.keep_answer(partner_id, key, digest, problem.status, body, commands.clock())
        return None

    return retried(keep, what="refusal_kept", retries=commands.retries, context={"partner": partner})


def server(app: bootstrap.App, tokens: Tokens, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for the API (not started): `run()` serves in this thread until it is told to exit."""
    config = app.settings.api
    limits = platform_server.Limits(max_connections=config.max_connections, header_timeout=config.header_timeout)
    return platform_server.build(create_app(app, tokens), host, port, limits)
