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

import re
from typing import Any
from urllib.parse import unquote

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import bootstrap
from gateway.access import API, Grant, Tokens
from gateway.platform_api import console, http_server
from gateway.platform_api.console.render import SourceStates
from gateway.platform_api.fast import FastPlacement
from gateway.platform_api.limits import BodyLimit
from gateway.platform_api.problems import PROBLEM, ApiProblem, install
from gateway.platform_api.routes import ROUTERS
from gateway.platform_api.schemas import ProblemOut


def create_app(app: bootstrap.App, tokens: Tokens, sources: SourceStates | None = None) -> FastAPI:
    """The API over the use cases of `app`, guarded by `tokens`, and the operator console (`sources`: what the
    worker knows of its sources, for the console)."""
    api = FastAPI(
        title="stock-gateway platform API",
        version="1",
        description=__doc__,
        # the gateway's own logs and metrics say what it did; FastAPI's OpenTelemetry hooks would only ask, on every
        # request, whether a provider is configured (FastAPI releases without telemetry keep it as an extra)
        telemetry={"tracing": False, "metrics": False, "logs": False},
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
    api.add_middleware(FastPlacement)  # innermost: after the token and the body's size
    api.add_middleware(_Authorize)
    api.add_middleware(BodyLimit, max_bytes=app.settings.api.max_body_bytes)  # outermost: before the token
    for router in ROUTERS:
        api.include_router(router)
    console.install(api, tokens, sources)
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
            elif not grant.may(API):
                denied = ApiProblem(403, "Forbidden", "this token is not for the API (its scopes)", "forbidden")
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


def server(
    app: bootstrap.App, tokens: Tokens, host: str, port: int, sources: SourceStates | None = None
) -> uvicorn.Server:
    """A uvicorn server for the API and its console (not started): `run()` serves in this thread until it is told
    to exit."""
    config = app.settings.api
    limits = http_server.Limits(max_connections=config.max_connections, header_timeout=config.header_timeout)
    return http_server.build(create_app(app, tokens, sources), host, port, limits)
