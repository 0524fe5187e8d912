"""Feeds: poll a partner's API for stock and acknowledgements, page after page, each page one inbound item.

The cursor after a page is saved in the transaction that applied it, so a crash re-polls from the last
committed cursor, and a page applied twice is recognised by the ledger. A malformed page is refused whole,
kept with its error report under the API's `failed` folder, and the feed stays where it was. A page larger
than `api.max_page_bytes` is refused the same way (reason "too_large"), but only its first 64 KiB are kept,
with the size read and the sha256 of what was read: the rest of it is never read.

Each page is read into its feed's items and applied by the feed's applier (service/appliers), as files are.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Protocol

from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.formats import pages
from gateway.formats.problems import Problem, Problems
from gateway.service import ledger
from gateway.service.appliers import Applier, Applying, applier
from gateway.service.engine import Engine
from gateway.service.items import Clock, IngestResult, log_result, log_snapshot_warnings
from gateway.settings import ApiSettings, Settings
from gateway.store.port import AlreadyApplied, FeedPosition, Store, StoreError
from gateway.transport.bounds import EXCERPT_BYTES, PageTooLarge
from gateway.transport.folder import FolderOutbound
from gateway.transport.inbox import TransportError, report_bytes

log = logs.get(__name__)


class FeedApi(Protocol):
    """What polling needs of a partner API adapter."""

    def fetch(self, feed: str, cursor: str | None) -> bytes:
        """The raw page after `cursor`."""
        ...

    def document(self, feed: str, body: bytes, problems: Problems) -> object:
        """The page in the reference shape."""
        ...


@dataclass
class PageResult:
    """What became of one page of a feed, and where the feed stands after it."""

    result: IngestResult
    next_cursor: str | None
    more: bool  # another page waits now
    repeat: bool = False  # the same malformed page as last time: its entry and copy are kept already


@dataclass
class PollReport:
    """What one poll of one feed did."""

    partner: str
    feed: str
    pages: list[PageResult] = field(default_factory=list)
    error: str | None = None
    cursor: str | None = None

    @property
    def ok(self) -> bool:
        """Every page was read and applied whole: none refused, no item refused."""
        return self.error is None and all(p.result.ok for p in self.pages)


class FeedPoller:
    """Polls partner feeds through their API adapters."""

    def __init__(self, store: Store, settings: Settings, clock: Clock, api: Callable[[str], FeedApi]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.api = api

    def poll(self, partner: str, feed: str) -> PollReport:
        """Follow the feed from its saved cursor to its end (or `max_pages_per_poll` pages)."""
        config = self.settings.partner(partner).api
        if config is None:
            raise ValueError(f"partner {partner} has no API")
        report = PollReport(partner, feed)
        with self.store.source_lock(f"feed:{partner}/{feed}") as mine:
            if not mine:  # another worker sharing the store follows the feed now
                log.debug("feed_held_elsewhere", partner=partner, feed=feed)
                return report
            return self._follow(partner, feed, config, report)

    def _follow(self, partner: str, feed: str, config: ApiSettings, report: PollReport) -> PollReport:
        api = self.api(partner)
        with self.store.read() as tx:
            cursor = tx.feeds.cursor(tx.partners.id_of(partner), feed)
        for _ in range(config.max_pages_per_poll):
            cut: PageTooLarge | None = None
            try:
                body = api.fetch(feed, cursor)
            except PageTooLarge as exc:  # refused like a malformed page, on what was read of it
                body, cut = exc.head, exc
            except TransportError as exc:
                report.error = str(exc)
                log.warning("feed_poll_failed", partner=partner, feed=feed, cursor=cursor, error=str(exc))
                break
            try:
                with logs.run() as run_id:
                    page = self.ingest_page(
                        partner,
                        feed,
                        body,
                        cursor,
                        (lambda data, problems: api.document(feed, data, problems)) if cut is None else _too_large(cut),
                        reason=None if cut is None else "too_large",
                        run_id=run_id,
                    )
            except StoreError as exc:  # rolled back with its cursor: the next poll asks for the same page
                report.error = str(exc)
                log.error("feed_poll_failed", partner=partner, feed=feed, cursor=cursor, error=str(exc))
                break
            report.pages.append(page)
            if page.result.outcome == Outcome.REJECTED:
                if not page.repeat:
                    self._keep_aside(partner, feed, body, page, config.failed, cut)
                break
            cursor = page.next_cursor
            if not page.more:
                break
        report.cursor = cursor
        return report

    def _keep_aside(
        self, partner: str, feed: str, body: bytes, page: PageResult, failed: Path, cut: PageTooLarge | None
    ) -> None:
        """The refused page and its error report, for brand IT to look at; of a page too large, its first 64 KiB
        (`.excerpt`) and, in the report, how much was read and its sha256."""
        stamp = instant.to_datetime(self.clock()).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{feed}-{stamp}-{page.result.sha256[:12]}" + (".json" if cut is None else ".excerpt")
        report = page.result.report()
        if cut is not None:
            report["body"] = {
                "limit_bytes": cut.limit,
                "bytes_read": len(body),  # decompressed; the page holds at least this many
                "complete": False,
                "sha256_of_bytes_read": hashlib.sha256(body).hexdigest(),
                "bytes_received": cut.received,  # as they came over the wire, compressed when they were
                "content_encoding": cut.encoding,
                "excerpt_bytes": min(len(body), EXCERPT_BYTES),
            }
            body = body[:EXCERPT_BYTES]
        folder = FolderOutbound(failed / partner)
        try:
            where = folder.write(name, body)
            folder.write(name + ".error.json", report_bytes(report))
        except TransportError as exc:
            log.error("page_keep_aside_failed", partner=partner, feed=feed, error=str(exc))
            return
        log.info("page_kept_aside", partner=partner, feed=feed, file=where)

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
        run_id: str | None = None,
    ) -> PageResult:
        """Apply one page of a partner feed as one item, and record the cursor after it in the same transaction.

        `document` turns the body into the reference shape (the partner adapter's reading). A malformed page is
        refused whole and the cursor stays where it was (`reason` names why, when the caller knows: "too_large");
        the same page as the last one applied (same cursor, same body) is a duplicate, and the cursor moves on.
        The values it queues carry `run_id` (the poll's, bound to its log lines).
        """
        started = time.perf_counter()
        partner_settings = self.settings.partner(partner)
        received_at = self.clock()
        # A page is its feed position and its body. The same page as the last one applied (asked again from the
        # same cursor) is a duplicate; a page repeating an older one (a level back to an earlier value) is news.
        sha256 = hashlib.sha256(f"{feed}\n{cursor or ''}\n".encode() + body).hexdigest()
        source = source or f"api:{feed}@{(cursor or 'start')[:200]}"
        result = IngestResult(partner, feed, source, sha256, len(body), outcome=Outcome.APPLIED, reason=reason)
        bound = log.bind(partner=partner, kind=feed, source=source, sha256=sha256)
        problems = Problems()
        kind = applier(feed)
        page, items = _read_page(kind, body, document, partner_settings.zone, problems)
        if page is None or problems:
            result.reject(problems)
            with self.store.read() as tx:
                earlier = tx.ledger.applied(tx.partners.id_of(partner), feed, sha256, outcome=Outcome.REJECTED)
            if earlier is None:
                ledger.record_apart(self.store, result, received_at, self.clock)
            else:  # the partner serves the same broken page again: one entry and one copy kept are enough
                result.ledger_id = result.duplicate_of = earlier
            result.duration_ms = int((time.perf_counter() - started) * 1000)
            log_result(result, bound, event="page", repeat=earlier is not None)
            return PageResult(result, cursor, more=False, repeat=earlier is not None)
        more = _more(page, cursor)
        after = page.next_cursor if page.next_cursor is not None else cursor
        try:
            self._apply_page(kind, page, items, result, received_at, cursor, after, bound, run_id)
        except AlreadyApplied:
            # another worker applied the same page between our look-up and our claim: now it is a duplicate
            result.nothing_applied()
            result.refusals = []
            self._apply_page(kind, page, items, result, received_at, cursor, after, bound, run_id)
        result.duration_ms = int((time.perf_counter() - started) * 1000)
        if result.outcome != Outcome.EMPTY:
            log_result(result, bound, event="page")
        return PageResult(result, after, more=more)

    def _apply_page(
        self,
        kind: Applier[Any],
        page: pages.Page,
        items: object,
        result: IngestResult,
        received_at: Instant,
        cursor: str | None,
        after: str | None,
        bound: FilteringBoundLogger,
        run_id: str | None,
    ) -> None:
        """One transaction: the page's effects, its ledger entry and the feed's cursor after it."""
        partner, feed = result.partner, result.kind
        partner_settings = self.settings.partner(partner)
        with self.store.write(run_id=run_id) as tx:
            partner_id = tx.partners.id_of(partner)
            tx.locks.partner(partner_id)
            _, last = tx.feeds.position(partner_id, feed)
            # the ledger's claim is on the page at its place in the feed's history: the same page again after
            # another (A, B, A) is news; the same page after the same page (asked again, or raced by another
            # poller, or replayed from an older cursor) is a duplicate
            claim = hashlib.sha256(f"{result.sha256}\n{last or ''}".encode()).hexdigest()
            if not page.items:
                result.outcome = Outcome.EMPTY
            elif result.sha256 == last or (earlier := tx.ledger.applied(partner_id, feed, claim)) is not None:
                result.outcome = Outcome.DUPLICATE
                result.duplicate_of = None if result.sha256 == last else earlier
                ledger.record(tx, partner_id, result, received_at, self.clock())
            else:
                entry = ledger.claim(tx, partner_id, result, received_at, claim)
                engine = Engine(
                    tx, partner, partner_settings.policy, self.clock(), entry, alone=True, zone=partner_settings.zone
                )
                kind.apply_page(Applying(engine, result, partner_settings, received_at), items)
                result.ats_changes = engine.changed
                result.oversold = engine.oversold.report()
                log_snapshot_warnings(engine, result, bound)
                ledger.close_applied(tx, entry, result, self.clock())
                tx.feeds.set_cursor(partner_id, feed, FeedPosition(after, result.sha256), entry, self.clock())
            if after != cursor and result.outcome != Outcome.APPLIED:
                tx.feeds.set_cursor(partner_id, feed, FeedPosition(after, None), result.ledger_id, self.clock())


def _too_large(cut: PageTooLarge) -> Callable[[bytes, Problems], object]:
    """The reading of a page cut at its limit: nothing but the problem that it is too large."""

    def document(_data: bytes, problems: Problems) -> None:
        problems.add(
            Problem(
                None,
                f"too_large: the page is larger than {cut.limit} bytes (api.max_page_bytes, counted decompressed);"
                f" reading stopped after {len(cut.head)} bytes",
                unit="item",
            )
        )

    return document


def _read_page(
    kind: Applier[Any], body: bytes, document: Callable[[bytes, Problems], object], zone: tzinfo, problems: Problems
) -> tuple[pages.Page | None, Any]:
    """The page's envelope and its feed's items, checked; problems say what is wrong."""
    try:
        decoded = document(body, problems)
    except Exception as exc:
        problems.add(Problem(None, f"the adapter could not read the page: {type(exc).__name__}: {exc}", unit="item"))
        decoded = None
    page = None if problems else pages.envelope(decoded, problems)
    items = None if page is None else kind.read_page(page, zone, problems)
    return page, items


def _more(page: pages.Page, cursor: str | None) -> bool:
    """Whether to ask for the next page now: `has_more` when the partner says, else while pages bring items and
    the cursor moves."""
    moved = page.next_cursor is not None and page.next_cursor != cursor
    if page.has_more is not None:
        return page.has_more and moved
    return bool(page.items) and moved
