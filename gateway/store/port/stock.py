"""A partner's stock: each SKU's level, inventory timestamp, cached allocation and published ATS."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from gateway.domain.instant import Instant
from gateway.store.records import MergeOutcome, SnapshotFile, StockRecord, StockVersions


class LevelLoader(Protocol):
    """A large snapshot's levels streamed into the store, then merged in one set-based statement.

    The merge applies the rules of Engine.apply_stock for a partner with no channel and no closed line that may
    allocate: a new SKU is stored with its level as ATS; a stored SKU takes a level that differs and is not older
    than its inventory timestamp (else the row is stale), its published ATS is max(0, level - allocated), and every
    published ATS that moved is queued, replacing an undelivered older value of the SKU."""

    def add(self, rows: Sequence[tuple[str, int, Instant]]) -> None:
        """Stream (sku, level, as_of) rows (every SKU once in a snapshot)."""
        ...

    def copy_file(self, file: SnapshotFile) -> int | None:
        """Stream the raw file in and check it in the store itself, taking its rows as `add` would (the rows
        added): the count of rows, or None when the file is not plainly valid (anything the store does not check
        exactly as the Python reader does, any bad or duplicate row, a level stamped after `file.latest_as_of`).
        None leaves the loader as it was: the caller reads the file row by row instead, which says what is wrong.
        """
        ...

    def merge(self, *, set_by: int | None, now: Instant, moves_stock: bool, sample: int) -> MergeOutcome:
        """Apply every row added; `moves_stock`: the partner's mode moves stock (count rows that predate a
        movement); up to `sample` changes are listed, and up to `sample` SKUs the merge puts below their allocation
        that were not (counted in full)."""
        ...


class StockRepository(Protocol):
    """Stock rows, one per (partner, SKU). The engine computes every field; the store keeps what it is given."""

    def level_loader(self, partner_id: int, ledger_id: int | None) -> LevelLoader | None:
        """A bulk loader for a large snapshot, where the store has one (PostgreSQL's COPY); else None.

        The ATS values the merge queues carry `ledger_id` and the transaction's run."""
        ...

    def get(self, partner_id: int, skus: Sequence[str]) -> dict[str, StockRecord]:
        """The stock rows of the given SKUs that exist."""
        ...

    def versions(self, partner_id: int, skus: Sequence[str]) -> StockVersions:
        """(sku, quantity, as_of) of the stored row of each SKU, aligned with `skus` (None where there is none):
        the caller compares a snapshot's rows with them in place, index by index."""
        ...

    def unlike(
        self, partner_id: int, skus: Sequence[str], quantities: Sequence[str], as_ofs: Sequence[str]
    ) -> list[int] | None:
        """Which rows of a snapshot's batch may change something, told without reading the stored rows back one by
        one: the positions (ascending) of the rows whose quantity or as_of text differs from the stored row's value
        written in decimal ('' for no as_of). `quantities` and `as_ofs` are aligned with `skus`, each the decimal
        text of a row's value (a text that is not, such as '007', only makes its row named).

        None when the store cannot tell (the batch is not sorted, the SKUs it holds in the batch's key range are
        not exactly the batch's, or it has no such comparison, as on PostgreSQL): compare every row with
        versions(). A row not named equals its stored row; a row named may still equal it, so the caller compares
        those rows with versions() as any other."""
        ...

    def holds(self, partner_id: int) -> bool:
        """Whether the partner has any stock row at all."""
        ...

    def count_oversold(self, partner_id: int) -> int:
        """How many of the partner's SKUs have a stock level below their allocation, counted by the store in one
        query (a partner may hold a million SKUs: the metrics ask at every scrape)."""
        ...

    def iterate(self, partner_id: int, skus: Sequence[str] | None = None) -> Iterator[StockRecord]:
        """Stock rows in SKU order, all of them or the given SKUs."""
        ...

    def put(self, partner_id: int, records: Sequence[StockRecord], now: Instant) -> None:
        """Insert or replace these stock rows (`now` their update time)."""
        ...

    def insert(
        self, partner_id: int, levels: Sequence[tuple[str, int, Instant, int]], set_by: int | None, now: Instant
    ) -> None:
        """Insert rows for SKUs the store does not hold yet: (sku, quantity, as_of, published), nothing allocated.

        A SKU held already would be a bug upstream: it fails the transaction (Conflict leaving its block)."""
        ...
