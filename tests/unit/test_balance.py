"""The incremental cumulative balance answers exactly what a scan of every date answers (gateway.domain.balance)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.balance import CumulativeBalance

BASE = date(2026, 12, 1)
OPS_SETTINGS = settings(max_examples=200, deadline=None)


def brute_room(changes: list[tuple[date, int]], day: date) -> int:
    """The rule itself: the smallest cumulative balance over `day` and every later date that has a change."""
    dates = {day} | {when for when, _ in changes}
    return min(sum(units for when, units in changes if when <= d) for d in dates if d >= day)


def test_an_empty_balance_has_nothing_to_promise_on_any_date() -> None:
    """No supply and no demand: room 0 everywhere."""
    balance = CumulativeBalance()
    assert balance.room(BASE) == 0
    assert balance.cumulative(BASE) == 0
    assert balance.days == ()


def test_room_on_a_date_is_the_smallest_balance_from_that_date_on() -> None:
    """10 on hand, 20 arriving on the 15th, 25 promised on the 20th: a line today may take 5, one on the 15th 5,
    one on the 21st 5; the receipt never serves today beyond what the 20th leaves."""
    balance = CumulativeBalance([(date.min, 10), (date(2026, 12, 15), 20), (date(2026, 12, 20), -25)])
    assert balance.cumulative(date(2026, 12, 16)) == 30
    assert balance.room(BASE) == 5
    assert balance.room(date(2026, 12, 15)) == 5
    assert balance.room(date(2026, 12, 21)) == 5
    balance.add(date(2026, 12, 20), 25)  # the promise of the 20th withdrawn
    assert balance.room(BASE) == 10
    assert balance.room(date(2026, 12, 15)) == 30


def test_a_new_date_between_known_ones_is_placed_in_order() -> None:
    """Dates met out of order (a rebuild) keep the balance in date order."""
    balance = CumulativeBalance([(date(2026, 12, 20), 5)])
    balance.add(date(2026, 12, 10), -3)
    balance.add(date(2026, 12, 15), 4)
    assert balance.days == (date(2026, 12, 10), date(2026, 12, 15), date(2026, 12, 20))
    assert balance.room(date(2026, 12, 10)) == -3
    assert balance.room(date(2026, 12, 11)) == -3
    assert balance.room(date(2026, 12, 15)) == 1


day_offsets = st.integers(min_value=0, max_value=30)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("receipt"), day_offsets, st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("line"), day_offsets, st.integers(min_value=1, max_value=15)),
        st.tuples(st.just("remove"), st.integers(min_value=0, max_value=50), st.just(0)),
        st.tuples(st.just("query"), day_offsets, st.just(0)),
    ),
    max_size=60,
)


@OPS_SETTINGS
@given(on_hand=st.integers(min_value=-10, max_value=40), ops=operations)
def test_the_incremental_balance_equals_a_scan_of_every_date(on_hand: int, ops: list[tuple[str, int, int]]) -> None:
    """Receipts, lines placed and removed, and queries in any order: room and cumulative as the brute force."""
    changes: list[tuple[date, int]] = [(date.min, on_hand)]
    lines: list[tuple[date, int]] = []
    balance = CumulativeBalance(changes)
    for kind, number, units in ops:
        day = BASE + timedelta(days=number)
        if kind == "receipt":
            changes.append((day, units))
            balance.add(day, units)
        elif kind == "line":
            changes.append((day, -units))
            lines.append((day, units))
            balance.add(day, -units)
        elif kind == "remove" and lines:
            gone_day, gone_units = lines.pop(number % len(lines))
            changes.append((gone_day, gone_units))
            balance.add(gone_day, gone_units)
        assert balance.room(day) == brute_room(changes, day)
        assert balance.cumulative(day) == sum(u for when, u in changes if when <= day)
    for number in range(0, 32, 3):
        day = BASE + timedelta(days=number)
        assert balance.room(day) == brute_room(changes, day)


@OPS_SETTINGS
@given(on_hand=st.integers(min_value=0, max_value=30), ops=operations)
def test_placing_only_what_fits_never_drives_any_balance_below_zero(
    on_hand: int, ops: list[tuple[str, int, int]]
) -> None:
    """The check as a placement uses it: a line is added only when its quantity <= room; then every cumulative
    balance from today on stays >= 0 (supply only grows here), whatever the order of receipts and lines."""
    balance = CumulativeBalance([(date.min, on_hand)])
    changes: list[tuple[date, int]] = [(date.min, on_hand)]
    for kind, number, units in ops:
        day = BASE + timedelta(days=number)
        if kind == "receipt":
            balance.add(day, units)
            changes.append((day, units))
        elif kind == "line" and units <= balance.room(day):
            balance.add(day, -units)
            changes.append((day, -units))
    for number in range(31):
        day = BASE + timedelta(days=number)
        assert sum(u for when, u in changes if when <= day) >= 0
