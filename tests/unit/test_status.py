"""Order statuses: forward moves, idempotent repeats, cancellation, nothing out of a final status."""

from __future__ import annotations

import pytest

from gateway.domain.errors import IllegalTransition
from gateway.domain.status import OrderStatus, check_transition, is_legal, parse_status

S = OrderStatus


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (S.PENDING, S.CONFIRMED),
        (S.CONFIRMED, S.INVOICING),
        (S.INVOICING, S.CLOSED),
        (S.PENDING, S.CLOSED),
        (S.PENDING, S.INVOICING),
        (S.CONFIRMED, S.CLOSED),
    ],
)
def test_a_status_may_move_forward_and_skip_steps(current: OrderStatus, requested: OrderStatus) -> None:
    """pending -> confirmed -> invoicing -> closed, skipping steps allowed."""
    assert is_legal(current, requested)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_setting_the_same_status_again_is_legal(status: OrderStatus) -> None:
    """Idempotent: the same status again is accepted, even closed or cancelled."""
    check_transition("O1", status, status)


@pytest.mark.parametrize("current", [S.PENDING, S.CONFIRMED, S.INVOICING])
def test_cancelled_is_reachable_from_every_open_status(current: OrderStatus) -> None:
    """cancelled from pending, confirmed or invoicing."""
    assert is_legal(current, S.CANCELLED)


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (S.CONFIRMED, S.PENDING),
        (S.INVOICING, S.CONFIRMED),
        (S.CLOSED, S.INVOICING),
        (S.CLOSED, S.CANCELLED),
        (S.CANCELLED, S.PENDING),
        (S.CANCELLED, S.CLOSED),
    ],
)
def test_backward_moves_and_moves_out_of_final_statuses_are_refused(
    current: OrderStatus, requested: OrderStatus
) -> None:
    """Never backwards, never out of closed or cancelled."""
    assert not is_legal(current, requested)
    with pytest.raises(IllegalTransition) as refused:
        check_transition("O-77", current, requested)
    message = str(refused.value)
    assert "O-77" in message
    assert current.value in message
    assert requested.value in message


def test_a_status_name_is_read_whatever_its_case() -> None:
    """' Confirmed ' reads as confirmed."""
    assert parse_status(" Confirmed ") == S.CONFIRMED


def test_an_unknown_status_lists_the_known_ones() -> None:
    """The error says which statuses exist."""
    with pytest.raises(ValueError, match="pending, confirmed, invoicing, closed, cancelled"):
        parse_status("shipped")
