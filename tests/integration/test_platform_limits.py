"""What one client may cost the platform API, through uvicorn for real on loopback and raw sockets: a body larger
than `api.max_body_bytes` is refused with 413 before it is read, a connection that does not send its request's
head within `api.header_timeout` is closed, and past `api.max_connections` a connection is answered 503."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap, platform_api, settings
from gateway.access import Tokens
from tests.conftest import FakeClock
from tests.integration.test_platform_api import ENV, TOKEN_A, TOKENS_TOML, write_api_config
from tests.support.worker import wait_until

MIB = 1_048_576
AUTH = f"Authorization: Bearer {TOKEN_A}\r\n"


@contextmanager
def serving(folder: Path, clock: FakeClock, **limits: Any) -> Iterator[int]:
    """uvicorn serving the API over a fresh SQLite store, with these `[api]` settings, in a thread; its port."""
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in limits.items())
    config = write_api_config(folder, TOKENS_TOML.replace("enabled = true\n", f"enabled = true\n{table}"))
    app = bootstrap.build(settings.load(config, environ={}), clock=clock)
    server = platform_api.server(app, Tokens.from_settings(app.settings, environ=ENV), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 10, "uvicorn started")
        assert server.started, "the server stopped"
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        app.close()
    assert not thread.is_alive()


Serve = Callable[..., int]


@pytest.fixture
def serve(tmp_path: Path, clock: FakeClock) -> Iterator[Serve]:
    """serve(**limits) starts the API with these `[api]` settings and gives its port; stopped at the end."""
    with ExitStack() as stack:
        yield lambda **limits: stack.enter_context(serving(tmp_path, clock, **limits))


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the one answer on `connection` (read until the server closes it, or its
    Content-Length is in); socket.timeout if none comes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "closed in the middle of the answer"
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server closed the connection (EOF, or a reset)."""
    try:
        return connection.recv(65536) == b""
    except ConnectionResetError:
        return True


def stock_request(length_header: str, extra: str = "") -> bytes:
    return (
        f"PUT /v1/partners/acme/stock/EGGS HTTP/1.1\r\nHost: gateway\r\n{AUTH}"
        f"Content-Type: application/json\r\n{length_header}\r\n{extra}\r\n"
    ).encode()


def chunked(body: bytes, size: int, *, last: bool = True) -> bytes:
    """`body` in chunks of `size` bytes; with `last`, the closing empty chunk too."""
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + (b"0\r\n\r\n" if last else b"")


def padded(size: int) -> bytes:
    """A valid stock body of exactly `size` bytes (spaces are JSON whitespace)."""
    core = b'{"quantity": 3}'
    return core[:-1] + b" " * (size - len(core)) + b"}"


# the body


def test_a_declared_body_over_1_mib_is_413_before_it_is_sent(serve: Serve) -> None:
    """Content-Length one byte over the default 1 MiB is answered 413 problem details from the headers alone."""
    port = serve()
    with connect(port) as connection:
        connection.sendall(stock_request(f"Content-Length: {MIB + 1}"))  # and not a byte of the body
        status, headers, body = answer(connection)
        assert status == 413
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        problem = json.loads(body)
        assert (problem["status"], problem["code"], problem["max_body_bytes"]) == (413, "body_too_large", MIB)
        assert "api.max_body_bytes" in problem["detail"]
        assert closed_by_server(connection)


def test_a_chunked_body_growing_past_the_limit_is_413(serve: Serve) -> None:
    """A chunked body (no Content-Length) is counted as it streams: one byte past the limit it is 413, without
    waiting for the rest."""
    port = serve(max_body_bytes=2048)
    with connect(port) as connection:  # 2,049 bytes sent of a body that does not end
        connection.sendall(stock_request("Transfer-Encoding: chunked") + chunked(padded(4000)[:2049], 500, last=False))
        status, _, body = answer(connection)
        assert status == 413, body
        assert json.loads(body)["code"] == "body_too_large"
        assert closed_by_server(connection)
    with connect(port) as connection:  # at the limit exactly: taken
        connection.sendall(stock_request("Transfer-Encoding: chunked") + chunked(padded(2048), 500))
        status, _, body = answer(connection)
        assert status == 200, body


def test_a_body_at_the_limit_is_taken_and_one_byte_more_is_refused_unread(serve: Serve) -> None:
    """With Content-Length, the limit is exact: max_body_bytes is applied, one more byte is 413 without reading."""
    port = serve(max_body_bytes=2048)
    with connect(port) as connection:
        connection.sendall(stock_request("Content-Length: 2048") + padded(2048))
        status, _, body = answer(connection)
        assert status == 200, body
    with connect(port) as connection:
        connection.sendall(stock_request("Content-Length: 2049"))
        status, _, body = answer(connection)
        assert (status, json.loads(body)["code"]) == (413, "body_too_large")


