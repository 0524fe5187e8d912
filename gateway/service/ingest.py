"""Ingest: one flat file = one inbound item = one transaction, recorded in the ledger.

A file is hashed, checked against the ledger (the same content for the same partner and kind applies once),
parsed as a stream and applied in one transaction with its ledger entry. A malformed file is refused whole:
the transaction rolls back and a `rejected` entry records every problem with its line number. Rows the rules
refuse (not enough ATS, an illegal status move, an unknown order) are refused alone and listed; the rest applies.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.domain.errors import LineMismatch, Refusal, UnknownLine
from gateway.domain.instant import Instant
from gateway.domain.orders import RequestedLine, merge_lines
from gateway.formats import pages
from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.formats.problems import Malformed, Problem, Problems
from gateway.formats.rows import ConfirmationRow, Kind, OrderRow, StockRow
from gateway.service.engine import AtsChange, Engine, SnapshotOutcome, StockInput, StockLevel
from gateway.settings import PartnerSettings, Settings
from gateway.store.port import AlreadyApplied, LedgerCounts, Store, Transaction

log = logs.get(__name__)

Clock = Callable[[], Instant]
Progress = Callable[[int], None]

_T = TypeVar("_T")


class _Numbered(Protocol):
    """A row or an item: where it stands in its file or page."""

    @property
    def line(self) -> int: ...


_Item = TypeVar("_Item", bound=_Numbered)

_BATCH = 10_000  # stock rows applied per engine call: bounded memory, few round trips
_PROGRESS_EVERY = 20_000


@dataclass
class IngestResult:
    """What became of one file."""

    partner: str
    kind: str
    source: str
    sha256: str
    size: int
    outcome: str  # applied | rejected | duplicate
    ledger_id: int | None = None
    duplicate_of: int | None = None
    counts: LedgerCounts = field(default_factory=LedgerCounts)
    problems: list[Problem] = field(default_factory=list)  # why a file was rejected
    refusals: list[Problem] = field(default_factory=list)  # rows the rules refused
    unlisted: int = 0
    changes: list[AtsChange] = field(default_factory=list)  # the first ones, for dry runs
    ats_changes: int = 0  # published ATS values queued (or that would be)
    dry_run: bool = False
    duration_ms: int = 0
    reason: str | None = None  # why a rejected item was refused whole, when it has a name ("too_large")

    @property
    def ok(self) -> bool:
        """Applied with nothing refused, or a harmless duplicate (or an empty page)."""
        return self.outcome in ("duplicate", "empty") or (self.outcome == "applied" and not self.counts.refused)

    def summary(self) -> str:
        """One readable line."""
        if self.outcome == "duplicate":
            return f"{self.source}: duplicate of ledger entry {self.duplicate_of}, nothing applied"
        if self.outcome == "rejected":
            first = self.problems[0].describe() if self.problems else "malformed"
            more = len(self.problems) + self.unlisted - 1
            extra = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
            return f"{self.source}: rejected, nothing applied: {first}{extra}"
        verb = "would apply" if self.dry_run else "applied"
        return (
            f"{self.source}: {verb} {self.counts.applied} row(s), skipped {self.counts.skipped} stale, "
            f"refused {self.counts.refused}; {self.ats_changes} ATS change(s)"
        )

    def report(self) -> dict[str, object]:
        """The error report: JSON-ready, every problem with its line number."""
        report: dict[str, object] = {
            "partner": self.partner,
            "kind": self.kind,
            "source": self.source,
            "sha256": self.sha256,
            "ledger_id": self.ledger_id,
            "outcome": self.outcome,
            "rows_applied": self.counts.applied,
            "rows_skipped": self.counts.skipped,
            "rows_refused": self.counts.refused,
            "problems": [p.as_dict() for p in self.problems],
            "refused": [p.as_dict() for p in self.refusals],
            "unlisted_problems": self.unlisted,
        }
        if self.reason is not None:
            report["reason"] = self.reason
        return report


class _Rejected(Exception):
    def __init__(self, problems: Problems) -> None:
        super().__init__(problems.total)
        self.problems = problems


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is applied.

    A snapshot allocates millions of short-lived, acyclic objects (rows, records, messages); the collector's
    generation scans over them cost a fifth of the ingest time and reclaim nothing that reference counting
    does not. It is restored as it was, whatever happens.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class Ingestor:
    """Applies flat files to the store for the configured partners."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    def ingest(
        self,
        partner: str,
        kind: Kind,
        path: Path,
        *,
        source: str | None = None,
        received_at: Instant | None = None,
        as_of: Instant | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> IngestResult:
        """Apply the file at `path` as one item; `as_of` is the file's instant for rows without their own.

        Its log lines and the outbox rows it queues carry a `run_id` (the caller's, or a new one)."""
        with logs.run(logs.current_run()):
            return self._ingest(partner, kind, path, source, received_at, as_of, dry_run, progress)

    def _ingest(
        self,
        partner: str,
        kind: Kind,
        path: Path,
        source: str | None,
        received_at: Instant | None,
        as_of: Instant | None,
        dry_run: bool,
        progress: Progress | None,
    ) -> IngestResult:
        started = time.perf_counter()
        partner_settings = self.settings.partner(partner)
        source = source or str(path)
        received_at = received_at if received_at is not None else self.clock()
        sha256, size = file_digest(path)
        result = IngestResult(partner, kind.value, source, sha256, size, outcome="applied", dry_run=dry_run)
        bound = log.bind(partner=partner, kind=kind.value, source=source, sha256=sha256, dry_run=dry_run)
        try:
            with self.store.write(rollback=dry_run) as tx:
                partner_id = tx.partner_id(partner)
                tx.lock_partner(partner_id)  # one item of a partner at a time, whichever worker took it
                earlier = tx.ledger_applied(partner_id, kind.value, sha256)
                if earlier is not None:
                    result.outcome, result.duplicate_of = "duplicate", earlier
                else:
                    result.ledger_id = tx.ledger_open(partner_id, kind.value, source, sha256, size, received_at)
                    engine = Engine(tx, partner, partner_settings.policy, self.clock(), result.ledger_id, alone=True)
                    with path.open("rb") as stream, _collector_paused():
                        self._apply(engine, tx, kind, stream, partner_settings, result, received_at, as_of, progress)
                    result.changes = list(engine.changes.values())
                    result.ats_changes = engine.changed
                    self._log_snapshot_warnings(engine, bound)
                    tx.ledger_close(
                        result.ledger_id,
                        "applied",
                        result.counts,
                        None,
                        json.dumps(result.report()) if result.refusals else None,
                        self.clock(),
                    )
        except _Rejected as rejected:
            result.outcome = "rejected"
            result.problems = rejected.problems.listed
            result.unlisted = rejected.problems.unlisted
            result.counts = LedgerCounts()
            result.changes, result.ats_changes = [], 0
        except AlreadyApplied:
            # another worker applied the same content between our look-up and our claim
            result.outcome = "duplicate"
            result.counts = LedgerCounts()
            result.changes, result.ats_changes = [], 0
        if result.outcome != "applied" and not dry_run:
            self._record(result, received_at)
        result.duration_ms = int((time.perf_counter() - started) * 1000)
        self._log(result, bound)
        return result

    def ingest_page(
        self,
        partner: str,
        feed: str,
        body: bytes,
        cursor: str | None,
        document: Callable[[bytes, Problems], object],
        *,
        source: str | None = None,
        reason: str | None = None,
    ) -> PageResult:
        """Apply one page of a partner feed as one item, and record the cursor after it in the same transaction.

        `document` turns the body into the reference shape (the partner adapter's reading). A malformed page is
        refused whole and the cursor stays where it was (`reason` names why, when the caller knows: "too_large");
        the same page as the last one applied (same cursor, same body) is a duplicate, and the cursor moves on.
        """
        started = time.perf_counter()
        partner_settings = self.settings.partner(partner)
        received_at = self.clock()
        # A page is its feed position and its body. The same page as the last one applied (asked again from the
        # same cursor) is a duplicate; a page repeating an older one (a level back to an earlier value) is news.
        sha256 = hashlib.sha256(f"{feed}\n{cursor or ''}\n".encode() + body).hexdigest()
        source = source or f"api:{feed}@{(cursor or 'start')[:200]}"
        result = IngestResult(partner, feed, source, sha256, len(body), outcome="applied", reason=reason)
        bound = log.bind(partner=partner, kind=feed, source=source, sha256=sha256)
        problems = Problems()
        page, stock, acks = _read_page(feed, body, document, partner_settings.zone, problems)
        if page is None or problems:
            result.outcome = "rejected"
            result.problems, result.unlisted = problems.listed, problems.unlisted
            with self.store.read() as tx:
                earlier = tx.ledger_applied(tx.partner_id(partner), feed, sha256, outcome="rejected")
            if earlier is None:
                self._record(result, received_at)
            else:  # the partner serves the same broken page again: one entry and one copy kept are enough
                result.ledger_id = result.duplicate_of = earlier
            result.duration_ms = int((time.perf_counter() - started) * 1000)
            self._log(result, bound, event="page", repeat=earlier is not None)
            return PageResult(result, cursor, more=False, repeat=earlier is not None)
        more = _more(page, cursor)
        after = page.next_cursor if page.next_cursor is not None else cursor
        try:
            self._apply_page(partner, feed, page, stock, acks, result, received_at, cursor, after, bound)
        except AlreadyApplied:
            # another worker applied the same page between our look-up and our claim: now it is a duplicate
            result.counts, result.refusals, result.ats_changes = LedgerCounts(), [], 0
            self._apply_page(partner, feed, page, stock, acks, result, received_at, cursor, after, bound)
        result.duration_ms = int((time.perf_counter() - started) * 1000)
        if result.outcome != "empty":
            self._log(result, bound, event="page")
        return PageResult(result, after, more=more)

    def _apply_page(
        self,
        partner: str,
        feed: str,
        page: pages.Page,
        stock: list[StockRow],
        acks: pages.Acknowledgements,
        result: IngestResult,
        received_at: Instant,
        cursor: str | None,
        after: str | None,
        bound: FilteringBoundLogger,
    ) -> None:
        """One transaction: the page's effects, its ledger entry and the feed's cursor after it."""
        partner_settings = self.settings.partner(partner)
        with self.store.write() as tx:
            partner_id = tx.partner_id(partner)
            tx.lock_partner(partner_id)
            _, last = tx.feed_position(partner_id, feed)
            # the ledger's claim is on the page at its place in the feed's history: the same page again after
            # another (A, B, A) is news; the same page after the same page (asked again, or raced by another
            # poller, or replayed from an older cursor) is a duplicate
            claim = hashlib.sha256(f"{result.sha256}\n{last or ''}".encode()).hexdigest()
            if not page.items:
                result.outcome = "empty"
            elif result.sha256 == last or (earlier := tx.ledger_applied(partner_id, feed, claim)) is not None:
                result.outcome = "duplicate"
                result.duplicate_of = None if result.sha256 == last else earlier
                result.ledger_id = tx.ledger_open(
                    partner_id, feed, result.source, result.sha256, result.size, received_at, "duplicate"
                )
                tx.ledger_close(result.ledger_id, "duplicate", LedgerCounts(), None, None, self.clock())
            else:
                result.ledger_id = tx.ledger_open(partner_id, feed, result.source, claim, result.size, received_at)
                engine = Engine(tx, partner, partner_settings.policy, self.clock(), result.ledger_id, alone=True)
                if feed == "stock":
                    levels = [(r.sku, r.quantity, r.as_of if r.as_of is not None else received_at) for r in stock]
                    self._stock_batch(engine, levels, result, all_new=False)
                else:
                    self._apply_acknowledgements(engine, acks, result)
                result.ats_changes = engine.changed
                self._log_snapshot_warnings(engine, bound)
                report = json.dumps(result.report()) if result.refusals else None
                tx.ledger_close(result.ledger_id, "applied", result.counts, None, report, self.clock())
                tx.set_feed_cursor(partner_id, feed, after, result.ledger_id, self.clock(), last_sha256=result.sha256)
            if after != cursor and result.outcome != "applied":
                tx.set_feed_cursor(partner_id, feed, after, result.ledger_id, self.clock())

    @staticmethod
    def _apply_acknowledgements(engine: Engine, acks: pages.Acknowledgements, result: IngestResult) -> None:
        """Status moves and confirmations in page order, each refused alone when the rules refuse it."""

        def apply(item: pages.StatusItem | ConfirmationRow) -> object:
            if isinstance(item, pages.StatusItem):
                return engine.set_status(item.order_id, item.status)
            return engine.confirm(item.order_id, item.sku, item.confirmed_quantity, item.confirmed_at)

        _one_by_one(acks.items, apply, result, unit="item")

    # applying each kind

    def _apply(
        self,
        engine: Engine,
        tx: Transaction,
        kind: Kind,
        stream: BinaryIO,
        partner: PartnerSettings,
        result: IngestResult,
        received_at: Instant,
        as_of: Instant | None,
        progress: Progress | None,
    ) -> None:
        problems = Problems()
        required, optional = formats.COLUMNS[kind]
        try:
            table = CsvTable(stream, partner.files.csv_options(kind), required, optional, problems)
        except Malformed as exc:
            problems.add(exc.problem)
            raise _Rejected(problems) from None
        if kind == Kind.STOCK:
            self._apply_stock(engine, table, partner, result, received_at, as_of, progress)
        elif kind == Kind.ORDERS:
            self._apply_orders(engine, tx, table, partner, result, progress)
        elif kind == Kind.CAPS:
            self._apply_caps(engine, table, partner, result, progress)
        else:
            self._apply_confirmations(engine, table, partner, result, progress)

    def _apply_stock(
        self,
        engine: Engine,
        table: CsvTable,
        partner: PartnerSettings,
        result: IngestResult,
        received_at: Instant,
        as_of: Instant | None,
        progress: Progress | None,
    ) -> None:
        default_as_of = as_of if as_of is not None else received_at
        counts = result.counts
        problems = table.problems
        # A partner's first snapshot needs no look-ups: its SKUs are unique (checked) and none is stored yet.
        first_load = not engine.tx.holds_stock(engine.partner_id)
        # where the store has one (PostgreSQL), every row is streamed in (COPY) and merged in one statement at the end
        loader = engine.level_loader()
        batches = formats.StockBatches(table, partner.zone, default_as_of, _BATCH)
        for batch in batches:
            if progress is not None:
                progress(batches.rows)
            if problems.total:
                continue  # keep reading to list every problem, apply nothing more
            if loader is not None:
                loader.add(batch)
            else:
                self._stock_batch(engine, batch, result, all_new=first_load)
        if progress is not None:
            progress(batches.rows)
        if problems.total:
            raise _Rejected(problems)
        if loader is not None:
            self._count(engine.merge_levels(loader, result.ledger_id), result)
        seen = batches.seen
        latest = as_of if as_of is not None else batches.latest
        if partner.absent == "zero":
            zero_at = default_as_of if latest is None else latest
            omitted = [
                StockInput(record.sku, 0, zero_at)
                for record in engine.tx.iter_stock(engine.partner_id)
                if record.sku not in seen and (record.quantity != 0 or record.as_of != zero_at)
            ]
            outcome = engine.apply_stock(omitted, result.ledger_id)
            counts.extra["zeroed"] = outcome.applied
            counts.skipped += outcome.skipped

    def _stock_batch(self, engine: Engine, batch: list[StockLevel], result: IngestResult, *, all_new: bool) -> None:
        self._count(engine.apply_stock(batch, result.ledger_id, all_new=all_new), result)

    @staticmethod
    def _count(outcome: SnapshotOutcome, result: IngestResult) -> None:
        result.counts.applied += outcome.applied
        result.counts.skipped += outcome.skipped
        result.counts.extra["predates_confirmation"] = (
            result.counts.extra.get("predates_confirmation", 0) + outcome.predates_movement
        )

    def _apply_orders(
        self,
        engine: Engine,
        tx: Transaction,
        table: CsvTable,
        partner: PartnerSettings,
        result: IngestResult,
        progress: Progress | None,
    ) -> None:
        # An order is one unit: all its rows in the file are placed (or moved) together, or refused together.
        orders: dict[str, list[OrderRow]] = {}
        for row in _counting(formats.read_orders(table, partner.zone), progress):
            rows = orders.setdefault(row.order_id, [])
            if rows and rows[0].status != row.status:
                table.problems.add(
                    Problem(
                        row.line,
                        f"order {row.order_id} is given status {row.status.value} here but "
                        f"{rows[0].status.value} at line {rows[0].line}",
                        "status",
                    )
                )
            rows.append(row)
        if table.problems:
            raise _Rejected(table.problems)
        for order_id, rows in orders.items():
            try:
                existing = tx.order(engine.partner_id, order_id)
                if existing is None:
                    lines = [RequestedLine(r.sku, r.quantity, r.assembly, r.collection) for r in rows]
                    engine.place(order_id, lines, rows[0].status)
                else:
                    for sku, line in merge_lines(order_id, [RequestedLine(r.sku, r.quantity) for r in rows]).items():
                        held = existing.line(sku)
                        if held is None:
                            raise UnknownLine(order_id, sku)
                        if held.quantity != line.quantity:
                            raise LineMismatch(order_id, sku, line.quantity, held.quantity)
                    engine.set_status(order_id, rows[0].status)
                result.counts.applied += len(rows)
            except Refusal as refusal:
                result.counts.refused += len(rows)
                result.refusals.extend(Problem(r.line, str(refusal)) for r in rows)

    def _apply_confirmations(
        self,
        engine: Engine,
        table: CsvTable,
        partner: PartnerSettings,
        result: IngestResult,
        progress: Progress | None,
    ) -> None:
        rows = list(_counting(formats.read_confirmations(table, partner.zone), progress))
        if table.problems:
            raise _Rejected(table.problems)
        _one_by_one(rows, lambda r: engine.confirm(r.order_id, r.sku, r.confirmed_quantity, r.confirmed_at), result)

    def _apply_caps(
        self,
        engine: Engine,
        table: CsvTable,
        partner: PartnerSettings,
        result: IngestResult,
        progress: Progress | None,
    ) -> None:
        # In file order: a "*" row then a collection row give the collection its own setting under the default.
        rows = list(_counting(formats.read_caps(table, partner.zone), progress))
        if table.problems:
            raise _Rejected(table.problems)
        for row in rows:
            engine.set_cap(row.sku, row.assembly, row.collection, row.limit)
            result.counts.applied += 1

    # recording and logging

    def _record(self, result: IngestResult, received_at: Instant) -> None:
        """A rejected or duplicate item gets its own ledger entry, in its own transaction."""
        error = result.summary() if result.outcome == "rejected" else None
        with self.store.write() as tx:
            partner_id = tx.partner_id(result.partner)
            entry = tx.ledger_open(
                partner_id,
                result.kind,
                result.source,
                result.sha256,
                result.size,
                received_at,
                result.outcome,
            )
            result.ledger_id = entry
            report = json.dumps(result.report()) if result.outcome == "rejected" else None
            tx.ledger_close(entry, result.outcome, LedgerCounts(), error, report, self.clock())

    @staticmethod
    def _log_snapshot_warnings(engine: Engine, bound: FilteringBoundLogger) -> None:
        if engine.stale_skus:
            bound.info("stale_rows_skipped", sample_skus=engine.stale_skus)
        if engine.predating_skus:
            bound.warning(
                "snapshot_predates_confirmation",
                sample_skus=engine.predating_skus,
                hint="the snapshot is older than confirmations the gateway applied; it may put sold units back",
            )

    @staticmethod
    def _log(result: IngestResult, bound: FilteringBoundLogger, event: str = "file", *, repeat: bool = False) -> None:
        context = {
            "ledger_id": result.ledger_id,
            "rows_applied": result.counts.applied,
            "rows_skipped": result.counts.skipped,
            "rows_refused": result.counts.refused,
            "duration_ms": result.duration_ms,
        }
        if result.outcome == "rejected":
            # a refusal with a name gives it as the reason, with the words beside it
            why = {"reason": result.summary()} if result.reason is None else {"reason": result.reason}
            if result.reason is not None:
                why["error"] = result.summary()
            bound.warning(
                f"{event}_rejected",
                **why,
                problems=len(result.problems) + result.unlisted,
                **({"repeat": True} if repeat else {}),
                **context,
            )
        elif result.outcome == "duplicate":
            bound.info(f"{event}_duplicate", duplicate_of=result.duplicate_of, **context)
        else:
            bound.info(f"{event}_applied", ats_changes=result.ats_changes, **context)


