"""What became of one inbound item (a flat file or a feed page): its result, its report and its log line.

Files (service/ingest) and feed pages (service/feeds) share these: an item is applied, rejected whole, a
duplicate of content applied already, or (a page) empty; its report lists every problem with its line (or
item) number, every row the rules refused, and its warnings: what applied but should be looked at (an
ItemWarning, the one shape of every `warnings` list the gateway shows, items' and commands' alike).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from structlog.typing import FilteringBoundLogger

from gateway.domain.instant import Instant
from gateway.domain.outcomes import Outcome
from gateway.formats.problems import Problem, Problems
from gateway.service.engine import Engine
from gateway.service.oversold import OversoldReport, log_oversold
from gateway.service.snapshots import AtsChange
from gateway.store.port import LedgerCounts

Clock = Callable[[], Instant]
Progress = Callable[[int], None]

PREDATES_CONFIRMATION = "snapshot_predates_confirmation"
DUPLICATE_OF_OLDER = "duplicate_of_older"
_PREDATES_HINT = "the snapshot is older than confirmations the gateway applied; it may put sold units back"


@dataclass(frozen=True)
class ItemWarning:
    """Something an item or a command applied (or kept a duplicate) that the person who sent it should look at: it
    went through all the same (exit 0). `code` names it (and is its log event), `skus` are the first SKUs it
    concerns (engine.SAMPLE), `count` how many rows, levels or items it concerns in all. A `duplicate_of_older`
    also names the entry it repeats (`duplicate_of`) and the entry in force (`in_force`)."""

    code: str
    skus: tuple[str, ...] = ()
    count: int = 1
    duplicate_of: int | None = None
    in_force: int | None = None
    partner: str = ""

    def message(self) -> str:
        """One readable line."""
        if self.code == PREDATES_CONFIRMATION:
            more = self.count - len(self.skus)
            named = ", ".join(self.skus) + (f" and {more} more" if more > 0 else "")
            return (
                f"{self.count} level(s) older than the last confirmation the gateway applied for their SKU ({named}): "
                "applied, but such a level may put units already sold back on sale"
            )
        if self.code == DUPLICATE_OF_OLDER:
            return (
                f"the same content as ledger entry {self.duplicate_of}, older than ledger entry {self.in_force} now "
                f"in force: nothing applied; `gateway ledger reapply --partner {self.partner} --id "
                f"{self.duplicate_of}` applies it again on purpose"
            )
        return f"{self.code}: {self.count} ({', '.join(self.skus)})"

    def as_dict(self) -> dict[str, object]:
        """The warning as JSON-ready data: the one shape of an entry of every `warnings` list (`warning`, `skus`,
        `count`, `message`; a `duplicate_of_older` adds `duplicate_of` and `in_force`)."""
        shown: dict[str, object] = {"warning": self.code, "skus": list(self.skus), "count": self.count}
        if self.code == DUPLICATE_OF_OLDER:
            shown |= {"duplicate_of": self.duplicate_of, "in_force": self.in_force}
        return shown | {"message": self.message()}


def snapshot_warnings(engine: Engine) -> list[ItemWarning]:
    """The warnings of the levels the engine applied: levels older than a confirmation it had applied for their
    SKU (simple mode; see domain.allocation.snapshot_predates_movement)."""
    if not engine.predating:
        return []
    return [ItemWarning(PREDATES_CONFIRMATION, tuple(engine.predating_skus), engine.predating)]


def log_warnings(warnings: list[ItemWarning], bound: FilteringBoundLogger) -> None:
    """Each warning as its own log event (`snapshot_predates_confirmation`: sample_skus, count, hint)."""
    for warning in warnings:
        hint = {"hint": _PREDATES_HINT} if warning.code == PREDATES_CONFIRMATION else {}
        bound.warning(warning.code, sample_skus=list(warning.skus), count=warning.count, **hint)


@dataclass
class IngestResult:
    """What became of one file."""

    partner: str
    kind: str
    source: str
    sha256: str
    size: int
    outcome: Outcome  # applied | rejected | duplicate (or, a page, empty)
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
    oversold: OversoldReport = field(default_factory=OversoldReport)  # SKUs it made oversold
    reapply_of: int | None = None  # the ledger entry whose content this item applies again on purpose
    in_force: int | None = None  # a duplicate of older content: the latest applied entry of its partner and kind
    warnings: list[ItemWarning] = field(
        default_factory=list
    )  # what applied (or stayed a duplicate) but should be looked at
    bundle_id: int | None = None  # the ledger entry of the bundle the file came in (service/bundles)

    @property
    def ok(self) -> bool:
        """Applied with nothing refused, or a harmless duplicate (or an empty page)."""
        return self.outcome in (Outcome.DUPLICATE, Outcome.EMPTY) or (
            self.outcome == Outcome.APPLIED and not self.counts.refused
        )

    def summary(self) -> str:
        """One readable line."""
        if self.outcome == Outcome.DUPLICATE and self.in_force is not None:
            return (
                f"{self.source}: duplicate of ledger entry {self.duplicate_of}, older than the content in force "
                f"(ledger entry {self.in_force}), nothing applied"
            )
        if self.outcome == Outcome.DUPLICATE:
            return f"{self.source}: duplicate of ledger entry {self.duplicate_of}, nothing applied"
        if self.outcome == Outcome.REJECTED:
            first = self.problems[0].describe() if self.problems else "malformed"
            more = len(self.problems) + self.unlisted - 1
            extra = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
            return f"{self.source}: rejected, nothing applied: {first}{extra}"
        verb = "would apply" if self.dry_run else "applied"
        again = f" again (ledger entry {self.reapply_of})" if self.reapply_of is not None else ""
        return (
            f"{self.source}: {verb}{again} {self.counts.applied} row(s), skipped {self.counts.skipped} stale, "
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
            "duplicate_of": self.duplicate_of,
            "reapply_of": self.reapply_of,
            "warnings": [w.as_dict() for w in self.warnings],
        }
        if self.reason is not None:
            report["reason"] = self.reason
        if self.bundle_id is not None:
            report["bundle_id"] = self.bundle_id
        return report

    def older_than(self, in_force: int) -> None:
        """A duplicate of content older than the content in force (ledger entry `in_force`): still nothing applied,
        as a re-delivered old file must not roll back what came after it, but said in a warning."""
        self.in_force = in_force
        self.warnings.append(ItemWarning(DUPLICATE_OF_OLDER, (), 1, self.duplicate_of, in_force, self.partner))

    def reject(self, problems: Problems) -> None:
        """Refused whole: the problems say why, and nothing the item did counts any more."""
        self.outcome = Outcome.REJECTED
        self.problems, self.unlisted = problems.listed, problems.unlisted
        self.nothing_applied()

    def nothing_applied(self) -> None:
        """Forget what the item did (its transaction rolled back, or will apply nothing), rows refused included."""
        self.counts = LedgerCounts()
        self.changes, self.ats_changes = [], 0
        self.refusals = []
        self.oversold = OversoldReport()
        self.warnings = []


class Rejected(Exception):
    """The item is refused whole: its transaction rolls back, and its problems say why."""

    def __init__(self, problems: Problems) -> None:
        super().__init__(problems.total)
        self.problems = problems


def log_snapshot_warnings(engine: Engine, result: IngestResult, bound: FilteringBoundLogger) -> None:
    """Stale rows skipped, and a snapshot older than confirmations applied since, as the engine saw them: the
    warnings go in the item's report (`result.warnings`) too."""
    if engine.stale_skus:
        bound.info("stale_rows_skipped", sample_skus=engine.stale_skus)
    result.warnings = snapshot_warnings(engine)
    log_warnings(result.warnings, bound)


