"""What the appliers share: the item being applied, the shape of an applier, and applying rows one by one."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Generic, Protocol, TypeVar

from gateway.domain import guards
from gateway.domain.errors import Refusal
from gateway.domain.instant import Instant
from gateway.formats.csvfile import CsvTable
from gateway.formats.pages import Page
from gateway.formats.problems import Problem, Problems
from gateway.service.engine import Engine
from gateway.service.items import IngestResult, Progress
from gateway.settings import PartnerSettings

_T = TypeVar("_T")
_Items = TypeVar("_Items")

_PROGRESS_EVERY = 20_000


class _Numbered(Protocol):
    """A row or an item: where it stands in its file or page."""

    @property
    def line(self) -> int: ...


_Item = TypeVar("_Item", bound=_Numbered)


@dataclass(frozen=True)
class Applying:
    """One item inside the transaction that applies it: the engine, where its counts go, and what it needs."""

    engine: Engine
    result: IngestResult  # counts, refusals and the ledger entry
    partner: PartnerSettings
    received_at: Instant
    as_of: Instant | None = None  # a file's instant for rows without their own
    progress: Progress | None = None  # told the rows read so far, now and then

    @property
    def max_skew(self) -> Instant:
        """How far ahead of the gateway's clock (the engine's now) a row's instant may be: `max_clock_skew`."""
        return guards.skew_of(self.partner.max_clock_skew)

    def check_not_future(self, field: str, stamp: Instant) -> None:
        """Refuse (FutureTimestamp) a row whose `field` is stamped too far ahead of the gateway's clock."""
        guards.check_not_future(field, stamp, self.engine.now, self.max_skew)


class Applier(Generic[_Items]):
    """How one kind of inbound item applies, inside its transaction: from a flat file, a feed page, or both.

    A kind that never comes one way keeps the default, which says so (the settings let no such item in)."""

    def apply_file(self, item: Applying, table: CsvTable) -> None:
        """Read the file's rows and apply them; raise Rejected (nothing applies) when any row is malformed."""
        raise TypeError(f"{type(self).__name__} is not applied from flat files")

    def read_page(self, page: Page, zone: tzinfo, problems: Problems) -> _Items:
        """The page's items, checked before the transaction; `problems` says what is wrong with them."""
        raise TypeError(f"{type(self).__name__} is not applied from feed pages")

    def apply_page(self, item: Applying, items: _Items) -> None:
        """Apply the checked items of a page."""
        raise TypeError(f"{type(self).__name__} is not applied from feed pages")


def one_by_one(
    items: Sequence[_Item], apply: Callable[[_Item], object], result: IngestResult, unit: str = "line"
) -> None:
    """Apply each item alone: one the rules refuse is counted and listed with its line (or item) number."""
    for item in items:
        try:
            apply(item)
            result.counts.applied += 1
        except Refusal as refusal:
            result.counts.refused += 1
            result.refusals.append(Problem(item.line, str(refusal), unit=unit, reason=refusal.code))


def counting(rows: Iterator[_T], progress: Progress | None) -> Iterator[_T]:
    """The rows, telling `progress` how many were read every so often and at the end."""
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
