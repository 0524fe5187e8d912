"""A snapshot's levels against the stored ones: which rows are new, which change something, which are stale, and
what a changed level does to a SKU's allocation (time_based closed lines follow the inventory timestamp).

The engine (service/engine.py) reads and writes the store; these functions only compare and compute, on the hot
path of a million-row snapshot: rules through local names, objects made only for writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import ne
from typing import NamedTuple

from gateway.domain import allocation as rules
from gateway.domain.allocation import Line
from gateway.domain.instant import Instant
from gateway.domain.modes import Policy
from gateway.store.records import StockRecord, StockVersion

SAMPLE = 20  # SKUs named in a warning about many rows

StockLevel = tuple[str, int, Instant]  # sku, quantity, as_of


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