def log_result(result: IngestResult, bound: FilteringBoundLogger, event: str = "file", *, repeat: bool = False) -> None:
    """The item's one log line: `file_applied`, `page_rejected`...; an applied item's line follows an `oversold`
    warning for each SKU it made oversold."""
    context = {
        "ledger_id": result.ledger_id,
        "rows_applied": result.counts.applied,
        "rows_skipped": result.counts.skipped,
        "rows_refused": result.counts.refused,
        "duration_ms": result.duration_ms,
    }
    if result.outcome == Outcome.REJECTED:
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
    elif result.outcome == Outcome.DUPLICATE:
        bound.info(f"{event}_duplicate", duplicate_of=result.duplicate_of, **context)
        if result.in_force is not None:
            bound.warning(
                "duplicate_of_older",
                duplicate_of=result.duplicate_of,
                in_force=result.in_force,
                ledger_id=result.ledger_id,
                hint="the same content as an older item, arriving after newer content: kept a duplicate, so as not "
                "to roll back; `gateway ledger reapply` applies it again on purpose",
            )
    else:
        log_oversold(result.oversold, bound)
        again = {"reapply_of": result.reapply_of} if result.reapply_of is not None else {}
        bound.info(f"{event}_applied", ats_changes=result.ats_changes, **again, **context)
