"""What one request may cost the platform API: its body is at most `api.max_body_bytes`.

A plain ASGI middleware: a declared Content-Length above the limit is answered 413 before a byte of the body is
read; a body without one (chunked) is counted as the application reads it, and refused with 413 once it grows past
the limit. Either way the connection is closed after the answer, so the rest of the body is never read.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import logs
from gateway.platform_api.problems import ApiProblem

log = logs.get(__name__)


class BodyLimit:
    """Refuses (413, problem details) a request whose body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, declared)
            return
        if declared is not None:  # the parser reads exactly that many bytes of body: nothing to count
            await self.app(scope, receive, send)
            return
        guard = _Counted(self.max_bytes, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.exceeded:  # the application's own failure, not the refusal it was told of
                raise
        if guard.exceeded and not guard.started:
            await self._refuse(scope, receive, send, None)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        log.warning(
            "api_body_too_large",
            path=scope.get("path"),
            content_length=declared,
            max_body_bytes=self.max_bytes,
        )
        await too_large(self.max_bytes)(scope, receive, send)


def too_large(max_bytes: int) -> Response:
    """413 problem details; the connection closes after it, so the rest of the body is never read."""
    problem = ApiProblem(
        413,
        "Content too large",
        f"the request body is larger than {max_bytes} bytes (api.max_body_bytes)",
        "body_too_large",
        max_body_bytes=max_bytes,
    )
    response = problem.response()
    response.headers["Connection"] = "close"
    return response


class _TooLarge(Exception):
    """The body grew past the limit while the application read it."""


class _Counted:
    """`receive` counting the body's bytes (raising _TooLarge past the limit) and `send` that drops whatever the
    application answers once the limit was passed: the answer is the 413."""

    def __init__(self, max_bytes: int, receive: Receive, send: Send) -> None:
        self.max_bytes = max_bytes
        self._receive, self._send = receive, send
        self.seen = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.max_bytes:
                self.exceeded = True
                raise _TooLarge(f"more than {self.max_bytes} bytes")
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the HTTP parser refuses such a request before it gets here
                return None
    return None