def _read_page(
    feed: str, body: bytes, document: Callable[[bytes, Problems], object], zone: tzinfo, problems: Problems
) -> tuple[pages.Page | None, list[StockRow], pages.Acknowledgements]:
    """The page's envelope and items, checked; problems say what is wrong."""
    try:
        decoded = document(body, problems)
    except Exception as exc:
        problems.add(Problem(None, f"the adapter could not read the page: {type(exc).__name__}: {exc}", unit="item"))
        decoded = None
    page = None if problems else pages.envelope(decoded, problems)
    stock: list[StockRow] = []
    acks = pages.Acknowledgements([])
    if page is not None:
        if feed == "stock":
            stock = pages.stock_items(page, zone, problems)
        else:
            acks = pages.acknowledgement_items(page, zone, problems)
    return page, stock, acks


@dataclass
class PageResult:
    """What became of one page of a feed, and where the feed stands after it."""

    result: IngestResult
    next_cursor: str | None
    more: bool  # another page waits now
    repeat: bool = False  # the same malformed page as last time: its entry and copy are kept already


def _more(page: pages.Page, cursor: str | None) -> bool:
    """Whether to ask for the next page now: `has_more` when the partner says, else while pages bring items and
    the cursor moves."""
    moved = page.next_cursor is not None and page.next_cursor != cursor
    if page.has_more is not None:
        return page.has_more and moved
    return bool(page.items) and moved


def _one_by_one(
    items: Sequence[_Item], apply: Callable[[_Item], object], result: IngestResult, unit: str = "line"
) -> None:
    """Apply each item alone: one the rules refuse is counted and listed with its line (or item) number."""
    for item in items:
        try:
            apply(item)
            result.counts.applied += 1
        except Refusal as refusal:
            result.counts.refused += 1
            result.refusals.append(Problem(item.line, str(refusal), unit=unit))


def _counting(rows: Iterator[_T], progress: Progress | None) -> Iterator[_T]:
    if progress is None:
        yield from rows
        return
    count = 0
    for row in rows:
        count += 1
        if count % _PROGRESS_EVERY == 0:
            progress(count)
        yield row
    progress(count)
