"""Allocation per stock mode, stock movements, stale rows and placement checks (DOMAIN.md)."""

from __future__ import annotations

import pytest

from gateway.domain import allocation as rules
from gateway.domain.allocation import Line
from gateway.domain.errors import InsufficientStock, InvalidOrder
from gateway.domain.instant import parse
from gateway.domain.modes import Policy, StockMode
from gateway.domain.orders import RequestedLine, merge_lines
from gateway.domain.status import OrderStatus

S = OrderStatus
SIMPLE_ON = Policy(StockMode.SIMPLE, pending_allocation=True)
SIMPLE_OFF = Policy(StockMode.SIMPLE, pending_allocation=False)
ADVANCED = Policy(StockMode.ADVANCED)
TIME_BASED = Policy(StockMode.TIME_BASED)
T_INVENTORY = parse("2019-06-25T12:00:00Z")
T_BEFORE = parse("2019-06-25T11:00:00Z")
T_AFTER = parse("2019-06-26T11:00:00Z")


def line(status: OrderStatus, quantity: int = 5, confirmed: int | None = None, at: int | None = None) -> Line:
    return Line("O1", "123", quantity, status, confirmed, at)


def units(policy: Policy, ln: Line, inventory_at: int | None = T_INVENTORY) -> int:
    return rules.line_allocation(policy, ln, inventory_at).units


@pytest.mark.parametrize(("status", "expected"), [(S.PENDING, 5), (S.CONFIRMED, 0), (S.INVOICING, 0), (S.CLOSED, 0)])
def test_simple_mode_with_pending_allocation_allocates_only_pending_lines(status: OrderStatus, expected: int) -> None:
    """Simple, pending_allocation on: allocation = quantities of pending lines."""
    assert units(SIMPLE_ON, line(status)) == expected


@pytest.mark.parametrize("status", list(OrderStatus))
def test_simple_mode_without_pending_allocation_allocates_nothing(status: OrderStatus) -> None:
    """Simple, pending_allocation off: allocation = 0."""
    assert units(SIMPLE_OFF, line(status)) == 0


@pytest.mark.parametrize(
    ("status", "expected"), [(S.PENDING, 5), (S.CONFIRMED, 5), (S.INVOICING, 5), (S.CLOSED, 0), (S.CANCELLED, 0)]
)
def test_advanced_mode_allocates_pending_confirmed_and_invoicing_lines(status: OrderStatus, expected: int) -> None:
    """Advanced: Pending + Confirmed + Invoicing; closed and cancelled allocate nothing."""
    assert units(ADVANCED, line(status)) == expected


def test_advanced_mode_ignores_confirmations() -> None:
    """Confirmations are stored in every mode but move ATS only in time_based."""
    assert units(ADVANCED, line(S.CONFIRMED, confirmed=2, at=T_AFTER)) == 5


def test_time_based_closed_line_without_confirmation_allocates() -> None:
    """A closed line the partner has not confirmed cannot be in its snapshot yet."""
    assert units(TIME_BASED, line(S.CLOSED)) == 5


def test_time_based_closed_line_confirmed_after_the_inventory_allocates_the_confirmed_quantity() -> None:
    """Closed with confirmation timestamp > inventory timestamp allocates, at the confirmed quantity."""
    assert units(TIME_BASED, line(S.CLOSED, confirmed=4, at=T_AFTER)) == 4


def test_time_based_closed_line_confirmed_before_the_inventory_allocates_nothing() -> None:
    """The snapshot already includes a line confirmed before it."""
    assert units(TIME_BASED, line(S.CLOSED, confirmed=4, at=T_BEFORE)) == 0


def test_time_based_closed_line_confirmed_at_the_inventory_instant_allocates_nothing() -> None:
    """Only a confirmation strictly later than the inventory timestamp keeps allocating."""
    assert units(TIME_BASED, line(S.CLOSED, confirmed=4, at=T_INVENTORY)) == 0


def test_time_based_closed_lines_of_a_never_snapshotted_sku_keep_allocating() -> None:
    """No inventory timestamp: closed lines keep allocating."""
    assert units(TIME_BASED, line(S.CLOSED, confirmed=4, at=T_BEFORE), inventory_at=None) == 4


@pytest.mark.parametrize("status", [S.PENDING, S.CONFIRMED, S.INVOICING])
def test_time_based_confirmation_replaces_the_ordered_quantity_whatever_the_status(status: OrderStatus) -> None:
    """A confirmation replaces the ordered quantity in the allocation from then on."""
    assert units(TIME_BASED, line(status, confirmed=3, at=T_BEFORE)) == 3


def test_cancelled_lines_never_allocate() -> None:
    """Cancelled allocates nothing in any mode."""
    for policy in (SIMPLE_ON, SIMPLE_OFF, ADVANCED, TIME_BASED):
        assert units(policy, line(S.CANCELLED, confirmed=3, at=T_AFTER)) == 0


def test_every_allocating_line_names_its_rule() -> None:
    """Explanations come with the allocation."""
    held = rules.line_allocation(TIME_BASED, line(S.CLOSED, confirmed=4, at=T_AFTER), T_INVENTORY)
    assert held.rule is not None
    assert "after the inventory timestamp" in held.rule
    assert rules.line_allocation(ADVANCED, line(S.CLOSED), T_INVENTORY).rule is None


