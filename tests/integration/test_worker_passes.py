"""The worker's passes over a source, in process (Worker.start and stop, no signals): a burst larger than
`max_files_per_poll` is taken pass after pass at once, not one pass per rescan interval."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gateway.worker import Worker
from tests.conftest import write_config


def test_a_burst_larger_than_max_files_per_poll_is_taken_in_passes_that_follow_each_other_at_once(
    tmp_path: Path,
) -> None:
    """30 files, 10 a pass, a rescan every 10 minutes and no file-system event after the start: all 30 are
    archived long before the first rescan would come."""
    drop = tmp_path / "drop"
    drop.mkdir()
    for n in range(30):
        (drop / f"f{n:02d}.csv").write_text(f"sku,quantity\nS{n:02d},{n}\n")
    source = {
        "name": "stock-in",
        "type": "folder",
        "kind": "stock",
        "path": "drop",
        "max_files_per_poll": 10,
        "rescan_seconds": 600,
    }
    config = write_config(tmp_path, {"p": {"stock_mode": "simple", "sources": [source]}})
    worker = Worker(config)
    worker.settings = worker.settings.model_copy(
        update={"worker": worker.settings.worker.model_copy(update={"health_port": None})}
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30  # a twentieth of the rescan interval
        while len(os.listdir(drop / "archive")) < 30:
            assert time.monotonic() < deadline, f"{len(os.listdir(drop / 'archive'))} of 30 files archived"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [name for name in os.listdir(drop) if name not in ("archive", "failed")] == []
