"""Instants: ISO 8601 in, microseconds since the epoch out, zones honoured."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from gateway.domain import instant


def test_a_timestamp_without_offset_is_read_in_the_given_zone() -> None:
    """Europe/Paris is UTC+2 in June."""
    paris = instant.parse("2019-06-25T12:00:00", ZoneInfo("Europe/Paris"))
    assert instant.to_iso(paris) == "2019-06-25T10:00:00Z"


def test_an_explicit_offset_wins_over_the_zone() -> None:
    """The file's own offset is the truth."""
    assert instant.parse("2019-06-25T12:00:00+00:00", ZoneInfo("Europe/Paris")) == instant.parse("2019-06-25T12:00Z")


def test_round_trip_keeps_microseconds() -> None:
    """Nothing is lost on the way through the integer form."""
    moment = instant.parse("2019-06-25T12:00:00.123456Z")
    assert instant.to_iso(moment) == "2019-06-25T12:00:00.123456Z"


def test_text_that_is_not_a_timestamp_says_so() -> None:
    """A readable message, quoting the text."""
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp: 'yesterday'"):
        instant.parse("yesterday")