@pytest.mark.parametrize(
    ("current", "requested", "movement"),
    [
        (S.PENDING, S.CONFIRMED, -5),
        (S.PENDING, S.INVOICING, -5),
        (S.PENDING, S.CLOSED, -5),
        (S.CONFIRMED, S.INVOICING, 0),
        (S.INVOICING, S.CLOSED, 0),
        (S.CONFIRMED, S.CANCELLED, 5),
        (S.INVOICING, S.CANCELLED, 5),
        (S.PENDING, S.CANCELLED, 0),
        (S.CONFIRMED, S.CONFIRMED, 0),
    ],
)
def test_simple_mode_moves_stock_on_confirmation_and_cancellation(
    current: OrderStatus, requested: OrderStatus, movement: int
) -> None:
    """Confirming takes stock; cancelling a confirmed or invoicing line gives it back; pending moves nothing."""
    assert rules.stock_movement(SIMPLE_ON, current, requested, 5) == movement
    assert rules.stock_movement(SIMPLE_OFF, current, requested, 5) == movement


@pytest.mark.parametrize("policy", [ADVANCED, TIME_BASED])
def test_advanced_and_time_based_never_move_stock(policy: Policy) -> None:
    """Only snapshots set stock outside simple mode."""
    assert rules.stock_movement(policy, S.PENDING, S.CONFIRMED, 5) == 0
    assert rules.stock_movement(policy, S.CONFIRMED, S.CANCELLED, 5) == 0


def test_an_older_row_is_stale_and_an_equal_one_reapplies() -> None:
    """Stale: as_of older than the inventory timestamp. Equal timestamps re-apply."""
    assert rules.is_stale(T_BEFORE, T_INVENTORY)
    assert not rules.is_stale(T_INVENTORY, T_INVENTORY)
    assert not rules.is_stale(T_AFTER, T_INVENTORY)
    assert not rules.is_stale(T_BEFORE, None)


def test_simple_mode_flags_a_snapshot_older_than_the_last_confirmation() -> None:
    """The seed's warning: a snapshot must already include confirmed orders."""
    assert rules.snapshot_predates_movement(SIMPLE_ON, T_BEFORE, T_INVENTORY)
    assert not rules.snapshot_predates_movement(SIMPLE_ON, T_AFTER, T_INVENTORY)
    assert not rules.snapshot_predates_movement(ADVANCED, T_BEFORE, T_INVENTORY)


def test_ats_may_go_negative_but_is_published_as_zero() -> None:
    """ATS = stock - allocation; published as max(0, ATS)."""
    assert rules.available(3, 5) == -2
    assert rules.published(-2) == 0
    assert rules.published(4) == 4


def test_a_placement_that_fits_every_line_passes() -> None:
    """Each line within its SKU's ATS."""
    rules.check_placement("O1", {"A": 5, "B": 1}, {"A": 5, "B": 3})


def test_a_placement_is_refused_whole_naming_every_short_line() -> None:
    """One short line refuses the order, and the refusal names each shortage with what was available."""
    with pytest.raises(InsufficientStock) as refused:
        rules.check_placement("O1", {"A": 6, "B": 1, "C": 2}, {"A": 5, "B": 3, "C": -1})
    assert [(s.sku, s.requested, s.available) for s in refused.value.shortages] == [("A", 6, 5), ("C", 2, -1)]
    assert "SKU A wants 6, 5 available" in str(refused.value)
    assert "SKU C wants 2, 0 available" in str(refused.value)


def test_a_sku_never_stocked_has_nothing_to_sell() -> None:
    """An unknown SKU has ATS 0."""
    with pytest.raises(InsufficientStock):
        rules.check_placement("O1", {"NEW": 1}, {})


def test_lines_of_the_same_sku_given_together_are_merged() -> None:
    """An order has at most one line per SKU."""
    merged = merge_lines("O1", [RequestedLine("A", 2), RequestedLine("B", 1), RequestedLine("A", 3)])
    assert [(m.sku, m.quantity) for m in merged.values()] == [("A", 5), ("B", 1)]


def test_an_order_without_lines_or_with_a_zero_quantity_is_refused() -> None:
    """Nothing to place is not an order."""
    with pytest.raises(InvalidOrder):
        merge_lines("O1", [])
    with pytest.raises(InvalidOrder):
        merge_lines("O1", [RequestedLine("A", 0)])


def test_one_sku_in_two_channels_of_one_order_is_refused() -> None:
    """Merging cannot put one line in two collections."""
    with pytest.raises(InvalidOrder, match="two different"):
        merge_lines("O1", [RequestedLine("A", 1, "asm", "c1"), RequestedLine("A", 1, "asm", "c2")])


def test_a_line_with_half_a_channel_is_refused_by_the_one_channel_rule() -> None:
    """An assembly without its collection (or the reverse) is refused with the words of identifiers.channel_problem."""
    for assembly, collection in (("asm", None), (None, "c1")):
        with pytest.raises(InvalidOrder, match="SKU A: assembly and collection go together"):
            merge_lines("O1", [RequestedLine("A", 1, assembly, collection)])
