"""A hostile partner served for real on 127.0.0.1: answers written byte for byte, as large or as slow as asked.

    with HostilePartner() as hostile:
        hostile.answer("/v1/stock", Answer(body=b"x" * 65536, repeat=64))     # 4 MiB, never held whole
        hostile.answer("/v1/stock", Answer(body=b" ", repeat=10_000, every=0.2))  # a byte every 0.2 s
        ... point the gateway at hostile.url ...

The fake partner (partner.py) speaks the contract; this one breaks it the ways a careless or hostile peer does:
a body larger than any page, a small gzip body that inflates enormously, a trickle that never ends. Each answer
is written piece by piece on the raw connection (HTTP/1.0: the connection closes after each answer, so a body
without Content-Length ends when it does). A waiting handler waits on an event that `stop()` sets, and a
handler whose client went away stops writing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    """What one path answers: `body` written `repeat` times, waiting `every` seconds before each piece after the
    first; with `trickle_head`, the status line and headers too go a byte at a time."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: bytes = b""
    repeat: int = 1
    every: float = 0.0
    length: bool = True  # send Content-Length (without it, the body ends when the connection closes)
    trickle_head: bool = False

    def head(self) -> bytes:
        lines = [f"HTTP/1.0 {self.status} Hostile", *(f"{k}: {v}" for k, v in self.headers.items())]
        if self.length:
            lines.append(f"Content-Length: {len(self.body) * self.repeat}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class Seen:
    """One request as received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class HostilePartner:
    """Answers by path (404 for any other), recording every request; on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self._answers: dict[str, Answer] = {}
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self.answered = 0  # requests whose handler is done writing (or gave up)
        self.bytes_written = 0
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                partner._serve(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                partner._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        """The base URL, `http://127.0.0.1:{port}/v1`."""
        return f"http://{HOST}:{self._server.server_address[1]}/v1"

    def answer(self, path: str, answer: Answer) -> None:
        """Answer this for the path (e.g. "/v1/stock"), from now on."""
        with self._lock:
            self._answers[path] = answer

    @property
    def seen(self) -> list[Seen]:
        """Every request received, in order."""
        with self._lock:
            return list(self._seen)

    def wait_answered(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` requests were answered (or given up on); AssertionError at the deadline."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.answered >= count, timeout):
                raise AssertionError(f"{self.answered} of {count} requests answered within {timeout} s")

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self._lock:
            self._seen.append(Seen(handler.command, parts.path, dict(parse_qsl(parts.query)), dict(handler.headers)))
            answer = self._answers.get(parts.path, Answer(404, body=b'{"error": "not found"}'))
        try:
            for piece in self._pieces(answer):
                handler.wfile.write(piece)
                handler.wfile.flush()
                with self._lock:
                    self.bytes_written += len(piece)
        except OSError:  # the client went away (or cut the connection): stop writing
            pass
        finally:
            with self._changed:
                self.answered += 1
                self._changed.notify_all()

    def _pieces(self, answer: Answer) -> Iterator[bytes]:
        head = answer.head()
        first = True
        for piece in [head[i : i + 1] for i in range(len(head))] if answer.trickle_head else [head]:
            if not first and self._stopping.wait(answer.every):
                return
            first = False
            yield piece
        for _ in range(answer.repeat):
            if answer.every and self._stopping.wait(answer.every):
                return
            yield answer.body
