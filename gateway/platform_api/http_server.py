"""The platform API's HTTP server: uvicorn on httptools (llhttp, in C: a request's parsing costs a fraction of h11's),
with what it lacks against slow and idle clients.

Inside `gateway run` the API shares the worker's file descriptors with the sources, the store and the delivery,
so a crowd of clients must never take them all:

- at most `api.max_connections` connections are open at once; one more is answered 503 and closed at once;
- a connection has `api.header_timeout` seconds to send its request's head (from its opening, or from the end of
  the previous answer); then it is answered 408 and closed, whatever it sent by then;
- when accepting fails for want of descriptors, asyncio would log a traceback for each attempt, many times a
  second: it is logged once a minute instead (`api_accept_failed`, with the count), as are the refusals above.
"""

from __future__ import annotations

import asyncio
import errno
import json
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import logs

log = logs.get(__name__)

LOG_INTERVAL = 60.0  # seconds between two log lines of one kind of refusal
# the listen queue, and the most connections accepted in one go: a burst past max_connections costs at most this
# many descriptors more, for the moment it takes to answer them 503
MAX_BACKLOG = 128
# descriptors left for the rest of the process (store, sources, delivery) when the API holds all it may
RESERVED_DESCRIPTORS = 64
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_EARLY = 0.001  # seconds: a timer that comes due this close to its deadline has met it (the loop's clock is coarse)


class Throttled:
    """One log event at most once per `interval` seconds, counting what happened in between (`count`)."""

    def __init__(self, event: str, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.event = event
        self.interval = interval
        self.clock = clock
        self.count = 0
        self._last: float | None = None

    def hit(self, **fields: Any) -> None:
        self.count += 1
        now = self.clock()
        if self._last is None or now - self._last >= self.interval:
            log.warning(self.event, count=self.count, per_seconds=self.interval, **fields)
            self._last = now
            self.count = 0


@dataclass
class Limits:
    """What the server allows its clients, and the throttled logs of what it refused."""

    max_connections: int
    header_timeout: float
    refused: Throttled = field(default_factory=lambda: Throttled("api_connections_refused"))
    timed_out: Throttled = field(default_factory=lambda: Throttled("api_header_timeouts"))
    accept_failed: Throttled = field(default_factory=lambda: Throttled("api_accept_failed"))


def _answer(status: int, reason: str, code: str, detail: str, retry_after: bool = False) -> bytes:
    """A complete HTTP/1.1 answer with problem details, closing the connection (written raw: the parser is not
    involved, the request was never read)."""
    body = json.dumps(
        {
            "type": f"https://stock-gateway.example/problems/{code}",
            "title": reason,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    retry = "Retry-After: 1\r\n" if retry_after else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        f"{retry}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection limit and a deadline for each request's head."""

    limits: ClassVar[Limits]
    _busy: ClassVar[bytes]
    _late: ClassVar[bytes]
    _refused = False
    _head_timer: asyncio.TimerHandle | None = None
    _head_deadline = 0.0  # the loop's time by which the next request's head is due

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.limits.refused.hit(max_connections=self.limits.max_connections)
            transport.write(self._busy)
            transport.close()
            return
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._stop_waiting()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request's head has its own deadline

    def _await_head(self) -> None:
        """The next request's head is due within header_timeout from now. One timer a connection, moved on when it
        comes due early (requests were answered since), rather than a timer made and cancelled per request."""
        self._head_deadline = self.loop.time() + self.limits.header_timeout
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_due)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_due(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._awaiting_head():
            return  # closed, or a request is being read or answered: its answer sets the next deadline
        if self._head_deadline - self.loop.time() > _EARLY:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_due)
            return
        self.limits.timed_out.hit(header_timeout=self.limits.header_timeout)
        self.transport.write(self._late)
        self.transport.close()

    def _awaiting_head(self) -> bool:
        """No request is being read or answered: the last one (if any) was answered and none is queued behind it.
        (A whole head makes the current cycle a new one, unanswered, or queues it when pipelined.)"""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline


def _protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """The protocol class of one server (uvicorn makes one instance per connection from a class)."""
    busy = _answer(
        503,
        "Service Unavailable",
        "too_many_connections",
        f"the server has {limits.max_connections} connections open (api.max_connections): try again",
        retry_after=True,
    )
    late = _answer(
        408,
        "Request Timeout",
        "header_timeout",
        f"the request's head did not arrive within {limits.header_timeout:g} s (api.header_timeout)",
    )
    return type("GatewayHttpProtocol", (_LimitedHttpTools,), {"limits": limits, "_busy": busy, "_late": late})


class ApiServer(uvicorn.Server):
    """uvicorn's server, logging a failure to accept (no descriptor left) once a minute rather than each time."""

    def __init__(self, config: uvicorn.Config, limits: Limits) -> None:
        super().__init__(config)
        self.limits = limits

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().set_exception_handler(self._loop_error)
        await super().serve(sockets)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES and "accept" in context.get("message", ""):
            # asyncio stops accepting for a second and tries again; nothing else to do but say so, once in a while
            self.limits.accept_failed.hit(error=exc.strerror, errno=errno.errorcode.get(exc.errno or 0, ""))
            return
        loop.default_exception_handler(context)


def build(app: ASGIApp, host: str, port: int, limits: Limits) -> ApiServer:
    """A server for `app` (not started): `run()` serves in this thread until it is told to exit."""
    backlog = min(limits.max_connections, MAX_BACKLOG)
    _descriptor_budget(limits.max_connections + backlog + RESERVED_DESCRIPTORS)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=_protocol(limits),
        backlog=backlog,
    )
    return ApiServer(config, limits)


def _descriptor_budget(needed: int) -> None:
    """The process may open `needed` descriptors for the API and the rest: the soft limit raised (up to the hard
    one) when it is lower; a warning when even the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        log.info("api_descriptor_limit_raised", before=soft, after=target)
        soft = target
    if soft < needed:
        log.warning(
            "api_descriptors_short",
            limit=soft,
            needed=needed,
            hint="lower api.max_connections, or raise the process's open-file limit (ulimit -n, LimitNOFILE=)",
        )
