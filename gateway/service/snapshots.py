"""A snapshot's levels against the stored ones: which rows are new, which change something, which are stale, and
what a changed level does to a SKU's allocation (time_based closed lines follow the inventory timestamp).

The engine (service/engine.py) writes the store; `classify` and `follow` only compare and compute, on the hot path
of a million-row snapshot (rules through local names, objects made only for writes); `fresh_and_changed`,
`levels_changed` and `recomputed` read what they compare for the engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter, ne
from typing import NamedTuple, cast

from gateway.domain import allocation as rules
from gateway.domain.allocation import Line
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.domain.status import OrderStatus
from gateway.formats.stock_rows import PlainLevels
from gateway.service import oversold
from gateway.store.port import UnitOfWork
from gateway.store.records import StockRecord, StockVersion

SAMPLE = 20  # SKUs named in a warning about many rows

StockLevel = tuple[str, int, Instant]  # sku, quantity, as_of


@dataclass(frozen=True)
class AtsChange:
    """A SKU's published ATS moved (before is None when it was never published)."""

    sku: str
    before: int | None
    after: int


class StockInput(NamedTuple):
    """One stock level to set: from a snapshot row or a command."""

    sku: str
    quantity: int
    as_of: Instant


@dataclass
class SnapshotOutcome:
    """What applying stock rows did."""

    applied: int = 0
    skipped: int = 0
    written: int = 0
    predates_movement: int = 0


def classify(
    rows: Sequence[StockLevel],
    held: Sequence[StockVersion | None],
    outcome: SnapshotOutcome,
    stale_sample: list[str],
) -> tuple[list[StockLevel], list[StockLevel]]:
    """Split rows into new SKUs and changed ones by (quantity, as_of) alone, `held` being the stored version of each
    row's SKU (None: not held); count stale rows in `outcome` and name the first SAMPLE in `stale_sample`.

    Most rows of a routine snapshot change nothing: each row is compared whole with the stored
    (sku, quantity, as_of) by the interpreter's own map and compress, and only the rows that differ reach
    the loop below.
    """
    is_stale = rules.is_stale
    fresh: list[StockLevel] = []
    changed: list[StockLevel] = []
    for index in compress(range(len(rows)), map(ne, rows, held)):
        row, version = rows[index], held[index]
        if version is None:
            fresh.append(row)
        elif is_stale(row[2], version[2]):
            outcome.skipped += 1
            if len(stale_sample) < SAMPLE:
                stale_sample.append(row[0])
        else:
            changed.append(row)
    return fresh, changed


def follow(
    policy: Policy,
    changed: Sequence[StockLevel],
    existing: Mapping[str, StockRecord],
    closed: Mapping[str, list[Line]],
    set_by: int | None,
    outcome: SnapshotOutcome,
    predating_sample: list[str],
) -> list[StockRecord]:
    """The stored records of `changed` SKUs with their new levels (to be saved): the allocation of their `closed`
    lines follows the inventory timestamp where the policy says so. Levels older than the SKU's last movement are
    counted in `outcome` (the first SAMPLE named in `predating_sample`)."""
    writes: list[StockRecord] = []
    for sku, quantity, as_of in changed:
        record = existing[sku]
        if rules.snapshot_predates_movement(policy, as_of, record.last_moved_at):
            outcome.predates_movement += 1
            if len(predating_sample) < SAMPLE:
                predating_sample.append(sku)
        lines = closed.get(sku)
        if lines:
            record.allocated += rules.allocated(policy, lines, as_of) - rules.allocated(policy, lines, record.as_of)
        record.quantity, record.as_of, record.set_by = quantity, as_of, set_by
        writes.append(record)
    return writes


def fresh_and_changed(
    tx: UnitOfWork, partner_id: int, rows: Sequence[StockLevel], outcome: SnapshotOutcome, stale_sample: list[str]
) -> tuple[list[StockLevel], list[StockLevel]]:
    """New SKUs and changed ones (stale rows counted and dropped), against the stored versions of the rows."""
    if isinstance(rows, PlainLevels):
        # the store names the rows whose texts differ from what it holds: only those are compared below, the
        # others are equal to their stored rows and change nothing
        positions = tx.stock.unlike(partner_id, rows.skus, rows.quantities, rows.as_of_texts())
        if positions is not None:
            rows = cast(list[StockLevel], rows.pick(positions))  # a snapshot's batch: every as_of is set
    held = tx.stock.versions(partner_id, list(map(itemgetter(0), rows)))  # aligned with the rows
    return classify(rows, held, outcome, stale_sample)


def levels_changed(
    tx: UnitOfWork,
    partner_id: int,
    policy: Policy,
    watch: oversold.Watch,
    changed: Sequence[StockLevel],
    set_by: int | None,
    outcome: SnapshotOutcome,
    predating_sample: list[str],
) -> list[StockRecord]:
    """New levels for SKUs already held (to be saved): time_based closed lines follow the inventory timestamp."""
    skus = [row[0] for row in changed]
    existing = tx.stock.get(partner_id, skus)
    watch.seen(existing.values())
    closed: dict[str, list[Line]] = defaultdict(list)
    if policy.closed_may_allocate:
        for line in tx.orders.lines_of(partner_id, skus, [OrderStatus.CLOSED]):
            closed[line.sku].append(line)
    return follow(policy, changed, existing, closed, set_by, outcome, predating_sample)


def recomputed(tx: UnitOfWork, partner_id: int, policy: Policy, watch: oversold.Watch) -> list[StockRecord]:
    """Every SKU whose allocation differs from what its lines allocate under `policy` (after a change of stock
    mode), with the allocation recomputed (to be saved); lines of a SKU without a stock row get one at level 0."""
    lines: dict[str, list[Line]] = defaultdict(list)
    for line in tx.orders.all_lines(partner_id):
        lines[line.sku].append(line)
    fixed: list[StockRecord] = []
    for record in tx.stock.iterate(partner_id):
        allocated = rules.allocated(policy, lines.pop(record.sku, []), record.as_of)
        if allocated != record.allocated:
            watch.seen([record])
            record.allocated = allocated
            fixed.append(record)
    for sku, orphan_lines in lines.items():
        record = StockRecord(sku=sku, quantity=0)
        watch.seen([record])
        record.allocated = rules.allocated(policy, orphan_lines, None)
        fixed.append(record)
    return fixed
