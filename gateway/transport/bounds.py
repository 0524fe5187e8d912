"""Bounds on one HTTP exchange with a partner: a total deadline, a body size limit, redirects kept to one origin.

A read timeout bounds each wait for a byte, not the exchange: a partner sending a byte a second holds a request
for ever. `Deadline` bounds the whole exchange, redirects and body included: when it passes, every socket the
exchange used is shut, which wakes a read (or a write) blocked on it, and the caller sees `expired` (one thread per
process keeps the time of every exchange). It reaches the sockets through `GuardedAdapter`, the requests adapter
every partner Session mounts, whose connections report each socket they use to the deadline running on their
thread.

`read_limited` reads a streamed body counting bytes after decompression (urllib3 decodes a bounded amount per
read, so a gzip bomb never inflates at once) and stops past the limit with `PageTooLarge`. `same_origin` is the
redirect rule: same scheme, host and port.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from gateway.transport.errors import EXCERPT_BYTES, PageTooLarge

MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

__all__ = [  # with the two names the service layer imports from here though they now live in errors.py
    "EXCERPT_BYTES",
    "MAX_REDIRECTS",
    "Deadline",
    "GuardedAdapter",
    "PageTooLarge",
    "origin",
    "read_excerpt",
    "read_limited",
    "same_origin",
    "show_origin",
]

_running: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("gateway_http_deadline", default=None)


class Deadline:
    """The time one exchange may take in all (`with Deadline(seconds) as deadline:` around it, on one thread)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._over = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._token: contextvars.Token[Deadline | None] | None = None

    def __enter__(self) -> Self:
        self._token = _running.set(self)
        _WATCH.add(time.monotonic() + self.seconds, self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            self._over = True
            self._sockets.clear()
        if self._token is not None:
            _running.reset(self._token)

    @property
    def over(self) -> bool:
        """Whether the exchange has ended (its deadline no longer matters)."""
        return self._over

    def watch(self, sock: socket.socket) -> None:
        """A socket the exchange uses: shut at the deadline (at once if it passed already)."""
        with self._lock:
            if self._over:
                return
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def expire(self) -> None:
        """The deadline has passed: shut the exchange's sockets (nothing if the exchange is over)."""
        with self._lock:
            if self._over:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


class _Watch:
    """The one thread of a process that expires deadlines, each at its time (a timer thread per exchange cost a
    delivery more than its JSON: starting a thread waits for it to run). The deadlines of exchanges that are over
    are dropped from the front of the queue as new ones come, and passed over if they come due."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._queue: list[tuple[float, int, Deadline]] = []  # a heap by time
        self._count = itertools.count()  # ties in time are broken by the order of entry, never by the deadline
        self._thread: threading.Thread | None = None

    def add(self, when: float, deadline: Deadline) -> None:
        """Expire `deadline` at `when` (time.monotonic)."""
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gateway-http-deadlines", daemon=True)
                self._thread.start()
            while self._queue and self._queue[0][2].over:  # exchanges end in about the order they began
                heapq.heappop(self._queue)
            earliest = self._queue[0][0] if self._queue else None
            heapq.heappush(self._queue, (when, next(self._count), deadline))
            if earliest is None or when < earliest:  # the thread sleeps until the earliest: this one is sooner
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    if not self._queue:
                        self._changed.wait()
                        continue
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._changed.wait(wait)
                due = heapq.heappop(self._queue)[2]
            due.expire()

    def forked(self) -> None:
        """In a forked child: no thread runs here yet, and the parent's exchanges are not this process's."""
        self._changed = threading.Condition(threading.Lock())
        self._queue = []
        self._thread = None


_WATCH = _Watch()
os.register_at_fork(after_in_child=_WATCH.forked)


def _shut(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for a TLS socket: ssl.SSLSocket.shutdown would drop its TLS state under the
    # reading thread; shutting the descriptor makes that thread's read return end-of-file, then fail
    with contextlib.suppress(OSError):  # closed already, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    deadline = _running.get()
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedConnection(HTTPConnection):
    """A connection that shows each socket it uses (new or kept alive) to the deadline running on its thread."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    # urllib3's signature, which breaks http.client's on purpose (urllib3 says so on its own `request`)
    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: Any = None,  # as requests gives it, passed through
        headers: Any = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        _watch(self.sock)  # a connection kept alive: its socket exists already
        super().request(
            method,
            url,
            body,
            headers,
            chunked=chunked,
            preload_content=preload_content,
            decode_content=decode_content,
            enforce_content_length=enforce_content_length,
        )


class _WatchedTlsConnection(_WatchedConnection, HTTPSConnection):
    """The same over TLS."""


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose connections a `Deadline` can cut (mount it for http:// and https://)."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: object
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}


def read_limited(url: str, response: requests.Response, limit: int) -> bytes:
    """The body of a streamed response (`stream=True`), decompressed; PageTooLarge past `limit` bytes."""
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise PageTooLarge(
                url, bytes(body[: limit + 1]), limit, response.raw.tell(), response.headers.get("Content-Encoding")
            )
    return bytes(body)


def read_excerpt(response: requests.Response, limit: int) -> bytes:
    """At most the first `limit` bytes of a streamed response's body (decompressed); the rest is not read."""
    body = bytearray()
    for chunk in response.iter_content(min(limit, _CHUNK)):
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def origin(url: str) -> tuple[str, str, int | None] | None:
    """The scheme, host and port of a URL (the scheme's default port when none is given); None when unreadable."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number, a bad IPv6 literal
        return None


def same_origin(first: str, second: str) -> bool:
    """Whether two URLs have the same scheme, host and port."""
    found = origin(second)
    return found is not None and found == origin(first)


def show_origin(url: str) -> str:
    """The origin of a URL as text, never its path, query or credentials (which may hold a secret)."""
    found = origin(url)
    if found is None:
        return "an unreadable URL"
    scheme, host, port = found
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")
