"""The platform HTTP API (FastAPI): place orders, move them, set caps and stock, read ATS, while the worker runs.

Everything lives under `/v1/partners/{partner}/`. A bearer token scoped to partners is required (401 without
one or with a wrong one, 403 for another partner's data). Refusals are RFC 9457 problem details
(`application/problem+json`): 409 for not enough ATS, a cap reached or an illegal status move, 404 for an
unknown partner or order, 422 for a malformed body. `POST orders` needs an `Idempotency-Key`: the same key with
the same body gets the first answer again, with another body a 409. A command that cannot get the store's writer
within `[api] write_wait` seconds is answered 503 with Retry-After; reads never wait for the writer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import unquote

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import bootstrap, logs
from gateway.access import Grant, Tokens
from gateway.command_threads import run_command
from gateway.domain import instant
from gateway.domain.caps import CapReached
from gateway.domain.errors import IllegalTransition, InsufficientStock, Refusal, UnknownLine, UnknownOrder
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus
from gateway.service import queries
from gateway.service.commands import Commands
from gateway.service.engine import AtsChange
from gateway.store.port import StoreError, Transaction
from gateway.store.retry import retried

log = logs.get(__name__)

PROBLEM = "application/problem+json"
MAX_ID = 128
MAX_QUANTITY = 999_999_999_999

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLineIn(_Body):
    """One line of an order to place."""

    sku: Identifier
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class OrderIn(_Body):
    """An order to place: all its lines or none."""

    order_id: Identifier
    lines: list[OrderLineIn] = Field(min_length=1, max_length=1000)
    assembly: Identifier | None = None
    collection: Identifier | None = None


class StatusIn(_Body):
    """An order's new status."""

    status: OrderStatus


class ConfirmationIn(_Body):
    """The partner's confirmed quantity for one line of an order."""

    sku: Identifier
    confirmed_quantity: int = Field(ge=0, le=MAX_QUANTITY)
    confirmed_at: str = Field(description="ISO 8601; without an offset, the partner's time zone")


class CapIn(_Body):
    """One cap setting: a collection's, or with collection "*" the assembly default; max null: no maximum."""

    sku: Identifier
    assembly: Identifier
    collection: Identifier
    max: int | None = Field(ge=0, le=MAX_QUANTITY)


class StockIn(_Body):
    """A SKU's stock level, as a one-row snapshot."""

    quantity: int = Field(ge=0, le=MAX_QUANTITY)
    as_of: str | None = Field(default=None, description="ISO 8601; default now")


class AtsOut(BaseModel):
    """One SKU's ATS (the published value: never negative)."""

    sku: str
    stock: int
    allocated: int
    ats: int
    as_of: str | None


class ChannelOut(BaseModel):
    """What one collection of an assembly may still take of a SKU."""

    sku: str
    assembly: str
    collection: str
    ats: int
    cap: int | None
    ordered: int


class ChangeOut(BaseModel):
    """A published ATS value a command moved."""

    sku: str
    before: int | None
    after: int


class CommandOut(BaseModel):
    """What a command did."""

    partner: str
    ats_changes: list[ChangeOut]
    order_id: str | None = None


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None


class ApiProblem(Exception):
    """A refusal to answer as problem details."""

    def __init__(self, status: int, title: str, detail: str, code: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.code, self.extra = status, title, detail, code, extra

    def response(self) -> JSONResponse:
        body = {
            "type": f"https://stock-gateway.example/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM, headers=headers)


def _refusal(refusal: Refusal) -> ApiProblem:
    """A rule's refusal as problem details."""
    if isinstance(refusal, InsufficientStock):
        available = [
            {"sku": s.sku, "requested": s.requested, "available": max(0, s.available)} for s in refusal.shortages
        ]
        return ApiProblem(409, "Not enough available to sell", str(refusal), refusal.code, available=available)
    if isinstance(refusal, CapReached):
        available = [
            {"sku": s.sku, "requested": s.requested, "available": s.available, "cap": s.cap, "ordered": s.ordered}
            for s in refusal.shortages
        ]
        return ApiProblem(409, "Cap reached", str(refusal), refusal.code, available=available)
    if isinstance(refusal, IllegalTransition):
        return ApiProblem(409, "Illegal status move", str(refusal), refusal.code)
    if isinstance(refusal, UnknownOrder | UnknownLine):
        return ApiProblem(404, "Not found", str(refusal), refusal.code)
    return ApiProblem(409, "Refused", str(refusal), refusal.code)


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
            422: {"model": ProblemOut, "description": "Malformed request"},
        },
    )
    api.state.gateway = app
    api.state.tokens = tokens
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    api.add_exception_handler(ApiProblem, _problem)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _malformed)  # type: ignore[arg-type]
    api.add_exception_handler(StarletteHTTPException, _framework)  # type: ignore[arg-type]
    api.add_exception_handler(StoreError, _busy)  # type: ignore[arg-type]
    api.add_middleware(_Authorize)
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
            refusal = None
            if grant is None:
                refusal = ApiProblem(401, "Unauthorized", "a valid bearer token is required", "unauthorized")
            elif not grant.allows(partner):
                refusal = ApiProblem(403, "Forbidden", f"this token may not act for partner {partner}", "forbidden")
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _framework(_request: Request, exc: StarletteHTTPException) -> Response:
    """The framework's own answers (no such path, a method not allowed) as problem details too."""
    titles = {404: ("Not found", "not_found"), 405: ("Method not allowed", "method_not_allowed")}
    title, code = titles.get(exc.status_code, ("Refused", f"http_{exc.status_code}"))
    return ApiProblem(exc.status_code, title, str(exc.detail), code).response()


