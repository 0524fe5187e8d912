"""The platform API while a large snapshot is applied (issue 13, item 8), on a real SQLite file and a real uvicorn.

The snapshot is applied by the same process (as `gateway run` with the API enabled does), in one transaction that
holds SQLite's writer: reads answer beside it, about as fast as when idle, and commands are answered 503 with
Retry-After once `[api] write_wait` has passed, while it still runs. Its progress callback keeps it going until the
test has measured (then ends it, rolled back), so the measure never depends on how fast this machine applies rows.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway import bootstrap, settings
from gateway.access import Tokens
from gateway.formats.rows import Kind
from tests.conftest import FakeClock
from tests.integration.test_platform_api import (
    ENV,
    TOKENS_TOML,
    Live,
    auth,
    order_body,
    serving,
    write_api_config,
)

WRITE_WAIT = 0.5  # [api] write_wait of these tests: seconds
ROWS = 200_000  # the snapshot: more rows than this machine applies while the test measures
COMMANDS = 45  # placements at once during the snapshot: more than the event loop's 40 default threads
READS = 30
RATIO_BOUND = 10.0  # median read while the snapshot is applied / median idle read (measured about 2, see README)


class _Enough(Exception):
    """The test has measured: the snapshot ends here (rolled back)."""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The API on a SQLite store (write_wait 0.5 s), served by uvicorn on a free loopback port in a thread."""
    api = TOKENS_TOML.replace("enabled = true\n", f"enabled = true\nwrite_wait = {WRITE_WAIT}\n", 1)
    app = bootstrap.build(settings.load(write_api_config(tmp_path, api), environ={}), clock=FakeClock())
    assert app.settings.api.write_wait == WRITE_WAIT
    try:
        with serving(app, Tokens.from_settings(app.settings, environ=ENV)) as running:
            yield running
    finally:
        app.close()


def snapshot(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("sku,quantity,as_of\n")
        out.writelines(f"SKU{i:07d},{i % 500 + 1},2026-01-01T00:00:00Z\n" for i in range(rows))
    return path


def timed_read(client: httpx.Client, live: Live) -> float:
    started = time.perf_counter()
    answer = client.get(f"{live.base}/ats", params={"sku": "EGGS"}, headers=auth())
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def test_reads_answer_and_commands_are_refused_at_once_while_a_large_snapshot_holds_the_writer(
    live: Live, tmp_path: Path
) -> None:
    """While a large snapshot holds SQLite's writer, reads answer about as fast as idle ones and a crowd of
    placements is answered 503 with Retry-After within write_wait, before the snapshot ends."""
    live.app.commands.set_stock("acme", "EGGS", 10, None)
    path = snapshot(tmp_path / "big.csv", ROWS)
    with httpx.Client(timeout=10) as reader:
        idle = [timed_read(reader, live) for _ in range(READS)]

        started, measured, ended = threading.Event(), threading.Event(), threading.Event()

        def progress(rows: int) -> None:
            started.set()
            if rows >= ROWS:  # the file is read: hold the writer, idle, until the test has measured
                measured.wait(60)
            if measured.is_set():
                raise _Enough

        def apply() -> None:
            try:
                live.app.ingestor.ingest("acme", Kind.STOCK, path, progress=progress)
            except _Enough:
                pass
            finally:
                ended.set()

        ingest = threading.Thread(target=apply, name="snapshot")
        ingest.start()

        def place(i: int) -> tuple[httpx.Response, bool]:
            body = order_body(f"O{i}", ("EGGS", 1))
            with httpx.Client(timeout=30) as client:
                answer = client.post(f"{live.base}/orders", json=body, headers=auth(**{"Idempotency-Key": f"k{i}"}))
            return answer, ended.is_set()

        try:
            assert started.wait(30), "the snapshot did not start"
            with ThreadPoolExecutor(COMMANDS) as pool:
                placing = [pool.submit(place, i) for i in range(COMMANDS)]
                during: list[float] = []
                for _ in range(READS):
                    during.append(timed_read(reader, live))
                    assert not ended.is_set(), "the snapshot ended while the reads were measured"
                answers = [future.result(timeout=30) for future in placing]
        finally:
            measured.set()
            ingest.join(60)
    assert not ingest.is_alive()
    for answer, after_the_snapshot in answers:
        assert not after_the_snapshot, "a placement was answered only once the snapshot had ended"
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "store_busy"
        assert answer.headers["Retry-After"] == "1"
    ratio = statistics.median(during) / statistics.median(idle)
    print(f"\nread latency while a snapshot is applied: {ratio:.1f}x the idle median")  # for the README
    assert ratio < RATIO_BOUND, (statistics.median(idle), statistics.median(during))


def test_a_command_gives_up_within_write_wait_when_another_process_holds_the_writer(live: Live) -> None:
    """Another process's SQLite write lock (here a raw connection's) makes a command a 503 with Retry-After after
    write_wait, not after SQLite's 30 s busy time-out; the store is written again once the lock is gone."""
    database = live.app.store.engine.url.database
    assert database is not None
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    answered = threading.Event()

    def put() -> httpx.Response:
        try:
            return httpx.put(f"{live.base}/stock/EGGS", json={"quantity": 5}, headers=auth(), timeout=60)
        finally:
            answered.set()

    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(put)
            held_long_enough = answered.wait(10 * WRITE_WAIT + 5)
            blocker.execute("ROLLBACK")
            answer = pending.result()
    finally:
        blocker.close()
    assert held_long_enough, "the command waited for the other process's writer past write_wait"
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert "busy" in answer.json()["detail"]
    again = httpx.put(f"{live.base}/stock/EGGS", json={"quantity": 5}, headers=auth(), timeout=10)
    assert again.status_code == 200, again.text
