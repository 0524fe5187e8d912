"""The one identifier rule (gateway/domain/identifiers.py)."""

from __future__ import annotations

import pytest

from gateway.domain import identifiers


@pytest.mark.parametrize("value", ["A", "3700000000011", "O-1001", "café", "x" * 128, "a b"])
def test_ordinary_identifiers_are_valid(value: str) -> None:
    """Letters, digits, inner spaces and non-ASCII letters up to 128 characters are identifiers."""
    assert identifiers.problem(value) is None
    assert identifiers.is_valid(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 129, "longer than 128 characters"),
        ("A\x00B", "contains control characters"),
        ("A\tB", "contains control characters"),
        ("A\x7fB", "contains control characters"),
        ("A\x85B", "contains control characters"),
        ("A\u2028B", "contains control characters"),
        ("A\u2029B", "contains control characters"),
        ("P1 ", "has leading or trailing whitespace"),
        (" P1", "has leading or trailing whitespace"),
        ("\u00a0P1", "has leading or trailing whitespace"),
        ("A\ud800B", "contains an unpaired surrogate"),
    ],
)
def test_refused_identifiers_say_why(value: str, reason: str) -> None:
    """Empty, too long, control characters and padding are refused, each with its reason."""
    assert identifiers.problem(value) == reason
    assert not identifiers.is_valid(value)


def test_escape_controls_shows_every_control_character_as_an_escape() -> None:
    """Control characters reach a terminal as escapes, other text unchanged."""
    assert identifiers.escape_controls("A\x00B\x1b[2J\u2028é") == "A\\x00B\\x1b[2J\\u2028é"


def test_escape_controls_shows_lone_surrogates_and_direction_overrides_as_escapes() -> None:
    """A lone surrogate (unwritable) and a right-to-left override (reorders a line) never reach a terminal raw."""
    assert identifiers.escape_controls("A\ud800B\u202eC\u200fD") == "A\\ud800B\\u202eC\\u200fD"


def test_has_controls_sees_the_rules_controls_but_not_surrogates_or_marks() -> None:
    """has_controls is the rule's control set alone (a file name kept with surrogate escapes is not refused)."""
    assert identifiers.has_controls("a\x00b")
    assert identifiers.has_controls("a\u2028b")
    assert not identifiers.has_controls("caf\udce9-stock.csv")
    assert not identifiers.has_controls("a\u202eb")


def test_a_channel_is_both_assembly_and_collection_or_neither() -> None:
    """One of assembly and collection alone is refused; both must be identifiers."""
    assert identifiers.channel_problem(None, None) is None
    assert identifiers.channel_problem("A", "C") is None
    assert identifiers.channel_problem("A", None) == "assembly and collection go together"
    assert identifiers.channel_problem(None, "C") == "assembly and collection go together"
    assert identifiers.channel_problem("A ", "C") == "assembly: has leading or trailing whitespace"
