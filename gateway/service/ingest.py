"""Ingest: one flat file = one inbound item = one transaction, recorded in the ledger.

A file is hashed, checked against the ledger (the same content for the same partner and kind applies once),
parsed as a stream and applied in one transaction with its ledger entry. A file pickup staged comes with the
sha256 taken as it was copied, so it is read once here, to parse it. A malformed file is refused whole:
the transaction rolls back and a `rejected` entry records every problem with its line number. Rows the rules
refuse (not enough ATS, an illegal status move, an unknown order) are refused alone and listed; the rest applies.

Each kind's rows are applied by its applier (service/appliers); feed pages are applied in service/feeds.

The same content again stays a duplicate even after newer content: a re-delivered old snapshot must not roll
stock back. For the kinds whose rows set values a newer item replaces (stock levels, caps), a duplicate of
content older than the latest applied is said (`duplicate_of_older`, a warning naming both entries). Orders,
acknowledgements and confirmations are not: a status never moves back, and a confirmation stamped earlier never
replaces the one in force, so an older repeat could change nothing. Applying content again is an operator's act:
`force` (`gateway ingest --force`), or `reapply` from the copy kept of an applied item (service/retention).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import BinaryIO

from gateway import collector, logs
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.formats import rows as formats
from gateway.formats.csvfile import CsvTable
from gateway.formats.manifest import BUNDLE
from gateway.formats.problems import Malformed, Problems
from gateway.formats.rows import Kind
from gateway.service import ledger, retention
from gateway.service.appliers import Applying, applier
from gateway.service.engine import Engine
from gateway.service.items import Clock, IngestResult, Progress, Rejected, log_result, log_snapshot_warnings
from gateway.settings import Settings
from gateway.store.port import AlreadyApplied, Store

__all__ = ["OLDER_MATTERS", "Clock", "IngestResult", "Ingestor", "Progress", "apply_file", "file_digest"]

log = logs.get(__name__)

# the kinds whose rows set values a newer item replaces: a duplicate of older content is worth a warning
OLDER_MATTERS = frozenset({Kind.STOCK, Kind.CAPS, Kind.COLLECTIONS})


# Pause the cyclic collector while a file is applied: a snapshot allocates millions of short-lived, acyclic
# objects (rows, records, messages) whose generation scans cost a fifth of the ingest time.
_collector_paused = collector.paused


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
        digest: tuple[str, int] | None = None,
        run_id: str | None = None,
        force: bool = False,
        reapply_of: int | None = None,
    ) -> IngestResult:
        """Apply the file at `path` as one item; `as_of` is the file's instant for rows without their own.

        `digest` is the file's (sha256 hex, size) when the caller has it already (pickup hashes a file as it
        stages it); without it the file is read once to hash it, before it is read to apply it. Its log lines
        and the outbox rows it queues carry a `run_id` (the caller's, or a new one).

        `force` applies content applied already all the same (an operator's act), as a new entry naming the one
        it applies again: `reapply_of`, else the entry that first applied it."""
        with logs.run(run_id) as run:
            again = (force, reapply_of)
            return self._ingest(partner, kind, path, source, received_at, as_of, dry_run, progress, digest, run, again)

    def reapply(self, partner: str, ledger_id: int, *, dry_run: bool = False) -> IngestResult:
        """Apply again, on purpose, the content of the partner's ledger entry `ledger_id` from its kept copy: a
        new item, under the same rules (rows stamped older than a SKU's level are still skipped), whose entry
        names the first. NotKept when the entry is no applied item of the partner, or its copy is not kept (pruned
        after `retention.items_days`, or never kept: an entry made before copies were kept, a feed page)."""
        with self.store.read() as tx:
            entry = tx.ledger.entry(tx.partners.id_of(partner), ledger_id)
        if entry is not None and (entry.kind == BUNDLE or entry.outcome == Outcome.BUNDLED):
            raise retention.NotKept(
                f"ledger entry {ledger_id} of {partner} is a bundle or one of its files: a bundle applies once, as a "
                "whole (service/bundles); apply its files again alone with `gateway ingest --force`"
            )
        if entry is None or entry.outcome != Outcome.APPLIED:
            raise retention.NotKept(
                f"ledger entry {ledger_id} is no applied item of {partner}: only an applied item (some of its rows "
                "refused or not) can be applied again"
            )
        copy = retention.kept(self.settings.retention, partner, ledger_id)
        try:
            digest = file_digest(copy) if copy is not None else None
            if copy is None or digest is None or digest[0] != entry.sha256:
                raise FileNotFoundError(ledger_id)
            return self.ingest(
                partner,
                Kind(entry.kind),
                copy,
                source=f"reapply of {ledger_id}: {entry.source}"[:1000],
                dry_run=dry_run,
                digest=digest,
                force=True,
                reapply_of=ledger_id,
            )
        except FileNotFoundError:  # pruned, never kept (or replaced by an orphan), or pruned while it was read
            days = self.settings.retention.items_days
            raise retention.NotKept(
                f"ledger entry {ledger_id} of {partner}: its content is not kept any more (copies of applied items "
                f"are kept retention.items_days = {days} days; none for entries made before this release); drop the "
                "file again and apply it with `gateway ingest --force`"
            ) from None

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
        digest: tuple[str, int] | None,
        run_id: str,
        again: tuple[bool, int | None],
    ) -> IngestResult:
        started = time.perf_counter()
        force, reapply_of = again
        partner_settings = self.settings.partner(partner)
        source = source or str(path)
        received_at = received_at if received_at is not None else self.clock()
        sha256, size = digest if digest is not None else file_digest(path)
        result = IngestResult(partner, kind.value, source, sha256, size, outcome=Outcome.APPLIED, dry_run=dry_run)
        bound = log.bind(partner=partner, kind=kind.value, source=source, sha256=sha256, dry_run=dry_run)
        try:
            with self.store.write(rollback=dry_run, run_id=run_id) as tx:
                partner_id = tx.partners.id_of(partner)
                tx.locks.partner(partner_id)  # one item of a partner at a time, whichever worker took it
                earlier = tx.ledger.applied(partner_id, kind.value, sha256)
                if earlier is None:  # the same content applied in a bundle is applied already too (service/bundles)
                    earlier = tx.ledger.applied(partner_id, kind.value, sha256, Outcome.BUNDLED)
                if earlier is not None and not force:
                    result.outcome, result.duplicate_of = Outcome.DUPLICATE, earlier
                    in_force = tx.ledger.in_force(partner_id, kind.value) if kind in OLDER_MATTERS else None
                    if in_force is not None and in_force[1] != sha256:
                        result.older_than(in_force[0])
                else:
                    if earlier is not None:  # applied again on purpose: a new entry naming the first
                        result.reapply_of = reapply_of if reapply_of is not None else earlier
                    entry = ledger.claim(tx, partner_id, result, received_at)
                    engine = Engine(
                        tx,
                        partner,
                        partner_settings.policy,
                        self.clock(),
                        entry,
                        alone=True,
                        zone=partner_settings.zone,
                    )
                    item = Applying(engine, result, partner_settings, received_at, as_of, progress)
                    apply_file(item, kind, path)
                    result.changes = list(engine.changes.values())
                    result.ats_changes = engine.changed
                    result.oversold = engine.oversold.report()
                    log_snapshot_warnings(engine, result, bound)
                    if not dry_run:  # before the commit: a copy whose entry never commits is an orphan, harmless
                        retention.keep(self.settings.retention, partner, entry, path, self.clock())
                    ledger.close_applied(tx, entry, result, self.clock())
        except Rejected as rejected:
            result.reject(rejected.problems)
        except AlreadyApplied:
            # another worker applied the same content between our look-up and our claim
            result.outcome = Outcome.DUPLICATE
            result.nothing_applied()
        if result.outcome != Outcome.APPLIED and not dry_run:
            ledger.record_apart(self.store, result, received_at, self.clock)
        result.duration_ms = int((time.perf_counter() - started) * 1000)
        log_result(result, bound)
        return result


def apply_file(item: Applying, kind: Kind, path: Path) -> None:
    """Apply the file at `path` as `kind` inside the caller's transaction (a lone file, or a member of a bundle),
    read once as a stream with the cyclic collector paused; Rejected when it is malformed."""
    with path.open("rb") as stream, _collector_paused():
        _apply(item, kind, stream)


def _apply(item: Applying, kind: Kind, stream: BinaryIO) -> None:
    """The file's CSV table (refused whole when it cannot be read at all), applied by its kind's applier."""
    problems = Problems()
    required, optional = formats.COLUMNS[kind]
    try:
        table = CsvTable(stream, item.partner.files.csv_options(kind), required, optional, problems)
    except Malformed as exc:
        problems.add(exc.problem)
        raise Rejected(problems) from None
    applier(kind).apply_file(item, table)
