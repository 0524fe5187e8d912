"""The worker's passes over a source, in process (Worker.start and stop, no signals): a burst larger than
`max_files_per_poll` is taken pass after pass at once, not one pass per rescan interval; and its daily pruning of
the kept copies of applied items."""

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


def test_the_worker_prunes_kept_copies_older_than_items_days_at_start_and_daily(tmp_path: Path) -> None:
    """A copy kept 31 days ago is removed soon after the start, one kept yesterday stays; the job comes back daily."""
    config = write_config(tmp_path, {"p": {"stock_mode": "simple"}})
    kept = tmp_path / "var" / "items" / "p"
    kept.mkdir(parents=True)
    old, recent = kept / "1", kept / "2"
    for path, days in ((old, 31), (recent, 1)):
        path.write_text("sku,quantity\nA,1\n")
        then = time.time() - days * 86_400
        os.utime(path, (then, then))
    worker = Worker(config)
    worker.settings = worker.settings.model_copy(
        update={"worker": worker.settings.worker.model_copy(update={"health_port": None})}
    )
    worker.start()
    try:
        assert worker.running is not None
        job = worker.running.scheduler.get_job("retention")
        assert job is not None
        assert job.trigger.interval.total_seconds() == 86_400
        deadline = time.monotonic() + 30
        while old.exists():
            assert time.monotonic() < deadline, "the copy kept 31 days ago is still there"
            time.sleep(0.05)
        assert recent.exists()
    finally:
        worker.stop()
