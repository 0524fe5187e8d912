"""StockRepository.versions: one answer shape, aligned with the SKUs asked for, whichever way the store reads them.

SQLite reads a sorted batch of more than one look-up as one key range; the answer must still be one entry per SKU
asked for, in the order asked, None where no row is held, whether the range holds exactly the batch, more rows
(stored SKUs the batch omits), or the batch holds SKUs the store does not.
"""

from __future__ import annotations

import pytest

from gateway.store.records import StockRecord
from gateway.store.sql import statements
from tests.conftest import AppFactory

pytestmark = pytest.mark.both_stores

BATCH = statements.CHUNK + 100  # more than one look-up: SQLite reads a sorted batch as a key range


def _sku(number: int) -> str:
    return f"S{number:05}"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        pytest.param(range(BATCH), range(BATCH), id="range-holds-exactly-the-batch"),
        pytest.param(range(0, 2 * BATCH), range(0, 2 * BATCH, 2), id="range-holds-skus-the-batch-omits"),
        pytest.param(range(0, BATCH, 2), range(BATCH), id="batch-holds-skus-the-store-does-not"),
        pytest.param(range(BATCH), list(reversed(range(BATCH))), id="unsorted-batch"),
        pytest.param(range(10), [3, 99, 1], id="small-batch"),
    ],
)
def test_versions_are_aligned_with_the_skus_asked_for(
    make_app: AppFactory, stored: range, asked: list[int] | range
) -> None:
    app = make_app(p={"stock_mode": "advanced"})
    with app.store.write() as tx:
        tx.stock.put(tx.partners.id_of("p"), [StockRecord(_sku(n), n, 1_000 + n) for n in stored], 2_000)
    skus = [_sku(n) for n in asked]
    with app.store.read() as tx:
        versions = tx.stock.versions(tx.partners.id_of("p"), skus)
    held = set(stored)
    expected = [(_sku(n), n, 1_000 + n) if n in held else None for n in asked]
    assert [None if v is None else tuple(v) for v in versions] == expected
