"""Pickup: take complete files from a source, apply each exactly once, then move it aside.

For each file: fetch it into staging (hashed as it is written there, so ingest need not read it again to hash it);
apply it through the ingest service (one transaction with its ledger entry); only after that commit, move the
source file to archive/ (or failed/ with NAME.error.json beside it) and remove its done-marker. A crash between the
commit and the move leaves the file in place: the next pass applies nothing (the ledger knows its sha256) and moves
it. A file whose transport keeps failing, or whose apply fails in the store, is rolled back and counted; after
`max_transport_failures` failures spanning at least `quarantine_after_seconds` it is quarantined and skipped until
`gateway ledger release` puts it back. Either way the pass goes on with the next file. A file never taken (a name
with a path separator or a control character, a hard link) is logged once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway import logs
from gateway.domain.identifiers import escape_controls
from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.formats.manifest import read_manifest
from gateway.formats.problems import Problems
from gateway.formats.rows import Kind
from gateway.service import ledger
from gateway.service.bundles import Bundles, Member, members_in, not_applied
from gateway.service.ingest import Ingestor
from gateway.service.items import IngestResult
from gateway.settings import FolderSource, Settings, SftpSource
from gateway.store.port import Store, StoreError
from gateway.transport.inbox import Entry, Inbox, Staged, TransportError, candidates, complete, refusal, takeable

log = logs.get(__name__)

SourceSettings = FolderSource | SftpSource
InboxFactory = Callable[[SourceSettings], Inbox]

_SECOND = 1_000_000
_LABEL = 1000  # characters of the ledger's source column
MOVED_ASIDE = (Outcome.APPLIED, Outcome.DUPLICATE, Outcome.REJECTED)


@dataclass(frozen=True)
class PickedUp:
    """What became of one source file in one pass."""

    source: str
    file: str
    outcome: Outcome  # applied | duplicate | rejected | transport_error | quarantined
    ledger_id: int | None = None
    detail: str = ""
    refused: int = 0

    @property
    def ok(self) -> bool:
        """Applied with nothing refused, or a duplicate moved aside."""
        return self.outcome == Outcome.DUPLICATE or (self.outcome == Outcome.APPLIED and not self.refused)


@dataclass
class _Look:
    at: float
    entries: dict[str, Entry]


@dataclass(eq=False)
class Pickup:
    """Runs passes over sources; passes over the same source never overlap."""

    store: Store
    settings: Settings
    ingestor: Ingestor
    clock: Callable[[], Instant]
    open_inbox: InboxFactory
    wait: Callable[[float], None] = time.sleep
    # set: finish the file in hand, take no other
    stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _looks: dict[tuple[str, str], _Look] = field(default_factory=dict, init=False)
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)
    # (partner, source, identity) logged as never taken
    _refused: set[tuple[str, str, str]] = field(default_factory=set, init=False)

    @property
    def bundles(self) -> Bundles:
        """Bundles applied with the same ingestor (a source of kind `bundle`)."""
        return Bundles(self.ingestor)

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def poll(self, partner: str, source: SourceSettings) -> list[PickedUp]:
        """One pass over one source: every complete file, oldest first, at most max_files_per_poll."""
        key = (partner, source.name)
        with self._lock(key), self.store.source_lock(f"source:{partner}/{source.name}") as mine:
            if not mine:  # another worker sharing the store is polling it now
                log.debug("source_held_elsewhere", partner=partner, source=source.name)
                return []
            inbox = self.open_inbox(source)
            try:
                ready = self._ready(key, inbox, source)
                with self.store.read() as tx:
                    quarantined = tx.ledger.quarantined(tx.partners.id_of(partner), source.name)
                ready = [entry for entry in ready if entry.identity not in quarantined][: source.max_files_per_poll]
                done: list[PickedUp] = []
                staging = self.settings.staging / partner / source.name
                _clear(staging)  # what a crashed pass left there; passes over one source never overlap
                for entry, staged in inbox.fetch_many(ready, staging):
                    if self.stopping.is_set():
                        if isinstance(staged, Staged):
                            staged.path.unlink(missing_ok=True)
                        break
                    if isinstance(staged, TransportError):
                        done.append(self._transport_failed(partner, source, entry, staged))
                        continue
                    try:
                        with logs.run() as run_id:
                            done.append(self._apply(partner, source, inbox, entry, staged, run_id))
                    except Exception as exc:  # one file's failure is that file's: the pass goes on
                        done.append(self._apply_failed(partner, source, entry, exc))
                    finally:
                        staged.path.unlink(missing_ok=True)
                return done
            finally:
                inbox.close()

    def _ready(self, key: tuple[str, str], inbox: Inbox, source: SourceSettings) -> list[Entry]:
        """Complete files; a second look `stable_seconds` after an earlier one where stability decides."""
        entries = inbox.entries()
        self._refuse_once(key, source, entries)
        earlier = self._looks.get(key)
        wanted = takeable(entries, pattern=source.pattern, marker_suffix=source.marker_suffix)
        needs_stability = source.completion == "stable" or any(entry.size == 0 for entry in wanted)
        unsettled = (
            earlier is None
            or time.monotonic() - earlier.at < source.stable_seconds
            or any(
                (seen := earlier.entries.get(entry.name)) is None
                or (seen.size, seen.mtime) != (entry.size, entry.mtime)
                for entry in wanted
            )
        )
        # a file new or changed since the last look gets a second look stable_seconds later (a watched folder
        # is looked at when a file arrives, so the last look may be long ago and not have seen it)
        if needs_stability and unsettled:
            earlier = _Look(time.monotonic(), {e.name: e for e in entries})
            self.wait(source.stable_seconds)
            entries = inbox.entries()
        self._looks[key] = _Look(time.monotonic(), {e.name: e for e in entries})
        return complete(
            entries,
            pattern=source.pattern,
            completion=source.completion,
            marker_suffix=source.marker_suffix,
            earlier=earlier.entries if earlier is not None else None,
        )

    def _refuse_once(self, key: tuple[str, str], source: SourceSettings, entries: list[Entry]) -> None:
        """Log each file this source will never take, once per file (name, size and time) in this process."""
        for entry in candidates(entries, pattern=source.pattern, marker_suffix=source.marker_suffix):
            refused = refusal(entry)
            if refused is None:
                continue
            with self._guard:
                if (*key, entry.identity) in self._refused:
                    continue
                self._refused.add((*key, entry.identity))
            event, reason = refused
            log.warning(event, partner=key[0], source=source.name, file=escape_controls(entry.shown), reason=reason)

    def _apply(
        self, partner: str, source: SourceSettings, inbox: Inbox, entry: Entry, staged: Staged, run_id: str
    ) -> PickedUp:
        if not isinstance(source.kind, Kind):
            return self._apply_bundle(partner, source, inbox, entry, staged, run_id)
        label = _label(source, entry)
        result = self.ingestor.ingest(
            partner,
            source.kind,
            staged.path,
            source=label,
            received_at=self.clock(),
            digest=staged.digest,
            run_id=run_id,
        )
        return self._moved_aside(partner, source, inbox, entry, result)

    def _apply_bundle(
        self, partner: str, source: SourceSettings, inbox: Inbox, entry: Entry, staged: Staged, run_id: str
    ) -> PickedUp:
        """A manifest: its members staged beside it and applied with it as one bundle, then moved aside with it."""
        problems = Problems()
        with staged.path.open("rb") as stream:
            listed = read_manifest(stream, problems)
        found = members_in(listed, inbox.entries(), entry, source.pattern, problems)
        received_at = self.clock()
        if problems:  # refused whole: the members it names that are there go to failed/ with it
            label = _label(source, entry)
            rejected = self.bundles.reject_manifest(partner, label, staged.digest, problems, received_at=received_at)
            named = [(member, not_applied(partner, item.kind, _label(source, member), label)) for item, member in found]
            return self._moved_aside(partner, source, inbox, entry, rejected, named)
        fetched = list(inbox.fetch_many([member for _, member in found], staged.path.parent))
        try:
            failed = next((got for _, got in fetched if isinstance(got, TransportError)), None)
            if failed is not None:
                return self._transport_failed(partner, source, entry, failed)
            members = [
                Member(item.kind, got.path, _label(source, member), got.digest, item.line)
                for (item, member), (_, got) in zip(found, fetched, strict=True)
                if isinstance(got, Staged)
            ]
            result = self.bundles.ingest_bundle(
                partner, members, source=_label(source, entry), received_at=received_at, run_id=run_id
            )
        finally:
            for _, got in fetched:
                if isinstance(got, Staged):
                    got.path.unlink(missing_ok=True)
        moved = [(member, item) for (_, member), item in zip(found, result.members, strict=True)]
        return self._moved_aside(partner, source, inbox, entry, result, moved)

    def _moved_aside(
        self,
        partner: str,
        source: SourceSettings,
        inbox: Inbox,
        entry: Entry,
        result: IngestResult,
        members: Sequence[tuple[Entry, IngestResult]] = (),
    ) -> PickedUp:
        """After the item's commit: the file to archive/ or failed/ (with its report), and a bundle's members with it
        (the manifest first: a crash between the moves leaves members no pass takes, never a manifest without them)."""
        report = _report(result, source, entry)
        bound = log.bind(partner=partner, source=source.name, file=entry.shown, sha256=result.sha256)
        try:
            if result.outcome == Outcome.REJECTED:
                inbox.fail(entry, source.marker_suffix, report)
                for member, item in members:
                    inbox.fail(member, source.marker_suffix, _report(item, source, member) | {"bundle": entry.shown})
                bound.info("file_moved_to_failed", ledger_id=result.ledger_id)
            else:
                # refused rows, or a warning (a level older than a confirmation, a duplicate of older content), are
                # reported beside the archived file (a bundle's members: their own)
                kept = result.refusals or result.counts.refused or result.warnings
                inbox.archive(entry, source.marker_suffix, report if kept else None)
                for member, item in members:
                    aside = _report(item, source, member) if item.refusals or item.warnings else None
                    inbox.archive(member, source.marker_suffix, aside)
                bound.info("file_archived", ledger_id=result.ledger_id, outcome=result.outcome)
        except TransportError as exc:
            # applied (or refused) and recorded; only the move failed: the ledger recognises it next time
            return self._transport_failed(partner, source, entry, exc)
        with self.store.write() as tx:
            tx.ledger.transport_recovered(tx.partners.id_of(partner), source.name, entry.identity)
        return PickedUp(
            source.name, entry.shown, result.outcome, result.ledger_id, result.summary(), result.counts.refused
        )

    def _apply_failed(self, partner: str, source: SourceSettings, entry: Entry, error: Exception) -> PickedUp:
        """The item rolled back: the store refused it (or the code failed). It counts as a failure of the file."""
        bound = log.bind(partner=partner, kind=str(source.kind), source=source.name, file=entry.shown)
        if isinstance(error, StoreError):
            bound.error("item_store_failed", error=str(error))
        else:
            bound.exception("item_failed", error=_described(error))
        return self._transport_failed(partner, source, entry, error)

    def _transport_failed(self, partner: str, source: SourceSettings, entry: Entry, error: Exception) -> PickedUp:
        bound = log.bind(partner=partner, kind=str(source.kind), source=source.name, file=entry.shown)
        now = self.clock()
        text = _described(error)
        with self.store.write() as tx:
            partner_id = tx.partners.id_of(partner)
            failures = tx.ledger.transport_failed(partner_id, source.name, entry.identity, text, now)
            failing_for = (now - failures.first_at) / _SECOND
            if failures.number < source.max_transport_failures or failing_for < source.quarantine_after_seconds:
                bound.warning("transport_failed", error=text, failures=failures.number, failing_seconds=failing_for)
                return PickedUp(source.name, entry.shown, Outcome.TRANSPORT_ERROR, None, text)
            reason = (
                f"quarantined after {failures.number} transport failures over {failing_for:.0f} s; last: {text}"
                " (`gateway ledger release` puts it back in line)"
            )
            label = _label(source, entry)
            ledger_id = ledger.quarantined(tx, partner_id, str(source.kind), label, entry.size, now, reason)
            tx.ledger.quarantine(partner_id, source.name, entry.identity, now, ledger_id)
        bound.error("file_quarantined", error=text, failures=failures.number, ledger_id=ledger_id)
        return PickedUp(source.name, entry.shown, Outcome.QUARANTINED, ledger_id, reason)


def stopped_at_limit(picked: list[PickedUp], source: SourceSettings) -> bool:
    """The pass took as many files as it may and moved some aside: more may be waiting, so look again at once
    (not when every file failed: the next look would fail the same way)."""
    return len(picked) >= source.max_files_per_poll and any(item.outcome in MOVED_ASIDE for item in picked)


def _label(source: SourceSettings, entry: Entry) -> str:
    """The item's source in the ledger: SOURCE:NAME, cut to the column's length."""
    label = f"{source.name}:{entry.shown}"
    return label if len(label) <= _LABEL else label[: _LABEL - 1] + "…"


def _described(error: BaseException) -> str:
    """An error as one line, never empty."""
    return str(error) or type(error).__name__


def _clear(staging: Path) -> None:
    if staging.is_dir():
        for leftover in staging.iterdir():
            if leftover.is_file():
                leftover.unlink(missing_ok=True)


def _report(result: IngestResult, source: SourceSettings, entry: Entry) -> dict[str, object]:
    """NAME.error.json: what was wrong, with row numbers and the ledger id, and the warnings of what applied."""
    return result.report() | {"file": entry.shown, "source": source.name, "summary": result.summary()}
