"""Retention: what the gateway wrote, removed once it is older than `[retention]` keeps it, so that an unattended
worker's disk and tables stop growing. The worker runs it daily (gateway/worker/jobs.py), `gateway purge` from cron.

What goes, per partner (each a `what` of the `retention_purged` event and of `gateway_purged_total`):

- outbox: delivered messages, `outbox_days` after their delivery. Never a pending (undelivered) or dead message,
  nor one under a lease.
- ledger: entries with their reports, `ledger_days` after their receipt. Never the entry of a file still
  quarantined (it goes `ledger_days` after its receipt once released). An applied entry leaves its sha256 behind.
- dedupe: those sha256, `dedupe_days` after their entry's receipt: until then the same content is a duplicate.
- files: what folder sources moved to archive/ and failed/ (reports beside them), `files_days` after the move;
  only the sources whose folder is mounted here (`workers`).
- pages: feed pages kept aside with their reports (`[partners.P.api] failed`), `pages_days` after.
- items: the kept copies of applied items (`ledger reapply`), `items_days` after.

Rows go in batches of at most `batch_size`, each found by a read and removed in a short transaction of its own,
with a pause between two: a placement waits at most for one batch, and batches are sized to take at most BUDGET
(20 ms): a slow transaction halves the next one (BatchSize). A row another transaction holds (PostgreSQL) is
skipped until the next run. A file's age counts from the later of its modification and its status change: a file
moved into archive/ keeps its sender's modification time, but the move changes its status time (POSIX rename).
SFTP sources' archive/ and failed/ are on the partner's server, left to its owner; a source with `delete = true`
keeps nothing. A dry run removes nothing and counts what would go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway import logs
from gateway.domain.instant import Instant
from gateway.service import retention
from gateway.settings import FolderSource, Settings
from gateway.store.port import Store, UnitOfWork

log = logs.get(__name__)

_DAY = 86_400 * 1_000_000  # an instant counts microseconds
WHATS = ("outbox", "ledger", "dedupe", "files", "pages", "items")
PAUSE = 0.005  # seconds between two batches: a writer waiting for the store takes its turn


BUDGET = 0.02  # seconds a removing transaction should take at most: a placement waiting on it waits no longer


class BatchSize:
    """How many rows the next removing transaction takes: it starts small, doubles while a transaction takes under
    half the BUDGET, halves when one takes more, between 1 and `batch_size`. A store that is slow today (a loaded
    machine, a large index) gets smaller transactions instead of longer waits for the placements behind them."""

    def __init__(self, most: int, first: int = 50) -> None:
        self.most = most
        self.now = max(1, min(most, first))

    def took(self, seconds: float) -> None:
        """The last transaction of `self.now` rows took `seconds`."""
        if seconds > BUDGET:
            self.now = max(1, self.now // 2)
        elif seconds < BUDGET / 2:
            self.now = min(self.most, self.now * 2)


@dataclass(frozen=True)
class Purged:
    """What one run removed (or, dry, would remove) of one kind for one partner: what older than `days` days."""

    partner: str
    what: str
    count: int
    days: int


@dataclass
class PurgeReport:
    """One run over the partners: per partner and kind, how many went."""

    dry_run: bool
    now: Instant
    purged: list[Purged] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """How many of each kind went, over every partner."""
        totals = dict.fromkeys(WHATS, 0)
        for item in self.purged:
            totals[item.what] += item.count
        return totals


def purge(
    store: Store,
    settings: Settings,
    now: Instant,
    *,
    partner: str | None = None,
    dry_run: bool = False,
    pause: float = PAUSE,
    stopping: Callable[[], bool] = lambda: False,
) -> PurgeReport:
    """Remove what `settings.retention` no longer keeps, as of `now`, for every configured partner (or `partner`);
    `dry_run` only counts. Each kind of each partner is logged (`retention_purged`); `stopping()` true ends the run
    between two batches (the worker stopping)."""
    report = PurgeReport(dry_run, now)
    partners = [partner] if partner is not None else list(settings.partners)
    run = _Run(store, settings, now, dry_run, pause, stopping)
    for name in partners:
        for what, days, count in run.partner(name):
            report.purged.append(Purged(name, what, count, days))
            log.info("retention_purged", partner=name, what=what, count=count, days=days, dry_run=dry_run)
    return report


@dataclass
class _Run:
    store: Store
    settings: Settings
    now: Instant
    dry_run: bool
    pause: float
    stopping: Callable[[], bool]

    def _before(self, days: int) -> Instant:
        return self.now - days * _DAY

    def partner(self, name: str) -> Iterator[tuple[str, int, int]]:
        """(what, days, count) of each kind, in WHATS order."""
        kept = self.settings.retention
        with self.store.read() as tx:
            partner_id = tx.partners.id_of(name)
        outbox, now = self._before(kept.outbox_days), self.now
        yield (
            "outbox",
            kept.outbox_days,
            self._rows(
                lambda tx, after, limit: tx.retention.delivered(partner_id, outbox, now, after, limit),
                lambda tx, ids: tx.retention.remove_delivered(partner_id, ids, outbox, now),
            ),
        )
        ledger, dedupe = self._before(kept.ledger_days), self._before(kept.dedupe_days)
        yield (
            "ledger",
            kept.ledger_days,
            self._rows(
                lambda tx, after, limit: tx.retention.aged_entries(partner_id, ledger, after, limit),
                lambda tx, ids: tx.retention.remove_entries(partner_id, ids, ledger, dedupe),
            ),
        )
        yield (
            "dedupe",
            kept.dedupe_days,
            self._rows(
                lambda tx, after, limit: tx.retention.aged_digests(partner_id, dedupe, after, limit),
                lambda tx, ids: tx.retention.remove_digests(partner_id, ids, dedupe),
            ),
        )
        yield "files", kept.files_days, self._files(self._source_folders(name), kept.files_days)
        api = self.settings.partner(name).api
        pages = [api.failed / name] if api is not None else []
        yield "pages", kept.pages_days, self._files(pages, kept.pages_days)
        items = retention.prune_partner(kept, name, self.now, dry_run=self.dry_run)
        yield "items", kept.items_days, items

    def _rows(
        self,
        aged: Callable[[UnitOfWork, int, int], list[int]],
        remove: Callable[[UnitOfWork, Sequence[int]], int],
    ) -> int:
        """Walk the table in id order (reads), removing each batch found in a write of its own, sized so that the
        write stays within BUDGET; how many went (or, dry, were found)."""
        removed, after = 0, 0
        size = BatchSize(self.settings.retention.batch_size)
        while not self.stopping():
            limit = size.now
            with self.store.read() as tx:
                ids = aged(tx, after, limit)
            if not ids:
                break
            if self.dry_run:
                removed += len(ids)
            else:
                started = time.monotonic()
                with self.store.write() as tx:
                    removed += remove(tx, ids)
                size.took(time.monotonic() - started)
                time.sleep(self.pause)
            after = ids[-1]
            if len(ids) < limit:
                break
        return removed

    def _source_folders(self, partner: str) -> list[Path]:
        """The archive/ and failed/ folders of the partner's folder sources mounted on this machine."""
        here = self.settings.worker.name
        folders: list[Path] = []
        for source in self.settings.partner(partner).sources:
            if isinstance(source, FolderSource) and (source.workers is None or here in source.workers):
                folders += [source.path / source.archive, source.path / source.failed]
        return folders

    def _files(self, folders: Sequence[Path], days: int) -> int:
        """Remove (dry: count) the files directly in `folders` older than `days` (see the module on their age)."""
        cutoff = self._before(days) / 1_000_000  # seconds, as os.stat gives them
        removed = 0
        for folder in folders:
            try:
                listing = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in listing:
                try:
                    info = entry.stat(follow_symlinks=False)
                    if not entry.is_file(follow_symlinks=False) or max(info.st_mtime, info.st_ctime) > cutoff:
                        continue
                    if not self.dry_run:
                        os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:  # removed meanwhile (another worker sharing the folder)
                    continue
        return removed
