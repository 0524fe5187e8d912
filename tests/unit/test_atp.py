"""Available-to-promise by date, dated demand and collection windows (docs/rules.md, "Dated supply and dated
demand"), with the source documents' examples: a producer's eggs for next week's collections, a brand's
permanent item available from the 15th."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import allocation, atp, days
from gateway.domain.allocation import Line
from gateway.domain.atp import DayBalance, SupplyRow, SupplySchedule
from gateway.domain.errors import InsufficientStock
from gateway.domain.instant import parse
from gateway.domain.modes import Policy, StockMode
from gateway.domain.status import OrderStatus

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2026, 12, 7)  # today in the egg examples
THURSDAY, FRIDAY, SATURDAY = date(2026, 12, 10), date(2026, 12, 11), date(2026, 12, 12)
TODAY = date(2026, 12, 5)  # today in the permanent item examples
THE_15TH, THE_20TH = date(2026, 12, 15), date(2026, 12, 20)
# the producer's eggs: none on hand, 30 laid by Thursday, 60 more by Saturday
EGGS = SupplySchedule(0, ((THURSDAY, 30), (SATURDAY, 60)))
# the brand's permanent item: sold out now, 100 available from the 15th
PERMANENT = SupplySchedule(0, ((THE_15TH, 100),))


def test_a_collection_picking_up_on_friday_cannot_be_promised_eggs_arriving_saturday() -> None:
    """Friday's collection sees the 30 eggs of Thursday only; Saturday's sees all 90."""
    assert atp.atp(EGGS, {}, FRIDAY, MONDAY) == 30
    assert atp.fits(EGGS, {}, FRIDAY, 30, MONDAY)
    assert not atp.fits(EGGS, {}, FRIDAY, 31, MONDAY)
    assert atp.atp(EGGS, {}, SATURDAY, MONDAY) == 90
    assert atp.atp(EGGS, {}, MONDAY, MONDAY) == 0  # nothing laid yet: nothing to sell for today


def test_the_eggs_schedule_is_explained_date_by_date_with_its_limiting_date() -> None:
    """Friday's collection holds 20; the explanation for a Friday line shows every date and names Friday."""
    explained = atp.explain(EGGS, {FRIDAY: 20}, FRIDAY, MONDAY)
    assert explained.days == (
        DayBalance(MONDAY, 0, 0, 0),
        DayBalance(THURSDAY, 30, 0, 30),
        DayBalance(FRIDAY, 0, 20, 10),
        DayBalance(SATURDAY, 60, 0, 70),
    )
    assert (explained.atp, explained.limiting) == (10, FRIDAY)
    assert atp.atp(EGGS, {FRIDAY: 20}, THURSDAY, MONDAY) == 10  # Thursday's eggs are already Friday's
    assert atp.atp(EGGS, {FRIDAY: 20}, SATURDAY, MONDAY) == 70
    assert atp.explain(EGGS, {FRIDAY: 20}, MONDAY, MONDAY).limiting == MONDAY
    assert atp.schedule_points(EGGS, {FRIDAY: 20}, MONDAY) == (
        atp.SchedulePoint(THURSDAY, 10),
        atp.SchedulePoint(SATURDAY, 70),
    )


def test_the_permanent_item_fits_a_line_wanted_from_the_15th_and_not_one_for_today() -> None:
    """Sold out now, 100 from the 15th: a wanted_on >= 15th line fits against the receipt, today's does not."""
    assert not atp.fits(PERMANENT, {}, TODAY, 1, TODAY)
    assert atp.fits(PERMANENT, {}, THE_15TH, 100, TODAY)
    assert atp.fits(PERMANENT, {}, THE_20TH, 100, TODAY)
    assert not atp.fits(PERMANENT, {}, date(2026, 12, 14), 1, TODAY)


def test_an_earlier_line_never_takes_what_a_later_one_was_promised() -> None:
    """10 on hand, all 10 promised for the 15th: today's cumulative balance is 10, yet nothing fits today."""
    stock = SupplySchedule(10)
    explained = atp.explain(stock, {THE_15TH: 10}, TODAY, TODAY)
    assert explained.days[0] == DayBalance(TODAY, 10, 0, 10)
    assert (explained.atp, explained.limiting) == (0, THE_15TH)
    assert not atp.fits(stock, {THE_15TH: 10}, TODAY, 1, TODAY)
    # a tie names the earliest date
    assert atp.explain(SupplySchedule(0, ((THE_15TH, 5),)), {THE_15TH: 5}, TODAY, TODAY).limiting == TODAY


