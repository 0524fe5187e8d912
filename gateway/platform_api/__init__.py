"""The platform HTTP API (FastAPI on uvicorn): `create_app` builds it over the use cases, `server` serves it.

`app` wires the application (token check, body limit, problem details, the OpenAPI document); `routes` holds one
module per resource (ATS, orders, caps and stock), each parsing a request, calling one service function and
rendering its answer; `schemas` the bodies and answers; `problems` the refusals as RFC 9457 problem details;
`limits` the body limit; `http_server` the uvicorn server with its connection limits; `threads` the command
threads; `fast` a placement the route would take as it is, answered without the framework's machinery;
`console` the operator console (HTML pages under `/console/`).
"""

from __future__ import annotations

from gateway.platform_api.app import create_app, server

__all__ = ["create_app", "server"]
