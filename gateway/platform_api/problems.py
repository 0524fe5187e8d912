"""The platform API's refusals as RFC 9457 problem details (`application/problem+json`), whoever refuses: a rule
of the domain, the validation of a request, the framework itself, or a busy store."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.domain.caps import CapReached
from gateway.domain.errors import IllegalTransition, InsufficientStock, Refusal, UnknownLine, UnknownOrder
from gateway.service.orders import KeyReused
from gateway.store.port import StoreError

PROBLEM = "application/problem+json"


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


def malformed(detail: str) -> ApiProblem:
    """A malformed request (422)."""
    return ApiProblem(422, "Malformed request", detail, "malformed")


def refusal(refused: Refusal) -> ApiProblem:
    """A rule's refusal as problem details."""
    if isinstance(refused, InsufficientStock):
        available = [
            {"sku": s.sku, "requested": s.requested, "available": max(0, s.available)} for s in refused.shortages
        ]
        return ApiProblem(409, "Not enough available to sell", str(refused), refused.code, available=available)
    if isinstance(refused, CapReached):
        available = [
            {"sku": s.sku, "requested": s.requested, "available": s.available, "cap": s.cap, "ordered": s.ordered}
            for s in refused.shortages
        ]
        return ApiProblem(409, "Cap reached", str(refused), refused.code, available=available)
    if isinstance(refused, KeyReused):
        return ApiProblem(409, "Idempotency-Key reused", str(refused), refused.code)
    if isinstance(refused, IllegalTransition):
        return ApiProblem(409, "Illegal status move", str(refused), refused.code)
    if isinstance(refused, UnknownOrder | UnknownLine):
        return ApiProblem(404, "Not found", str(refused), refused.code)
    return ApiProblem(409, "Refused", str(refused), refused.code)


def install(api: FastAPI) -> None:
    """Every refusal of `api` answered as problem details."""
    api.add_exception_handler(ApiProblem, _problem)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _malformed)  # type: ignore[arg-type]
    api.add_exception_handler(StarletteHTTPException, _framework)  # type: ignore[arg-type]
    api.add_exception_handler(StoreError, _busy)  # type: ignore[arg-type]


async def _problem(_request: Request, exc: ApiProblem) -> Response:
    return exc.response()


async def _malformed(_request: Request, exc: RequestValidationError) -> Response:
    errors = [
        {
            "where": ".".join(str(p) for p in error.get("loc", ())),
            "message": str(error.get("msg", "")).removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:20])
    return ApiProblem(422, "Malformed request", detail, "malformed", errors=errors).response()


async def _framework(_request: Request, exc: StarletteHTTPException) -> Response:
    """The framework's own answers (no such path, a method not allowed) as problem details too."""
    if exc.status_code == 400:  # FastAPI's only 400: a body it could not read as JSON (bytes that are not UTF-8)
        return _unreadable(exc.__cause__).response()
    titles = {404: ("Not found", "not_found"), 405: ("Method not allowed", "method_not_allowed")}
    title, code = titles.get(exc.status_code, ("Refused", f"http_{exc.status_code}"))
    return ApiProblem(exc.status_code, title, str(exc.detail), code).response()


def _unreadable(cause: BaseException | None) -> ApiProblem:
    """A body that is not JSON text: malformed, like any other malformed body (422)."""
    if isinstance(cause, UnicodeDecodeError):
        message = f"not UTF-8 ({cause.reason} at byte {cause.start})"
    else:
        message = "cannot be read as JSON"
    return ApiProblem(
        422, "Malformed request", f"body: {message}", "malformed", errors=[{"where": "body", "message": message}]
    )


async def _busy(_request: Request, exc: StoreError) -> Response:
    return busy(exc)


def busy(exc: StoreError) -> Response:
    """The store could not answer in time: try again shortly (503, Retry-After)."""
    problem = ApiProblem(503, "Store busy", f"the store could not answer: {exc}", "store_busy")
    response = problem.response()
    response.headers["Retry-After"] = "1"
    return response
