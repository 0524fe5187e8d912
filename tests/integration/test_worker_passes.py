"""The worker's passes over a source, in process (Worker.start and stop, no signals): a burst larger than
`max_files_per_poll` is taken pass after pass at once, not one pass per rescan interval; and its daily retention
run (gateway/service/purge.py)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Table, func, select

from gateway import bootstrap, settings
from gateway.domain import instant
from gateway.formats.rows import Kind
from gateway.store import schema
from gateway.store.sql import SqlStore
from gateway.worker import Worker
from gateway.worker.jobs import PURGE_JITTER
from tests.conftest import FakeClock, write_config


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


def test_the_worker_purges_what_retention_no_longer_keeps_at_start_and_daily_with_jitter(tmp_path: Path) -> None:
    """A copy kept 31 days ago and a ledger entry received 100 days ago (its content's digest kept) are removed soon
    after the start, a copy kept yesterday stays; the job comes back daily, up to an hour late (jitter)."""
    config = write_config(tmp_path, {"p": {"stock_mode": "simple"}})
    loaded = settings.load(config, environ={})
    long_ago = FakeClock()
    long_ago.now = instant.from_datetime(datetime.now(UTC) - timedelta(days=100))
    app = bootstrap.build(loaded, clock=long_ago)
    (tmp_path / "a.csv").write_text("sku,quantity\nA,1\n")
    assert app.ingestor.ingest("p", Kind.STOCK, tmp_path / "a.csv").outcome == "applied"
    app.close()
    kept = tmp_path / "var" / "items" / "p"
    old, recent = kept / "2", kept / "3"
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
        assert (job.trigger.interval.total_seconds(), job.trigger.jitter) == (86_400, PURGE_JITTER)
        deadline = time.monotonic() + 30
        while old.exists() or (kept / "1").exists():
            assert time.monotonic() < deadline, "the copies kept 31 and 100 days ago are still there"
            time.sleep(0.05)
        assert recent.exists()
        store = worker.running.app.store
        deadline = time.monotonic() + 30
        while _count(store, schema.ingest_ledger):
            assert time.monotonic() < deadline, "the ledger entry received 100 days ago is still there"
            time.sleep(0.05)
        assert _count(store, schema.ledger_digests) == 1
    finally:
        worker.stop()


def _count(store: SqlStore, table: Table) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).select_from(table)).scalar_one())