async def _busy(_request: Request, exc: StoreError) -> Response:
    """The store could not answer in time: try again shortly."""
    problem = ApiProblem(503, "Store busy", f"the store could not answer: {exc}", "store_busy")
    response = problem.response()
    response.headers["Retry-After"] = "1"
    return response


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


async def _problem(_request: Request, exc: ApiProblem) -> Response:
    return exc.response()


async def _malformed(_request: Request, exc: RequestValidationError) -> Response:
    errors = [
        {"where": ".".join(str(p) for p in error.get("loc", ())), "message": str(error.get("msg", ""))}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:20])
    return ApiProblem(422, "Malformed request", detail, "malformed", errors=errors).response()


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
Name = Annotated[str, Path(min_length=1, max_length=MAX_ID)]
router = APIRouter(prefix="/v1/partners/{partner}")


async def _run(app: bootstrap.App, action: Callable[[Commands], list[AtsChange]]) -> list[ChangeOut]:
    """A command on a command thread (gateway.command_threads); a refusal as problem details."""

    def run(commands: Commands) -> list[ChangeOut]:
        try:
            return _changes(action(commands))
        except Refusal as refusal:
            raise _refusal(refusal) from None

    return await run_command(app.commands, app.settings.api.write_wait, run)


def _moment(app: bootstrap.App, text: str | None, partner: str, field: str) -> int | None:
    if text is None:
        return None
    try:
        return instant.parse(text, app.settings.partner(partner).zone)
    except ValueError as exc:
        raise ApiProblem(422, "Malformed request", f"body.{field}: {exc}", "malformed") from None


def _malformed_request(detail: str) -> ApiProblem:
    return ApiProblem(422, "Malformed request", detail, "malformed")


@router.get("/ats", response_model=list[AtsOut] | list[ChannelOut])
def read_ats(
    app: Gateway,
    partner: Partner,
    sku: Annotated[list[str] | None, Query(max_length=1000)] = None,
    assembly: Annotated[str | None, Query(min_length=1, max_length=MAX_ID)] = None,
    collection: Annotated[str | None, Query(min_length=1, max_length=MAX_ID)] = None,
) -> list[AtsOut] | list[ChannelOut]:
    """ATS per SKU (all of them without `sku`), or with `assembly` and `collection` per collection."""
    if (assembly is None) != (collection is None):
        raise _malformed_request("assembly and collection go together")
    with app.store.read() as tx:
        if assembly is not None and collection is not None:
            if not sku:
                raise _malformed_request("a collection's ATS needs at least one sku")
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
_BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ProblemOut, "description": "The store is busy: try again (Retry-After)"}
}


@router.post("/orders", status_code=201, response_model=CommandOut, responses=_REFUSED | _BUSY)
async def place(
    app: Gateway,
    partner: Partner,
    order: OrderIn,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> Response:
    """Place an order: all lines or none. The same Idempotency-Key with the same body answers as the first time;
    with another body, 409."""
    if (order.assembly is None) != (order.collection is None):
        raise _malformed_request("assembly and collection go together")
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
    except Refusal as refusal:
        problem = _refusal(refusal)
        stored = _keep_refusal(commands, partner, idempotency_key, digest, problem)
        if stored is not None:  # another request with this key answered first: its answer stands
            return _replay(stored, digest, idempotency_key)
        raise problem from None
    body = CommandOut(partner=partner, order_id=order.order_id, ats_changes=_changes(changes))
    return JSONResponse(body.model_dump(), status_code=201)


@router.post("/orders/{order_id:path}/status", response_model=CommandOut, responses=_REFUSED | _BUSY)
async def set_status(app: Gateway, partner: Partner, order_id: Name, move: StatusIn) -> CommandOut:
    """Move an order (all its lines) to a status: forward only, never out of closed or cancelled."""
    changes = await _run(app, lambda commands: commands.set_status(partner, order_id, move.status))
    return CommandOut(partner=partner, order_id=order_id, ats_changes=changes)


@router.post("/orders/{order_id:path}/confirmations", response_model=CommandOut, responses=_REFUSED | _BUSY)
async def confirm(app: Gateway, partner: Partner, order_id: Name, confirmation: ConfirmationIn) -> CommandOut:
    """Record the partner's confirmed quantity for one line of an order."""
    at = _moment(app, confirmation.confirmed_at, partner, "confirmed_at")
    assert at is not None
    sku, quantity = confirmation.sku, confirmation.confirmed_quantity
    changes = await _run(app, lambda commands: commands.confirm(partner, order_id, sku, quantity, at))
    return CommandOut(partner=partner, order_id=order_id, ats_changes=changes)


@router.put("/caps", response_model=CommandOut, responses=_REFUSED | _BUSY)
async def set_cap(app: Gateway, partner: Partner, cap: CapIn) -> CommandOut:
    """Set one cap: a collection's, or the assembly default (collection "*"); max null: no maximum."""
    collection = None if cap.collection == "*" else cap.collection
    if collection is not None and "*" in collection:
        raise _malformed_request("collection: a name, or * for all collections")
    changes = await _run(app, lambda commands: commands.set_cap(partner, cap.sku, cap.assembly, collection, cap.max))
    return CommandOut(partner=partner, ats_changes=changes)


@router.put("/stock/{sku:path}", response_model=CommandOut, responses=_REFUSED | _BUSY)
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
    config = uvicorn.Config(create_app(app, tokens), host=host, port=port, log_config=None, access_log=False)
    return uvicorn.Server(config)
