"""A collection's window as set by people and files (gateway.domain.collections): one that closes at or before it
opens is refused, and "ongoing" collections are those open now, an undated one always."""

from __future__ import annotations

import pytest

from gateway.domain.collections import EmptyWindow, check_window, ongoing
from gateway.domain.days import CollectionDates

OPENS, CLOSES = 1_000, 2_000


@pytest.mark.parametrize("closes", [OPENS, OPENS - 1])
def test_a_window_closing_at_or_before_it_opens_is_refused(closes: int) -> None:
    """It would never take an order: `collection_window_empty`, naming both instants."""
    with pytest.raises(EmptyWindow) as refused:
        check_window("paris-11", "fri", CollectionDates(OPENS, closes))
    assert refused.value.code == "collection_window_empty"
    assert "collection fri of assembly paris-11" in str(refused.value)


@pytest.mark.parametrize(
    "dates",
    [CollectionDates(), CollectionDates(OPENS, None), CollectionDates(None, OPENS), CollectionDates(OPENS, CLOSES)],
)
def test_a_window_open_on_one_side_or_closing_after_it_opens_is_taken(dates: CollectionDates) -> None:
    """A missing bound leaves that side open."""
    check_window("paris-11", "fri", dates)


def test_ongoing_collections_are_those_open_now_and_an_undated_one_always_is() -> None:
    """Before opens_at and from closes_at on a collection is not ongoing; each name once, sorted."""
    dated = {
        "early": CollectionDates(opens_at=1_500),
        "open": CollectionDates(OPENS, CLOSES),
        "over": CollectionDates(closes_at=1_200),
        "edge": CollectionDates(closes_at=1_300),
    }
    names = ["undated", "open", "early", "over", "edge", "undated"]
    assert ongoing(names, dated, 1_300) == ["open", "undated"]
    assert ongoing(names, dated, 1_500) == ["early", "open", "undated"]
