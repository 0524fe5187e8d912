"""Why a line holds nothing, and which statuses may hold stock at all (gateway/domain/allocation.py): what
`gateway order show` and `order list --allocating` say and search by, from the engine's own rule."""

from __future__ import annotations

import itertools

import pytest

from gateway.domain import allocation as rules
from gateway.domain.allocation import Line
from gateway.domain.instant import parse
from gateway.domain.modes import Policy, StockMode
from gateway.domain.status import OrderStatus

S = OrderStatus
POLICIES = [
    Policy(StockMode.SIMPLE, pending_allocation=True),
    Policy(StockMode.SIMPLE, pending_allocation=False),
    Policy(StockMode.ADVANCED),
    Policy(StockMode.TIME_BASED),
]
T_INVENTORY = parse("2019-06-25T12:00:00Z")
MOMENTS = [None, parse("2019-06-24T12:00:00Z"), T_INVENTORY, parse("2019-06-26T12:00:00Z")]


def every_line() -> list[tuple[Line, int | None]]:
    """A line in every status, unconfirmed or confirmed (at 0 or 3) before, at or after the inventory timestamp,
    against a SKU snapshotted or never."""
    found = []
    for status, confirmed, confirmed_at, inventory in itertools.product(
        OrderStatus, [None, 0, 3], MOMENTS[1:], [None, T_INVENTORY]
    ):
        at = None if confirmed is None else confirmed_at
        found.append((Line("O1", "EGGS", 5, status, confirmed, at), inventory))
    return found


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.mode}-{p.pending_allocation}")
def test_a_line_either_counts_by_a_rule_or_says_why_it_does_not(policy: Policy) -> None:
    """Exactly one of `rule` and `why_not`; a line that holds nothing by a rule of exclusion holds 0 units."""
    for line, inventory in every_line():
        held = rules.line_allocation(policy, line, inventory)
        assert (held.rule is None) != (held.why_not is None), (line, inventory, held)
        if held.rule is None:
            assert held.units == 0


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.mode}-{p.pending_allocation}")
def test_only_the_statuses_that_may_allocate_ever_hold_a_line(policy: Policy) -> None:
    """A line of a status outside statuses_that_may_allocate never counts; each status inside counts some line."""
    may = rules.statuses_that_may_allocate(policy)
    counted = {line.status for line, inventory in every_line() if rules.line_allocation(policy, line, inventory).rule}
    assert counted == may


@pytest.mark.parametrize(
    ("policy", "line", "why"),
    [
        (POLICIES[2], Line("O1", "EGGS", 5, S.CANCELLED), "cancelled line"),
        (POLICIES[1], Line("O1", "EGGS", 5, S.PENDING), "pending line, pending_allocation off"),
        (POLICIES[0], Line("O1", "EGGS", 5, S.CONFIRMED), "confirmed line: simple mode took its units from the stock"),
        (POLICIES[2], Line("O1", "EGGS", 5, S.CLOSED), "closed line: only time_based mode allocates closed lines"),
        (
            POLICIES[3],
            Line("O1", "EGGS", 5, S.CLOSED, 4, MOMENTS[1]),
            "closed line confirmed at or before the SKU's inventory timestamp: the snapshot includes it",
        ),
    ],
)
def test_why_a_line_holds_nothing_names_the_rule(policy: Policy, line: Line, why: str) -> None:
    held = rules.line_allocation(policy, line, T_INVENTORY)
    assert held.why_not is not None
    assert held.why_not.startswith(why)
