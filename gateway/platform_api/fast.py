"""The API's busiest request, a placement (POST .../orders), answered without the framework's routing and
dependency machinery when the route would take the request as it is.

FastAPI's way to the route (every router's routes tried in turn, the route's dependencies solved, its request and
response wrappers) costs more than reading the request and answering it. This middleware, inside the token and
body-size checks, answers a placement itself when the request is one the route takes as it is: JSON content, one
Idempotency-Key of 1 to 200 characters, a known partner, a body the route's model (OrderIn) takes. The answer is
the route's own (routes.orders.place_order), its refusals written as the exception handlers write them. Any other
request (a malformed body, no key, an unknown partner...) goes on to FastAPI, its body as read, and is answered
as ever: the route stays the one definition of what is taken, and of the OpenAPI document.
"""

from __future__ import annotations

import json
import re
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import bootstrap
from gateway.platform_api.problems import ApiProblem, busy
from gateway.platform_api.routes.orders import place_order
from gateway.platform_api.schemas import OrderIn
from gateway.store.port import StoreError

_ORDERS = re.compile(r"^/v1/partners/([^/]+)/orders$")
MAX_KEY = 200  # the route's Idempotency-Key: Header(min_length=1, max_length=200)


class FastPlacement:
    """Answers a placement the route would take as it is; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _ORDERS.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        read: deque[Message] = deque()
        body = await _body(receive, read)
        taken = None if body is None else _taken(scope, match.group(1), body)
        if taken is None:

            async def again() -> Message:  # what was read, then the rest
                return read.popleft() if read else await receive()

            await self.app(scope, again, send)
            return
        gateway, order, key = taken
        try:
            response = await place_order(gateway, match.group(1), order, key)
        except ApiProblem as problem:
            response = problem.response()
        except StoreError as exc:
            response = busy(exc)
        await response(scope, receive, send)


async def _body(receive: Receive, read: deque[Message]) -> bytes | None:
    """The whole body (each message kept in `read`); None when the client went away first."""
    parts = []
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _taken(scope: Scope, partner: str, body: bytes) -> tuple[bootstrap.App, OrderIn, str] | None:
    """The gateway, the order and its Idempotency-Key, when the route would take the request as it is."""
    gateway: bootstrap.App = scope["app"].state.gateway
    if partner not in gateway.settings.partners:
        return None
    keys = [value for name, value in scope["headers"] if name == b"idempotency-key"]
    types = [value for name, value in scope["headers"] if name == b"content-type"]
    if len(keys) != 1 or types != [b"application/json"]:
        return None
    key = keys[0].decode("latin-1")
    if not 1 <= len(key) <= MAX_KEY:
        return None
    try:
        # as the route reads a body (routes.common._Utf8Request), and validates it (in Python mode)
        order = OrderIn.model_validate(json.loads(body.decode("utf-8-sig")))
    except Exception:  # whatever the route makes of it, it answers
        return None
    return gateway, order, key
