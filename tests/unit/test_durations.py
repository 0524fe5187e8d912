"""Durations as people type them (gateway/domain/durations.py): `gateway order list --older-than`, `GET orders`."""

from __future__ import annotations

import pytest

from gateway.domain.durations import parse_duration

SECOND = 1_000_000


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5_400), ("2h", 7_200), ("3d", 259_200), ("1w", 604_800), ("45s", 45), ("1d12h", 129_600), (" 2H ", 7_200)],
)
def test_a_duration_is_numbers_with_units_in_microseconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds * SECOND


@pytest.mark.parametrize("text", ["", "3", "d", "3 days", "-2h", "1.5h", "2y", "h2", "1d 12h", "9999999999s"])
def test_anything_else_is_refused_saying_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration: expected a number and a unit \(s, m, h, d, w\)"):
        parse_duration(text)