def test_supply_arriving_later_never_serves_an_earlier_line_even_when_later_lines_leave_room() -> None:
    """5 on hand and 10 on the 15th, 12 promised for the 20th: today may take 3 (5 + 10 - 12), the 15th 3."""
    stock = SupplySchedule(5, ((THE_15TH, 10),))
    assert atp.atp(stock, {THE_20TH: 12}, TODAY, TODAY) == 3
    assert atp.atp(stock, {}, TODAY, TODAY) == 5
    assert atp.atp(stock, {}, THE_15TH, TODAY) == 15


def test_without_dates_atp_today_is_exactly_todays_ats() -> None:
    """No dated supply: ATP today = stock level - allocation, as allocation.available says."""
    assert atp.atp(SupplySchedule(10), {TODAY: 4}, TODAY, TODAY) == allocation.available(10, 4)


@settings(max_examples=150, deadline=None)
@given(
    on_hand=st.integers(min_value=-5, max_value=50),
    lines=st.lists(st.tuples(st.integers(min_value=-3, max_value=20), st.integers(min_value=0, max_value=9))),
)
def test_undated_supply_gives_todays_ats_whatever_the_lines_dates(on_hand: int, lines: list[tuple[int, int]]) -> None:
    """Lines dated or not, past or future: without dated supply every line counts against today, as today."""
    demand = atp.demand_by_day(((TODAY + timedelta(days=n), units) for n, units in lines), TODAY)
    held = sum(units for _, units in lines)
    assert atp.atp(SupplySchedule(on_hand), demand, TODAY, TODAY) == allocation.available(on_hand, held)
    assert atp.schedule_points(SupplySchedule(on_hand), demand, TODAY) == ()


def test_a_shrinking_snapshot_leaves_lines_held_and_publishes_zero_never_a_negative_atp() -> None:
    """10 on hand, 8 held today, the partner's snapshot says 5: ATP is -3 (oversold), published 0; the lines
    stay as they are (no line is dropped), no new line fits, and the explanation names today."""
    shrunk = atp.apply_snapshot(SupplySchedule(10, as_of=1), SupplySchedule(5, ((THE_15TH, 10),), as_of=2))
    assert shrunk is not None
    explained = atp.explain(shrunk, {TODAY: 8}, TODAY, TODAY)
    assert (explained.atp, explained.limiting) == (-3, TODAY)
    assert allocation.published(explained.atp) == 0
    assert not atp.fits(shrunk, {TODAY: 8}, TODAY, 1, TODAY)
    # the receipt of the 15th covers the shortfall first: 5 + 10 - 8 = 7 remain for a line on the 15th
    assert atp.atp(shrunk, {TODAY: 8}, THE_15TH, TODAY) == 7
    assert atp.schedule_points(shrunk, {TODAY: 8}, TODAY) == (atp.SchedulePoint(THE_15TH, 7),)


def test_dates_before_today_count_as_today() -> None:
    """A receipt dated yesterday is on hand; a line wanted yesterday is demand today; ATP asked for yesterday is
    today's."""
    yesterday = TODAY - timedelta(days=1)
    stock = SupplySchedule(0, ((yesterday, 6),))
    assert atp.atp(stock, {}, TODAY, TODAY) == 6
    assert atp.atp(stock, {yesterday: 4}, TODAY, TODAY) == 2
    assert atp.atp(stock, {yesterday: 4}, yesterday, TODAY) == 2
    assert atp.explain(stock, {yesterday: 4}, yesterday, TODAY).days == (DayBalance(TODAY, 6, 4, 2),)


def test_schedule_points_list_the_next_dates_where_the_published_atp_changes() -> None:
    """Only dates after today whose value differs from the previous date's, at most `limit`."""
    stock = SupplySchedule(2, ((THURSDAY, 30), (FRIDAY, 0), (SATURDAY, 60), (date(2026, 12, 19), 5)))
    points = atp.schedule_points(stock, {FRIDAY: 20}, MONDAY)
    assert points == (
        atp.SchedulePoint(THURSDAY, 12),
        atp.SchedulePoint(SATURDAY, 72),
        atp.SchedulePoint(date(2026, 12, 19), 77),
    )
    assert atp.schedule_points(stock, {FRIDAY: 20}, MONDAY, limit=2) == points[:2]
    assert atp.schedule_points(stock, {FRIDAY: 20}, MONDAY, limit=0) == ()


