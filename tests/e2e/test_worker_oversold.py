"""A running worker (`gateway run`, a real process) announces a SKU its snapshot made oversold and counts it on
/metrics (`gateway_oversold_skus{partner}`), as an operator watching its logs and its metrics would see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.worker import Gateway, WorkerProcess, drop, gateway, stock_csv, write_worker_config


@pytest.fixture
def spawned() -> Iterator[list[WorkerProcess]]:
    """Workers the test started, killed at its end if still running; commands left running, reaped."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()
    Gateway.reap()


def test_a_worker_logs_the_sku_its_snapshot_made_oversold_and_counts_it(
    tmp_path: Path, spawned: list[WorkerProcess]
) -> None:
    """Allocation 8 on W1, then a dropped snapshot with W1=5: one `oversold` line, the gauge at 1 for the partner
    (0 for the other one)."""
    folder = tmp_path / "drop"
    source = {"type": "folder", "name": "drop", "kind": "stock", "path": str(folder), "completion": "rename"}
    config = write_worker_config(
        tmp_path / "run",
        {"shop": {"stock_mode": "advanced", "sources": [source]}, "other": {"stock_mode": "advanced"}},
    )
    for sku in ("W1", "W2"):
        gateway(config, "stock", "set", "--partner", "shop", "--sku", sku, "--quantity", "10", "--as-of", "2026-01-01")
    gateway(config, "order", "place", "--partner", "shop", "--order-id", "O1", "--line", "W1:8", "--line", "W2:1")
    worker = WorkerProcess(config)
    spawned.append(worker)
    worker.start()
    assert worker.metrics()['gateway_oversold_skus{partner="shop"}'] == 0.0

    drop(folder, "stock.csv", stock_csv({"W1": 5, "W2": 5}, "2026-01-02T00:00:00Z"))
    worker.wait_log("file_archived", file="stock.csv")
    announced = [line for line in worker.lines() if line.get("event") == "oversold"]
    assert [(e["partner"], e["sku"], e["quantity"], e["allocated"], e["level"]) for e in announced] == [
        ("shop", "W1", 5, 8, "warning")
    ]
    metrics = worker.metrics()  # read from the store at the scrape: the file was applied before it was archived
    assert metrics['gateway_oversold_skus{partner="shop"}'] == 1.0
    assert metrics['gateway_oversold_skus{partner="other"}'] == 0.0
    assert worker.stop() == 0
