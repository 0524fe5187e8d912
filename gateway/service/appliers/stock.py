"""Stock levels: a snapshot file (streamed in batches, the partner's `absent` rule applied at its end), or the
levels of a stock feed page.

A level stamped more than the partner's `max_clock_skew` ahead of the gateway's clock is refused at its line
(`future_timestamp`) before the engine or the bulk loader sees it: taken, it would make every later snapshot of
its SKU stale. A file whose own instant (`--as-of`) is that far ahead is refused whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from operator import itemgetter

from gateway import logs
from gateway.domain import guards
from gateway.domain.instant import Instant
from gateway.formats import pages
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Problem, Problems
from gateway.formats.rows import StockRow
from gateway.formats.stock_rows import PlainLevels, StockBatches
from gateway.service.appliers import dated
from gateway.service.appliers.base import Applier, Applying
from gateway.service.engine import Engine
from gateway.service.items import IngestResult, Rejected
from gateway.service.snapshots import SnapshotOutcome, StockInput, StockLevel
from gateway.store.port import LevelLoader
from gateway.store.records import SnapshotFile

log = logs.get(__name__)

_BATCH = 10_000  # stock rows applied per engine call: bounded memory, few round trips


class Stock(Applier[list[StockRow]]):
    """Stock files are whole snapshots; stock pages bring the levels that moved."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Apply a snapshot: plain levels batch by batch as they are read, or dated supply (see dated.py) read
        whole; a problem anywhere refuses it whole."""
        _refuse_future_file(item, table.problems)
        if dated.wanted(item, table):
            dated.apply_file(item, table)
        else:
            _apply_plain_file(item, table)

    def read_page(self, page: pages.Page, zone: tzinfo, problems: Problems) -> list[StockRow]:
        """The page's stock levels."""
        return pages.stock_items(page, zone, problems)

    def apply_page(self, item: Applying, items: list[StockRow]) -> None:
        """The page's levels, at the page's instant where an item gives none."""
        received_at = item.received_at
        levels: Sequence[StockLevel] = [
            (r.sku, r.quantity, r.as_of if r.as_of is not None else received_at) for r in items
        ]
        levels = _Future(item, unit="item").refuse(levels, [r.line for r in items])
        _apply_levels(item.engine, levels, item.result, all_new=False)


def _apply_plain_file(item: Applying, table: CsvTable) -> None:
    """Apply a snapshot of levels batch by batch as it is read; a problem anywhere refuses it whole."""
    engine, result, partner, progress = item.engine, item.result, item.partner, item.progress
    default_as_of = item.as_of if item.as_of is not None else item.received_at
    counts = result.counts
    problems = table.problems
    future = _Future(item)
    # A partner's first snapshot needs no look-ups: its SKUs are unique (checked) and none is stored yet.
    first_load = not engine.tx.stock.holds(engine.partner_id)
    # where the store has one (PostgreSQL), every row is streamed in (COPY) and merged in one statement at the end
    loader = engine.level_loader()
    if loader is not None and _copied(item, table, loader):
        return
    # the SKUs seen are only needed after the last batch to zero those the file omits
    batches = StockBatches(table, partner.zone, default_as_of, _BATCH, keep_seen=partner.absent == "zero")
    for read in batches:
        if progress is not None:
            progress(batches.rows)
        if problems.total:
            continue  # keep reading to list every problem, apply nothing more
        batch = future.refuse(read, batches.lines)  # before the loader: a future level never reaches it
        if not batch:
            continue
        if loader is not None:
            loader.add(batch)
        else:
            _apply_levels(engine, batch, result, all_new=first_load)
    if progress is not None:
        progress(batches.rows)
    if problems.total:
        raise Rejected(problems)
    if loader is not None:
        _count(engine.merge_levels(loader, result.ledger_id), result)
    seen = batches.seen  # a SKU refused for its future stamp too: it was not omitted, so it is not zeroed
    latest = item.as_of if item.as_of is not None else batches.latest
    if future.refused:
        latest = future.latest  # never zero the omitted SKUs as of a refused instant
    if partner.absent == "zero":
        zero_at = default_as_of if latest is None else latest
        omitted = [
            StockInput(record.sku, 0, zero_at)
            for record in engine.tx.stock.iterate(engine.partner_id)
            if record.sku not in seen and (record.quantity != 0 or record.as_of != zero_at)
        ]
        outcome = engine.apply_stock(omitted, result.ledger_id)
        counts.extra["zeroed"] = outcome.applied
        counts.skipped += outcome.skipped


