"""Feeds: poll a partner's API for stock and acknowledgements, page after page, each page one inbound item.

The cursor after a page is saved in the transaction that applied it, so a crash re-polls from the last
committed cursor, and a page applied twice is recognised by the ledger. A malformed page is refused whole,
kept with its error report under the API's `failed` folder, and the feed stays where it was. A page larger
than `api.max_page_bytes` is refused the same way (reason "too_large"), but only its first 64 KiB are kept,
with the size read and the sha256 of what was read: the rest of it is never read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway import logs
from gateway.domain import instant
from gateway.formats.problems import Problem, Problems
from gateway.service.ingest import Clock, Ingestor, PageResult
from gateway.settings import ApiSettings, Settings
from gateway.store.port import Store, StoreError
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

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, ingestor: Ingestor, api: Callable[[str], FeedApi]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ingestor = ingestor
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
            cursor = tx.feed_cursor(tx.partner_id(partner), feed)
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
                with logs.run():
                    page = self.ingestor.ingest_page(
                        partner,
                        feed,
                        body,
                        cursor,
                        (lambda data, problems: api.document(feed, data, problems)) if cut is None else _too_large(cut),
                        reason=None if cut is None else "too_large",
                    )
            except StoreError as exc:  # rolled back with its cursor: the next poll asks for the same page
                report.error = str(exc)
                log.error("feed_poll_failed", partner=partner, feed=feed, cursor=cursor, error=str(exc))
                break
            report.pages.append(page)
            if page.result.outcome == "rejected":
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
