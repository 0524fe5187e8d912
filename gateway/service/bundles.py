"""Bundles: several flat files of one partner applied in one transaction, in the order listed, all or nothing.

The seed's advanced mode updates the stock level and closes the orders together; as two files, the moment between
them publishes a wrong ATS (the closings first: units sold twice; the level first: 0). A bundle applies its members
through their kinds' appliers as lone files are, one after the other on one engine whose ATS changes are held back
(Engine `held_back`): only the values that differ after the whole bundle are queued, nothing in between.

The ledger holds one entry for the bundle (kind `bundle`; its sha256 is taken over the members' kinds and sha256s,
in order) and one per member (its own kind and sha256, outcome `bundled`, its report naming the bundle's entry).
The bundle is the unit checked for duplicates: the same members in the same order again are a duplicate, whatever
the manifest's name. A member equal to a file applied alone earlier applies again with its bundle (the bundle is
new content); a lone file equal to a member applied in a bundle is a duplicate of that member, as it would be of
a lone file (a re-delivered old file must not roll anything back).

A member refused whole (malformed) rejects the bundle: nothing applies, and every member's problems are reported
(the bundle's report lists each member's). Rows the rules refuse stay refused alone, as in a lone file. An order's
history and its messages name the member that moved it; the ATS values queued name the bundle. A bundle applies
once: it is never re-applied on purpose (its files may be, alone).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.formats.manifest import BUNDLE, ManifestEntry, read_manifest
from gateway.formats.problems import Problem, Problems
from gateway.formats.rows import Kind
from gateway.service import ledger
from gateway.service.appliers import Applying
from gateway.service.engine import Engine

# the reading of one file, exactly as a lone file is read
from gateway.service.ingest import Ingestor, apply_file, file_digest
from gateway.service.items import IngestResult, Progress, Rejected, log_result, log_snapshot_warnings
from gateway.store.port import AlreadyApplied, Inbound, LedgerCounts, UnitOfWork
from gateway.transport.inbox import Entry, refusal

log = logs.get(__name__)

BUNDLE_REJECTED = "bundle_rejected"  # the reason of a sound member of a rejected bundle


@dataclass(frozen=True)
class Member:
    """One file of a bundle: its kind, where it is read, and its name in the ledger (with its line in the
    manifest, and its sha256 and size when the caller has them)."""

    kind: Kind
    path: Path
    source: str
    digest: tuple[str, int] | None = None
    line: int | None = None


@dataclass
class BundleResult(IngestResult):
    """What became of a bundle (kind `bundle`): the counts are its members' together, the ATS changes its own."""

    members: list[IngestResult] = field(default_factory=list)

    def summary(self) -> str:
        """One readable line."""
        if self.outcome != Outcome.APPLIED:
            return super().summary()
        verb = "would apply" if self.dry_run else "applied"
        return (
            f"{self.source}: {verb} a bundle of {len(self.members)} file(s): {self.counts.applied} row(s), "
            f"skipped {self.counts.skipped} stale, refused {self.counts.refused}; {self.ats_changes} ATS change(s)"
        )

    def member_lines(self) -> list[str]:
        """One line per member of an applied bundle: its rows (its ATS changes are the bundle's)."""
        verb = "would apply" if self.dry_run else "applied"
        return [
            f"{item.source}: {verb} {item.counts.applied} row(s), skipped {item.counts.skipped} stale, "
            f"refused {item.counts.refused}"
            for item in self.members
        ]

    def report(self) -> dict[str, object]:
        """The bundle's report, with each member's report in order."""
        return super().report() | {"members": [member.report() for member in self.members]}


def bundle_digest(members: Sequence[tuple[str, str]]) -> str:
    """The sha256 of a bundle: over its members' (kind, sha256) in order, so equal members in the same order are
    the same bundle whatever the manifest's name or layout."""
    digest = hashlib.sha256()
    for kind, sha256 in members:
        digest.update(f"{kind}:{sha256}\n".encode("ascii"))
    return digest.hexdigest()


def members_in(
    listed: Sequence[ManifestEntry], entries: Sequence[Entry], manifest: Entry, pattern: str, problems: Problems
) -> list[tuple[ManifestEntry, Entry]]:
    """The listed entries of a source's folder that a manifest names as its members, in the manifest's order; a
    member in a sub-folder, missing, never taken (a link, a bad name) or matching the source's `pattern` (it would
    be taken as a manifest) is a problem of the manifest's."""
    by_name = {entry.name: entry for entry in entries}
    found: list[tuple[ManifestEntry, Entry]] = []
    for item in listed:
        name = item.name
        entry = by_name.get(name)
        if "/" in name:
            why = "is in a sub-folder: a bundle source takes its members from its own folder"
        elif name == manifest.name or fnmatch.fnmatchcase(name, pattern):
            why = f"matches the source's pattern {pattern!r}: it would be taken as a manifest"
        elif entry is None:
            why = "is not in the source's folder (write the members first, the manifest last)"
        elif (refused := refusal(entry)) is not None:
            why = f"is never taken: {refused[1]}"
        else:
            found.append((item, entry))
            continue
        problems.add(Problem(item.line, f"{name} {why}", "file"))
    return found