def _refuse_future_file(item: Applying, problems: Problems) -> None:
    """Refuse the whole file (Rejected) when its own instant (`--as-of`) is too far ahead of the gateway's clock."""
    now = item.engine.now
    if item.as_of is not None and guards.is_future(item.as_of, now, item.max_skew):
        refusal = guards.future("the file's as_of", item.as_of, now, item.max_skew)
        problems.add(Problem(None, str(refusal), reason=refusal.code))
        item.result.reason = refusal.code
        raise Rejected(problems)


def _copied(item: Applying, table: CsvTable, loader: LevelLoader) -> bool:
    """Whether the store read the file itself and merged its rows (see LevelLoader.copy_file): only for a partner
    that zeroes no omitted SKU, and a UTF-8 file whose header is its first line; any other, or a file the store
    does not take, is read row by row by the caller, which applies it or says what is wrong where."""
    partner, engine = item.partner, item.engine
    if partner.absent == "zero" or not table.utf8 or not table.header_on_one_line:
        return False
    default_as_of = item.as_of if item.as_of is not None else item.received_at
    with table.raw() as stream:
        if stream is None:
            return False
        file = SnapshotFile(
            stream,
            table.delimiter,
            table.width,
            (table.index["sku"], table.index["quantity"], table.index.get("as_of")),
            table.max_line_bytes,
            default_as_of,
            engine.now + item.max_skew,
            partner.timezone in ("UTC", "Etc/UTC"),
        )
        rows = loader.copy_file(file)
    if rows is None:
        log.debug("snapshot_copy_declined", partner=engine.partner)  # the Python reader reads it
        return False
    table.release()
    if item.progress is not None:
        item.progress(rows)
    _count(engine.merge_levels(loader, item.result.ledger_id), item.result)
    return True


class _Future:
    """Takes the levels stamped too far ahead of the gateway's clock out of batches, each refused at its line."""

    def __init__(self, item: Applying, unit: str = "line") -> None:
        self.result = item.result
        self.now = item.engine.now
        self.max_skew = item.max_skew
        self.unit = unit
        self.refused = 0
        self.latest: Instant | None = None  # the latest instant of the levels kept

    def refuse(self, batch: Sequence[StockLevel], lines: list[int]) -> Sequence[StockLevel]:
        """`batch` without its future levels (`lines`: their line numbers, row for row), refused and counted."""
        if not batch:
            return batch
        latest = _latest(batch)
        if guards.is_future(latest, self.now, self.max_skew):
            batch = self._split(batch, lines)
            if not batch:
                return batch
            latest = _latest(batch)
        self.latest = latest if self.latest is None else max(self.latest, latest)
        return batch

    def _split(self, batch: Sequence[StockLevel], lines: list[int]) -> list[StockLevel]:
        kept: list[StockLevel] = []
        for level, line in zip(batch, lines, strict=True):
            if guards.is_future(level[2], self.now, self.max_skew):
                refusal = guards.future("as_of", level[2], self.now, self.max_skew)
                self.result.refusals.append(Problem(line, str(refusal), unit=self.unit, reason=refusal.code))
                self.result.counts.refused += 1
                self.refused += 1
            else:
                kept.append(level)
        return kept


def _latest(batch: Sequence[StockLevel]) -> Instant:
    """The latest as_of of a batch's levels (a batch kept as columns knows it without a tuple per row)."""
    known: Instant | None = batch.latest if isinstance(batch, PlainLevels) else None
    return known if known is not None else max(map(itemgetter(2), batch))


def _apply_levels(engine: Engine, batch: Sequence[StockLevel], result: IngestResult, *, all_new: bool) -> None:
    _count(engine.apply_stock(batch, result.ledger_id, all_new=all_new), result)


def _count(outcome: SnapshotOutcome, result: IngestResult) -> None:
    result.counts.applied += outcome.applied
    result.counts.skipped += outcome.skipped
    result.counts.extra["predates_confirmation"] = (
        result.counts.extra.get("predates_confirmation", 0) + outcome.predates_movement
    )