def test_a_snapshot_replaces_the_whole_schedule_unless_it_is_stale() -> None:
    """Rows merge by date into one schedule; an older snapshot is skipped, an equal one re-applies."""
    rows = [SupplyRow(4), SupplyRow(10, THE_15TH), SupplyRow(5, THE_15TH), SupplyRow(1, THE_20TH), SupplyRow(2)]
    given_schedule = atp.schedule_from_rows(rows, as_of=100)
    assert given_schedule == SupplySchedule(6, ((THE_15TH, 15), (THE_20TH, 1)), 100)
    assert atp.apply_snapshot(given_schedule, SupplySchedule(3, as_of=99)) is None
    assert atp.apply_snapshot(given_schedule, SupplySchedule(3, as_of=100)) == SupplySchedule(3, as_of=100)
    assert atp.apply_snapshot(None, SupplySchedule(3, as_of=1)) == SupplySchedule(3, as_of=1)
    assert not SupplySchedule(3).dated
    assert given_schedule.dated


def test_simple_mode_movements_take_on_hand_units_only() -> None:
    """A confirmation takes today's units, whatever the line's date; receipts stay as the partner gave them."""
    assert PERMANENT.moved(-5) == SupplySchedule(-5, PERMANENT.receipts)


@pytest.mark.parametrize(
    ("policy", "held"),
    [
        (Policy(StockMode.SIMPLE, pending_allocation=True), {THE_15TH: 3}),
        (Policy(StockMode.SIMPLE, pending_allocation=False), {}),
        (Policy(StockMode.ADVANCED), {THE_15TH: 3, TODAY: 4}),
    ],
)
def test_dated_demand_follows_the_modes_allocation_rules(policy: Policy, held: dict[date, int]) -> None:
    """Each line is demand on its date for exactly the units its mode allocates (zero-unit dates may show)."""
    lines = [
        (Line("O1", "SKU", 3, OrderStatus.PENDING), THE_15TH),
        (Line("O2", "SKU", 4, OrderStatus.CONFIRMED), TODAY - timedelta(days=2)),
        (Line("O3", "SKU", 9, OrderStatus.CANCELLED), THE_20TH),
    ]
    demand = atp.allocating_demand(policy, lines, None, TODAY)
    assert {day: units for day, units in demand.items() if units} == held


def test_a_dated_placement_check_refuses_the_whole_order_naming_each_lines_date() -> None:
    """The fast check against each SKU's balance: one short line refuses the order, code insufficient_stock."""
    balances = {"P": atp.balance_of(PERMANENT, {}), "E": atp.balance_of(EGGS, {FRIDAY: 20})}
    atp.check_dated_placement("O1", {"P": (100, THE_15TH), "E": (10, FRIDAY)}, balances, MONDAY)
    with pytest.raises(atp.NotAvailableOn) as refused:
        atp.check_dated_placement("O2", {"P": (1, TODAY), "E": (11, FRIDAY), "X": (1, FRIDAY)}, balances, MONDAY)
    assert refused.value.code == "insufficient_stock"
    assert isinstance(refused.value, InsufficientStock)
    assert [(s.sku, s.available) for s in refused.value.shortages] == [("E", 10), ("P", 0), ("X", 0)]
    assert "SKU E wants 11 on 2026-12-11, 10 available" in str(refused.value)


def test_a_dated_collections_channel_atp_is_bounded_by_its_pickup_date_and_its_cap() -> None:
    """min(ATP on the pickup date, cap - ordered), never below 0."""
    on_friday = atp.atp(EGGS, {FRIDAY: 8}, FRIDAY, MONDAY)
    assert atp.channel_atp(on_friday, 10, 8) == 2
    assert atp.channel_atp(on_friday, None, 8) == 22
    assert atp.channel_atp(on_friday, 5, 8) == 0


@settings(max_examples=150, deadline=None)
@given(
    today_offset=st.integers(min_value=0, max_value=10),
    on_hand=st.integers(min_value=-5, max_value=30),
    receipts=st.lists(st.tuples(st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=20))),
    lines=st.lists(st.tuples(st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=9))),
    on_offset=st.integers(min_value=0, max_value=22),
)
def test_atp_the_balance_and_a_brute_force_over_all_dates_agree(
    today_offset: int,
    on_hand: int,
    receipts: list[tuple[int, int]],
    lines: list[tuple[int, int]],
    on_offset: int,
) -> None:
    """For every schedule: the rule checked date by date, the scan (atp) and the incremental balance agree."""
    base = date(2026, 12, 1)
    today = base + timedelta(days=today_offset)
    on = base + timedelta(days=on_offset)
    schedule = atp.schedule_from_rows(
        [SupplyRow(on_hand), *(SupplyRow(units, base + timedelta(days=n)) for n, units in receipts)], None
    )
    demand = atp.demand_by_day(((base + timedelta(days=n), units) for n, units in lines), today)
    start = max(on, today)
    expected = min(
        on_hand
        + sum(units for n, units in receipts if base + timedelta(days=n) <= d)
        - sum(units for n, units in lines if base + timedelta(days=n) <= d)
        for d in (start + timedelta(days=k) for k in range(30))
    )
    assert atp.atp(schedule, demand, on, today) == expected
    assert atp.balance_of(schedule, demand).room(start) == expected


