"""PostgreSQL's LevelLoader: a large snapshot's levels by binary COPY into a temporary table, then merged into the
stock in one statement that also queues the published ATS that moved (see port.stock.LevelLoader)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.domain.instant import Instant
from gateway.store.records import MergeOutcome, SnapshotFile
from gateway.store.sql import level_statements, snapshot_copy

if TYPE_CHECKING:
    from gateway.store.sql.repository import SqlRepository


class PostgresLevelLoader:
    """PostgreSQL's LevelLoader: rows go by binary COPY into a temporary table dropped at commit, then one
    statement merges them into the stock and queues the published ATS that moved (see port.LevelLoader)."""

    def __init__(self, transaction: SqlRepository, partner_id: int, ledger_id: int | None) -> None:
        self.transaction = transaction
        self.partner_id = partner_id
        self.ledger_id = ledger_id
        self.rows = 0  # rows of the snapshot
        self.staged = 0  # of them, rows in gateway_levels (copy_file leaves out those that change nothing)
        self.cursor = transaction.connection.connection.cursor()
        self.cursor.execute(level_statements.LEVELS_DROP)
        self.cursor.execute(level_statements.LEVELS_TABLE)

    def add(self, rows: Sequence[tuple[str, int, Instant]]) -> None:
        """Stream (sku, level, as_of) rows."""
        with self.cursor.copy(level_statements.LEVELS_COPY) as copy:
            copy.set_types(["text", "int8", "int8"])
            write = copy.write_row
            for row in rows:
                write(row)
        self.rows += len(rows)
        self.staged += len(rows)

    def copy_file(self, file: SnapshotFile) -> int | None:
        """The raw file read by the server, checked there (see snapshot_copy.py); None: not taken, nothing added."""
        if self.rows:
            return None
        copied = snapshot_copy.copy_file(self.cursor, file, level_statements.LEVELS, self.partner_id)
        if copied is None:
            return None
        self.rows, self.staged = copied
        return self.rows

    def merge(self, *, set_by: int | None, now: Instant, moves_stock: bool, sample: int) -> MergeOutcome:
        """Apply every row added, in one statement (see port.LevelLoader)."""
        outcome = MergeOutcome(rows=self.rows)
        if not self.staged:
            return outcome
        cursor = self.cursor
        params: dict[str, Any] = {"p": self.partner_id}
        cursor.execute(level_statements.LEVELS_ANALYZE)  # a plan for a million rows, not for an empty table
        # most of the file changed nothing (copy_file left it out): the rest is looked up in the stock by its key,
        # where the planner, counting pages, would rather read the partner's whole stock into a hash, three times
        few = self.staged * level_statements.FEW_CHANGED <= self.rows
        if few:
            cursor.execute(level_statements.STOCK_ROWS)
            counted = cursor.fetchone()
            if counted is None or counted[0] < self.rows - self.staged:  # they hold fewer rows than matched here
                cursor.execute(level_statements.STOCK_ANALYZE)
            cursor.execute(level_statements.LOOK_UP_BY_KEY, {"on": "off"})
        cursor.execute(level_statements.LEVEL_STATS, params)
        stale, predates, oversold, held = cursor.fetchone() or (0, 0, 0, 0)
        outcome.skipped = int(stale)
        if stale:
            cursor.execute(level_statements.STALE_SAMPLE, params)
            outcome.stale_sample = [row[0] for row in cursor.fetchall()]
        if moves_stock and predates:
            outcome.predates_movement = int(predates)
            cursor.execute(level_statements.PREDATES_SAMPLE, params)
            outcome.predates_sample = [row[0] for row in cursor.fetchall()]
        if oversold:  # read before the merge: it needs the levels the SKUs had
            outcome.oversold_count = int(oversold)
            cursor.execute(level_statements.OVERSOLD_SAMPLE, params | {"sample": max(sample, 1)})
            outcome.oversold = [(sku, int(quantity), int(allocated)) for sku, quantity, allocated in cursor.fetchall()]
        params |= {
            "set_by": set_by,
            "now": now,
            "ledger": self.ledger_id,
            "run": self.transaction.shared.run_id,
            "sample": max(sample, 1),
        }
        cursor.execute(level_statements.MERGE_LEVELS, params)
        listed = cursor.fetchall()
        outcome.changed = int(listed[0][3]) if listed else 0
        outcome.changes = [(sku, before, after) for sku, before, after, _ in listed[:sample]]
        if few:
            cursor.execute(level_statements.LOOK_UP_BY_KEY, {"on": "on"})
        fresh = self.staged - int(held)
        if fresh >= level_statements.ANALYZE_AFTER and fresh * 10 >= int(held):
            # a partner's first snapshot (or one that grows its stock by a tenth): the planner's figures for the
            # stock would say the partner holds nothing until autovacuum comes by, and the next snapshot's merge
            # would hash the whole stock to look up its few changed rows
            cursor.execute(level_statements.STOCK_ANALYZE)
        return outcome