# slow and idle clients

HALF_HEAD = f"GET /v1/partners/acme/ats HTTP/1.1\r\nHost: gateway\r\n{AUTH}".encode()  # no blank line: unfinished
FULL_GET = HALF_HEAD + b"\r\n"


def test_a_connection_that_does_not_send_its_head_in_time_gets_408_and_is_closed(serve: Serve) -> None:
    """Half a head, or nothing at all, within api.header_timeout: 408 problem details, then the server closes."""
    port = serve(header_timeout=0.3)
    with connect(port) as silent, connect(port) as half:
        half.sendall(HALF_HEAD)
        for connection in (silent, half):
            status, headers, body = answer(connection)
            assert (status, headers["connection"], json.loads(body)["code"]) == (408, "close", "header_timeout")
            assert "api.header_timeout" in json.loads(body)["detail"]
            assert closed_by_server(connection)


def test_each_request_on_a_kept_alive_connection_has_the_header_timeout(serve: Serve) -> None:
    """A whole request is answered; the next one's head, left unfinished on the same connection, gets 408."""
    port = serve(header_timeout=0.3)
    with connect(port) as connection:
        connection.sendall(FULL_GET)
        status, headers, _ = answer(connection)
        assert (status, headers.get("connection")) == (200, None)  # kept alive
        connection.sendall(HALF_HEAD)
        status, _, body = answer(connection)
        assert (status, json.loads(body)["code"]) == (408, "header_timeout")
        assert closed_by_server(connection)


def test_a_connection_kept_busy_past_the_header_timeout_is_not_cut_and_its_next_head_has_the_whole_timeout(
    serve: Serve,
) -> None:
    """Requests one after another for three header timeouts are all answered (the deadline moves on with each
    answer); a head left unfinished after them still gets its 408."""
    port = serve(header_timeout=0.3)
    with connect(port) as connection:
        started = time.monotonic()
        while time.monotonic() - started < 0.9:
            connection.sendall(FULL_GET)
            status, headers, _ = answer(connection)
            assert (status, headers.get("connection")) == (200, None)
            time.sleep(0.05)  # the client's pace, not a wait for the server
        connection.sendall(HALF_HEAD)
        status, _, body = answer(connection)
        assert (status, json.loads(body)["code"]) == (408, "header_timeout")
        assert closed_by_server(connection)


def test_past_max_connections_a_connection_is_answered_503_at_once_and_closed(serve: Serve) -> None:
    """With max_connections open (each holding half a head), one more gets 503 problem details and is closed;
    once one of them goes, a new connection is served again."""
    port = serve(max_connections=3)
    held = [connect(port) for _ in range(3)]
    try:
        for connection in held:
            connection.sendall(HALF_HEAD)
        with connect(port) as extra:
            status, headers, body = answer(extra)  # before it sent anything
            assert (status, headers["retry-after"], headers["connection"]) == (503, "1", "close")
            problem = json.loads(body)
            assert (problem["code"], problem["status"]) == ("too_many_connections", 503)
            assert "api.max_connections" in problem["detail"]
            assert closed_by_server(extra)
        held.pop().close()

        def served() -> bool:
            with connect(port) as again:
                again.sendall(FULL_GET)
                return answer(again)[0] == 200

        wait_until(served, 10, "a connection served once one of the three closed")
    finally:
        for connection in held:
            connection.close()


def descriptors_after_build(soft: int, hard: int) -> tuple[int, list[dict[str, Any]]]:
    """In a process of its own started with these limits of open files: the soft limit once the API server (200
    connections) is built, and the log lines."""
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))\n"
        "from gateway import logs\n"
        "from gateway.platform_api import http_server\n"
        "logs.configure('json', sys.stdout, 'info')\n"
        "async def app(scope, receive, send): pass\n"
        "http_server.build(app, '127.0.0.1', 0, http_server.Limits(max_connections=200, header_timeout=10))\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    *lines, limit = done.stdout.splitlines()
    return int(limit), [json.loads(line) for line in lines]


def test_the_open_file_limit_is_raised_for_max_connections_or_a_warning_says_it_cannot_be() -> None:
    """The soft limit is raised (up to the hard one) to hold max_connections and the rest of the process; when
    the hard limit is too low, a warning at start names what to change."""
    limit, lines = descriptors_after_build(100, 1000)
    assert limit == 200 + 128 + 64
    assert [(e["event"], e["before"], e["after"]) for e in lines] == [("api_descriptor_limit_raised", 100, limit)]
    limit, lines = descriptors_after_build(100, 150)
    assert limit == 150
    assert [e["event"] for e in lines] == ["api_descriptor_limit_raised", "api_descriptors_short"]
    assert (lines[1]["limit"], lines[1]["needed"]) == (150, 392)
    assert "api.max_connections" in lines[1]["hint"]
