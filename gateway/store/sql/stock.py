"""The stock repository on SQL: a partner's stock rows, looked up by the thousand and written in batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import compress
from operator import eq, itemgetter, ne

from sqlalchemy import func, select

from gateway.domain.instant import Instant
from gateway.store import schema
from gateway.store.port import LevelLoader
from gateway.store.records import StockRecord, StockVersion, StockVersions
from gateway.store.sql import statements
from gateway.store.sql.repository import SqlRepository
from gateway.store.sql.statements import STOCK_COLUMNS, chunks

_S = schema.stock


class SqlStock(SqlRepository):
    """The port's StockRepository."""

    def level_loader(self, partner_id: int, ledger_id: int | None) -> LevelLoader | None:
        """PostgreSQL's COPY-and-merge loader for a large snapshot; None on SQLite (the row path is its fastest)."""
        return self.dialect.level_loader(self, partner_id, ledger_id)

    def get(self, partner_id: int, skus: Sequence[str]) -> dict[str, StockRecord]:
        """The existing stock rows of `skus`."""
        found: dict[str, StockRecord] = {}
        if self.dialect.looks_up_each(len(skus)):  # a command's few SKUs: one keyed read each
            for sku in skus:
                for row in self._fetch("stock_row", partner_id, sku):
                    found[sku] = StockRecord(*row)
            return found
        # the driver's own cursor: a snapshot looks up every SKU it holds, and row objects would double the cost
        cursor = self.connection.connection.cursor()
        try:
            for chunk in chunks(skus):
                cursor.execute(*self.dialect.by_skus("lookup", partner_id, chunk))
                for sku, quantity, as_of, allocated, published, last_moved_at, set_by in cursor.fetchall():
                    found[sku] = StockRecord(sku, quantity, as_of, allocated, published, last_moved_at, set_by)
        finally:
            cursor.close()
        return found

    def versions(self, partner_id: int, skus: Sequence[str]) -> StockVersions:
        """(sku, quantity, as_of) of the stored row of each of `skus`, aligned with them (None where none).

        Partners often export sorted by SKU: a sorted batch is read as one key range, which costs a fraction of
        looking each SKU up; when the range holds exactly the batch's SKUs (a routine snapshot), its rows are the
        answer as they come. Otherwise, or when the range holds many more rows than the batch (a sparse file),
        the rows are looked up and aligned by SKU.
        """
        found: dict[str, StockVersion] = {}
        cursor = self.connection.connection.cursor()
        try:
            if self.dialect.reads_range(skus):
                ranged = statements.compiled(self.dialect, "versions_range")
                [params] = ranged.params([(partner_id, skus[0], skus[-1])])
                cursor.execute(ranged.sql, params)
                ranged_rows: list[StockVersion] = list(cursor.fetchall())
                if len(ranged_rows) == len(skus) and all(map(eq, map(itemgetter(0), ranged_rows), skus)):
                    return list(ranged_rows)
                if len(ranged_rows) <= statements.RANGE_LIMIT:
                    found.update(zip(map(itemgetter(0), ranged_rows), ranged_rows, strict=True))
                    return list(map(found.get, skus))
            for chunk in chunks(skus):
                cursor.execute(*self.dialect.by_skus("versions", partner_id, chunk))
                rows = cursor.fetchall()
                found.update(zip(map(itemgetter(0), rows), rows, strict=True))
        finally:
            cursor.close()
        return list(map(found.get, skus))

    def unlike(
        self, partner_id: int, skus: Sequence[str], quantities: Sequence[str], as_ofs: Sequence[str]
    ) -> list[int] | None:
        """Where a sorted batch's texts differ from the stored rows of its key range (see the port).

        The range is read as three texts in one row (SQLite's group_concat): its SKUs, which must be the batch's
        exactly and in order, its quantities and its as_ofs, split and compared with the batch's column by column
        by the interpreter's own map, so no tuple is made per stored row.
        """
        count = len(skus)
        if not self.dialect.reads_range(skus):
            return None
        joined = "\n".join(skus)
        if joined.count("\n") != count - 1:  # a SKU with a line break in it: the joined texts could not tell
            return None
        ranged = statements.compiled(self.dialect, "range_texts")
        [params] = ranged.params([(partner_id, skus[0], skus[-1], count + 1)])
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(ranged.sql, params)
            names, held_quantities, held_as_ofs = cursor.fetchall()[0]  # an aggregate: always one row
        finally:
            cursor.close()
        if names != joined:
            return None
        # Joined the same, the range's SKUs hold as many line breaks as the batch's; should one of them hold a
        # line break, the range would have fewer rows than the batch: its texts would split into fewer values.
        stored_quantities, stored_as_ofs = held_quantities.split(","), held_as_ofs.split(",")
        if len(stored_quantities) != count or len(stored_as_ofs) != count:
            return None  # not the batch's SKUs (or not integers as the gateway writes them): compare row by row
        positions = range(count)
        differ = set(compress(positions, map(ne, quantities, stored_quantities)))
        differ.update(compress(positions, map(ne, as_ofs, stored_as_ofs)))
        return sorted(differ)

    def holds(self, partner_id: int) -> bool:
        """One row read, at most."""
        query = select(_S.c.sku).where(_S.c.partner_id == partner_id).limit(1)
        return self.connection.execute(query).first() is not None

    def count_oversold(self, partner_id: int) -> int:
        """How many of the partner's SKUs have a level below their allocation: one count, in the store."""
        query = select(func.count()).where(_S.c.partner_id == partner_id, _S.c.quantity < _S.c.allocated)
        return int(self.connection.execute(query).scalar_one())

    def iterate(self, partner_id: int, skus: Sequence[str] | None = None) -> Iterator[StockRecord]:
        """Stock rows in SKU order: all of the partner's, or those of `skus`."""
        if skus is not None:
            found = self.get(partner_id, sorted(set(skus)))
            yield from (found[sku] for sku in sorted(found))
            return
        query = select(*STOCK_COLUMNS).where(_S.c.partner_id == partner_id).order_by(_S.c.sku)
        for row in self.connection.execute(query.execution_options(yield_per=5000)):
            yield StockRecord(*row)  # STOCK_COLUMNS are the record's fields, in order

    def put(self, partner_id: int, records: Sequence[StockRecord], now: Instant) -> None:
        """Insert or replace these stock rows in one statement batch."""
        self._run_many(
            "put_stock",
            [
                (partner_id, r.sku, r.quantity, r.as_of, r.allocated, r.published, r.last_moved_at, r.set_by, now)
                for r in records
            ],
        )

    def insert(
        self, partner_id: int, levels: Sequence[tuple[str, int, Instant, int]], set_by: int | None, now: Instant
    ) -> None:
        """Insert rows for SKUs not held yet (a conflict would be a bug upstream, and fails the transaction)."""
        self._run_many(
            "insert_stock",
            [(partner_id, sku, quantity, as_of, published, set_by, now) for sku, quantity, as_of, published in levels],
        )
