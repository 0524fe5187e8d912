"""The worker (`gateway run`) serving the platform API to a crowd of slow clients, as a real process under a low
limit of open file descriptors: the API holds at most `api.max_connections` of them, answers 503 past it, says so
once rather than in a loop, and the drop folder goes on being read and applied."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.worker import WorkerProcess, drop, stock_csv, wait_until, write_worker_config

TOKEN_ENV = "E2E_PLATFORM_TOKEN"  # noqa: S105 - the name of the variable, not a secret
TOKEN = "e2e-platform-token-0123456789"  # noqa: S105 - a token of a throwaway test worker
NOFILE = 256  # the worker's limit: 300 connections held open would take every descriptor it has
CLIENTS = 300
MAX_CONNECTIONS = 60
HALF_HEAD = b"GET /v1/partners/shop/ats HTTP/1.1\r\nHost: gateway\r\n"  # never finished


Start = Callable[..., WorkerProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """start(nofile, **api) runs a worker with a drop folder and the API enabled with these `[api]` settings, limited
    to `nofile` descriptors; killed at the end."""
    started: list[WorkerProcess] = []

    def run(nofile: int, **settings: int) -> WorkerProcess:
        source = {"type": "folder", "name": "drop", "kind": "stock", "path": str(tmp_path / "drop")}
        config = write_worker_config(tmp_path / "run", {"shop": {"stock_mode": "simple", "sources": [source]}})
        table = "".join(f"{key} = {value}\n" for key, value in settings.items())
        api = (
            f"\n[api]\nenabled = true\nport = 0\n{table}\n"
            f'[[api.tokens]]\nname = "platform"\ntoken_env = "{TOKEN_ENV}"\npartners = ["*"]\n'
        )
        config.write_text(config.read_text(encoding="utf-8") + api, encoding="utf-8")
        process = WorkerProcess(config, {TOKEN_ENV: TOKEN}, nofile=nofile)
        started.append(process)
        return process.start()

    yield run
    for process in started:
        process.kill()


class Crowd:
    """Clients that each open a connection and send half a request's head, then wait; what each one got back."""

    def __init__(self, port: int, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.received: dict[socket.socket, bytes] = {}
        self.closed: set[socket.socket] = set()
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(HALF_HEAD)
            client.setblocking(False)
            self.received[client] = b""
            self.selector.register(client, selectors.EVENT_READ)

    def read(self) -> None:
        """Take in whatever the server sent or closed by now."""
        for key, _ in self.selector.select(timeout=0.05):
            client = key.fileobj
            assert isinstance(client, socket.socket)
            try:
                data = client.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                self.received[client] += data
            else:
                self.closed.add(client)
                self.selector.unregister(client)

    def refused(self) -> int:
        """How many were answered 503 and closed."""
        self.read()
        return sum(1 for c in self.closed if self.received[c].startswith(b"HTTP/1.1 503 "))

    def waiting(self) -> int:
        """How many are still open with nothing received: held by the server, waiting for their heads."""
        self.read()
        return sum(1 for c, data in self.received.items() if c not in self.closed and not data)

    def close(self) -> None:
        for client in self.received:
            client.close()
        self.selector.close()


def test_a_dropped_file_is_applied_while_300_slow_clients_crowd_the_api(start: Start, tmp_path: Path) -> None:
    """300 connections each sending half a head to a worker limited to 256 descriptors: 60 are held, 240 get 503
    (logged once, not in a loop), and a file dropped meanwhile is applied and archived."""
    worker = start(NOFILE, max_connections=MAX_CONNECTIONS)
    port = worker.events("worker_started")[0]["api_port"]
    crowd = Crowd(port, CLIENTS)
    try:
        wait_until(lambda: crowd.refused() == CLIENTS - MAX_CONNECTIONS, 20, lambda: f"{crowd.refused()} answered 503")
        drop(tmp_path / "drop", "levels.csv", stock_csv({"EGGS": 12, "MILK": 3}, "2026-01-01T10:00:00Z"))
        archived = worker.wait_log("file_archived", timeout=20, file="levels.csv")
        assert archived["outcome"] == "applied"
        assert (tmp_path / "drop" / "archive" / "levels.csv").exists()
        assert crowd.waiting() == MAX_CONNECTIONS  # still connected, all along
        assert crowd.refused() == CLIENTS - MAX_CONNECTIONS
    finally:
        crowd.close()
    lines = worker.lines()
    assert len(worker.events("api_connections_refused")) == 1  # once a minute, with the count
    assert len(worker.events("api_accept_failed")) <= 1
    assert not [line for line in lines if line.get("level") == "error"], lines
    assert len(lines) < 50, [line.get("event") for line in lines]
    assert worker.stderr() == ""


def test_descriptors_running_out_anyway_are_logged_once_and_the_api_recovers(start: Start) -> None:
    """With max_connections above what 64 descriptors allow (a warning at start), held connections exhaust them:
    the failed accepts are one log line, not a traceback per attempt, and the API answers again once they go."""
    worker = start(64)  # max_connections 200 by default
    assert worker.events("api_descriptors_short")[0]["limit"] == 64
    port = worker.events("worker_started")[0]["api_port"]
    crowd = Crowd(port, 100)
    try:
        worker.wait_log("api_accept_failed", timeout=20)
    finally:
        crowd.close()

    def answered() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(HALF_HEAD + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
            return client.recv(65536).startswith(b"HTTP/1.1 200 ")

    wait_until(answered, 20, "the API answering again")
    failed = worker.events("api_accept_failed")
    assert len(failed) == 1, failed
    assert failed[0]["errno"] == "EMFILE"
    assert worker.stderr() == ""