def test_a_lines_demand_date_is_its_pickup_date_else_wanted_on_else_today() -> None:
    """Pickup date first, then wanted_on, then today; never before today."""
    assert days.demand_day(FRIDAY, THE_20TH, MONDAY) == FRIDAY
    assert days.demand_day(None, THE_20TH, MONDAY) == THE_20TH
    assert days.demand_day(None, None, MONDAY) == MONDAY
    assert days.demand_day(date(2026, 12, 1), None, MONDAY) == MONDAY


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-12-15", THE_15TH),
        ("2026-12-14T23:30:00", date(2026, 12, 14)),  # no offset: read in Paris, still the 14th there
        ("2026-12-14T23:30:00Z", THE_15TH),  # 00:30 on the 15th in Paris
        ("2026-12-15T00:30:00+01:00", THE_15TH),
    ],
)
def test_an_available_from_or_wanted_on_cell_is_a_date_in_the_partners_zone(text: str, day: date) -> None:
    """A date as given; an instant's date in the partner's zone, one without an offset read in that zone."""
    assert days.parse_day(text, PARIS) == day


@pytest.mark.parametrize("text", ["", "15/12/2026", "2026-13-01", "tomorrow"])
def test_a_cell_that_is_no_date_is_refused_with_a_readable_message(text: str) -> None:
    """ValueError naming the cell."""
    with pytest.raises(ValueError, match="not an ISO 8601 date or timestamp"):
        days.parse_day(text, PARIS)


def test_today_is_the_partners_date_now() -> None:
    """23:30 UTC on the 14th is already the 15th in Paris."""
    assert days.today(parse("2026-12-14T23:30:00Z"), PARIS) == THE_15TH


def test_a_collection_takes_orders_from_opens_at_until_just_before_closes_at() -> None:
    """opens_at inclusive, closes_at exclusive; missing bounds leave that side open; outside: collection_closed."""
    window = days.CollectionDates(parse("2026-12-07T08:00:00Z"), parse("2026-12-10T18:00:00Z"), FRIDAY)
    assert not window.is_open(parse("2026-12-07T07:59:59Z"))
    assert window.is_open(parse("2026-12-07T08:00:00Z"))
    assert window.is_open(parse("2026-12-10T17:59:59Z"))
    assert not window.is_open(parse("2026-12-10T18:00:00Z"))
    assert days.CollectionDates().is_open(parse("1999-01-01T00:00:00Z"))
    days.check_collection_open("O1", "paris-11", "2026-12-11", window, parse("2026-12-09T00:00:00Z"))
    with pytest.raises(days.CollectionClosed) as late:
        days.check_collection_open("O2", "paris-11", "2026-12-11", window, parse("2026-12-10T18:00:00Z"))
    assert late.value.code == "collection_closed"
    assert "it closed at 2026-12-10T18:00:00Z" in str(late.value)
    with pytest.raises(days.CollectionClosed, match="it opens at 2026-12-07T08:00:00Z"):
        days.check_collection_open("O3", "paris-11", "2026-12-11", window, parse("2026-12-01T00:00:00Z"))


def test_receipts_due_by_today_are_kept_on_hand_and_the_atp_of_every_date_stays_the_same() -> None:
    """A snapshot read on the 5th: receipts of the 1st and the 5th join the units on hand, the 15th's stays a
    receipt; the supply from today on, and so every ATP, is the same either way."""
    given_rows = SupplySchedule(5, ((date(2026, 12, 1), 2), (TODAY, 1), (THE_15TH, 10)))
    kept = given_rows.due_on_hand(TODAY)
    assert (kept.on_hand, kept.receipts) == (8, ((THE_15TH, 10),))
    for on in (TODAY, THE_15TH, THE_20TH):
        assert atp.atp(kept, {TODAY: 3}, on, TODAY) == atp.atp(given_rows, {TODAY: 3}, on, TODAY)
