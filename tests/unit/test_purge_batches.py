"""How retention sizes its removing transactions (service/purge.py BatchSize)."""

from __future__ import annotations

from gateway.service.purge import BUDGET, BatchSize


def test_batches_start_small_and_double_while_quick_up_to_the_configured_most() -> None:
    """50 rows first, then twice as many after each transaction under half the budget, never above batch_size."""
    size = BatchSize(500)
    seen = [size.now]
    for _ in range(6):
        size.took(BUDGET / 10)
        seen.append(size.now)
    assert seen == [50, 100, 200, 400, 500, 500, 500]


def test_a_transaction_over_the_budget_halves_the_next_and_one_in_between_keeps_it() -> None:
    """A slow store gets smaller transactions (down to one row), not longer waits for the placements behind them."""
    size = BatchSize(500)
    size.took(BUDGET * 3)
    assert size.now == 25
    size.took(BUDGET * 0.75)
    assert size.now == 25
    for _ in range(10):
        size.took(BUDGET * 2)
    assert size.now == 1


def test_a_configured_most_below_the_first_size_is_the_size_from_the_start() -> None:
    """batch_size = 2 (the tests' aged stores) walks two rows at a time from the first batch."""
    assert BatchSize(2).now == 2