class Bundles:
    """Applies bundles to the store for the configured partners (with the ingestor's store, settings and clock)."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self.store = ingestor.store
        self.clock = ingestor.clock

    def ingest_manifest(
        self,
        partner: str,
        manifest: Path,
        *,
        as_of: Instant | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> BundleResult:
        """Apply the bundle a manifest file lists (members relative to its folder). A manifest that cannot be
        read, or names a member that is not a file inside its folder, rejects the bundle with those problems."""
        problems = Problems()
        with manifest.open("rb") as stream:
            listed = read_manifest(stream, problems)
        folder = manifest.parent.resolve()
        members: list[Member] = []
        for entry in listed:
            path = manifest.parent / entry.file
            why = None
            if not path.is_file():
                why = "is not a file" if path.exists() else "does not exist"
            elif not path.resolve().is_relative_to(folder):
                why = "leaves the manifest's folder (through a link)"
            elif path.resolve() == manifest.resolve():
                why = "is the manifest itself"
            if why is not None:
                problems.add(Problem(entry.line, f"{entry.name} {why} (in {manifest.parent})", "file"))
            else:
                members.append(Member(entry.kind, path, str(path), line=entry.line))
        if problems:
            return self.reject_manifest(partner, str(manifest), file_digest(manifest), problems, dry_run=dry_run)
        return self.ingest_bundle(
            partner, members, source=str(manifest), as_of=as_of, dry_run=dry_run, progress=progress, run_id=run_id
        )

    def reject_manifest(
        self,
        partner: str,
        source: str,
        digest: tuple[str, int],
        problems: Problems,
        *,
        received_at: Instant | None = None,
        dry_run: bool = False,
    ) -> BundleResult:
        """A manifest refused whole (its own problems): recorded as a rejected bundle, its digest the manifest's."""
        result = BundleResult(partner, BUNDLE, source, digest[0], digest[1], outcome=Outcome.REJECTED, dry_run=dry_run)
        result.reject(problems)
        if not dry_run:
            ledger.record_apart(
                self.store, result, received_at if received_at is not None else self.clock(), self.clock
            )
        log_result(result, log.bind(partner=partner, kind=BUNDLE, source=source, sha256=digest[0]), "bundle")
        return result

    def ingest_bundle(
        self,
        partner: str,
        members: Sequence[Member],
        *,
        source: str,
        received_at: Instant | None = None,
        as_of: Instant | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> BundleResult:
        """Apply `members` in order in one transaction with their ledger entries and the bundle's (see the module)."""
        with logs.run(run_id) as run:
            started = time.perf_counter()
            received_at = received_at if received_at is not None else self.clock()
            digests = [member.digest or file_digest(member.path) for member in members]
            sha256 = bundle_digest([(m.kind.value, d[0]) for m, d in zip(members, digests, strict=True)])
            size = sum(d[1] for d in digests)
            result = BundleResult(partner, BUNDLE, source, sha256, size, outcome=Outcome.APPLIED, dry_run=dry_run)
            result.members = [
                IngestResult(partner, m.kind.value, m.source, d[0], d[1], outcome=Outcome.APPLIED, dry_run=dry_run)
                for m, d in zip(members, digests, strict=True)
            ]
            bound = log.bind(partner=partner, kind=BUNDLE, source=source, sha256=sha256, dry_run=dry_run)
            try:
                with self.store.write(rollback=dry_run, run_id=run) as tx:
                    self._apply(tx, result, members, received_at, as_of, progress, bound)
            except Rejected:
                _rejected(result, members)
            except AlreadyApplied:  # another worker applied the same bundle between our look-up and our claim
                result.outcome = Outcome.DUPLICATE
            if result.outcome != Outcome.APPLIED:
                result.nothing_applied()
                for member in result.members:
                    member.nothing_applied()
                    if result.outcome == Outcome.DUPLICATE:
                        member.outcome = Outcome.DUPLICATE
                if not dry_run:
                    self._record_apart(result, received_at)
            result.duration_ms = int((time.perf_counter() - started) * 1000)
            log_result(result, bound, "bundle")
            return result

    def _apply(
        self,
        tx: UnitOfWork,
        result: BundleResult,
        members: Sequence[Member],
        received_at: Instant,
        as_of: Instant | None,
        progress: Progress | None,
        bound: FilteringBoundLogger,
    ) -> None:
        """Inside the bundle's transaction: claim it, apply each member, publish what moved, close the entries."""
        partner_settings = self.ingestor.settings.partner(result.partner)
        partner_id = tx.partners.id_of(result.partner)
        tx.locks.partner(partner_id)  # one item of a partner at a time, whichever worker took it
        earlier = tx.ledger.applied(partner_id, BUNDLE, result.sha256)
        if earlier is not None:
            result.outcome, result.duplicate_of = Outcome.DUPLICATE, earlier
            return
        entry = ledger.claim(tx, partner_id, result, received_at)
        engine = Engine(
            tx,
            result.partner,
            partner_settings.policy,
            self.clock(),
            entry,
            alone=True,
            held_back=True,
            zone=partner_settings.zone,
        )
        for position, (member, item) in enumerate(zip(members, result.members, strict=True), start=1):
            item.bundle_id = entry
            inbound = Inbound(partner_id, item.kind, item.source, item.sha256, item.size, received_at)
            item.ledger_id = tx.ledger.open(inbound, Outcome.BUNDLED)
            bound.info("bundle_member_applying", member=position, of=len(members), file=item.source, kind=item.kind)
            engine.ledger_id = item.ledger_id  # an order's history and its messages name the member that moved it
            applying = Applying(engine, item, partner_settings, received_at, as_of, progress)
            try:
                apply_file(applying, member.kind, member.path)
            except Rejected as rejected:  # the other members are still read: every problem is reported at once
                item.reject(rejected.problems)
        if any(item.outcome == Outcome.REJECTED for item in result.members):
            raise Rejected(Problems())  # rolls the whole bundle back
        engine.ledger_id = entry  # the values published are the bundle's
        engine.publish()
        result.changes, result.ats_changes = list(engine.changes.values()), engine.changed
        result.oversold = engine.oversold.report()
        log_snapshot_warnings(engine, result, bound)  # the whole bundle's, in its report
        now = self.clock()
        for item in result.members:
            result.counts.applied += item.counts.applied
            result.counts.skipped += item.counts.skipped
            result.counts.refused += item.counts.refused
            report = json.dumps(item.report())
            tx.ledger.close(_id(item), Outcome.BUNDLED, item.counts, None, report, now)
        tx.ledger.close(entry, Outcome.APPLIED, result.counts, None, json.dumps(result.report()), now)

    def _record_apart(self, result: BundleResult, received_at: Instant) -> None:
        """A rejected bundle's entry and its members' (their problems, or why they were not applied), or a
        duplicate's entry alone, in a transaction of their own."""
        now = self.clock()
        with self.store.write() as tx:
            partner_id = tx.partners.id_of(result.partner)
            rejected = result.outcome == Outcome.REJECTED
            inbound = Inbound(partner_id, BUNDLE, result.source, result.sha256, result.size, received_at)
            entry = tx.ledger.open(inbound, result.outcome)
            result.ledger_id = entry
            if rejected:
                for item in result.members:
                    item.bundle_id = entry
                    ledger.record(tx, partner_id, item, received_at, now)
            error = result.summary() if rejected else None
            report = json.dumps(result.report()) if rejected else None
            tx.ledger.close(entry, result.outcome, LedgerCounts(), error, report, now)


def not_applied(partner: str, kind: Kind, source: str, manifest: str) -> IngestResult:
    """The result of a member left unread because its manifest is refused whole (its report says so)."""
    item = IngestResult(partner, kind.value, source, "", 0, Outcome.REJECTED, reason=BUNDLE_REJECTED)
    why = Problems()
    why.add(Problem(None, f"not applied: its manifest {manifest} is refused whole"))
    item.reject(why)
    return item


def _id(item: IngestResult) -> int:
    assert item.ledger_id is not None  # opened before it was applied
    return item.ledger_id


def _rejected(result: BundleResult, members: Sequence[Member]) -> None:
    """A member was malformed: the bundle is rejected naming each such member; the sound ones say why they did
    not apply. Nothing of the rolled-back transaction is kept (its ledger ids were never committed)."""
    problems = Problems()
    result.ledger_id = None
    for member, item in zip(members, result.members, strict=True):
        item.ledger_id = None
        if item.outcome == Outcome.REJECTED:
            first = item.problems[0].describe() if item.problems else "malformed"
            count = len(item.problems) + item.unlisted
            more = f" (and {count - 1} more)" if count > 1 else ""
            problems.add(Problem(member.line, f"{item.source} ({item.kind}) is refused whole: {first}{more}", "file"))
        else:
            why = Problems()
            why.add(Problem(None, "not applied: another file of its bundle is refused whole"))
            item.reject(why)
            item.reason = BUNDLE_REJECTED
    result.reject(problems)
