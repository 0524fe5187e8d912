"""Caps per assembly and collection, sentence by sentence of seed 000 and DOMAIN.md."""

from __future__ import annotations

import pytest

from gateway.domain.caps import (
    AssemblyCaps,
    CapReached,
    CapSource,
    EffectiveCap,
    OverCap,
    channel_ats,
    check_channel_placement,
    over_cap,
    remaining,
)


def test_a_cap_for_one_collection_applies_to_that_collection_only() -> None:
    """Setting a cap for one collection applies to that collection only."""
    caps = AssemblyCaps()
    caps.set_collection("dec-01", 10)
    assert caps.effective("dec-01") == EffectiveCap(10, CapSource.COLLECTION)
    assert caps.effective("dec-08") == EffectiveCap(None, CapSource.NONE)


def test_apply_to_all_collections_records_the_assembly_default() -> None:
    """'Always apply this maximum amount for all collections taking place in the Assembly'."""
    caps = AssemblyCaps()
    caps.set_all(10)
    assert caps.effective("dec-01") == EffectiveCap(10, CapSource.ASSEMBLY)
    assert caps.effective("any-future-collection") == EffectiveCap(10, CapSource.ASSEMBLY)


def test_apply_to_all_collections_also_affects_the_ongoing_collections() -> None:
    """'BE AWARE, this also affects the ongoing collections': their own settings are cleared."""
    caps = AssemblyCaps()
    caps.set_collection("ongoing", 3)
    caps.set_collection("other", None)
    caps.set_all(10)
    assert caps.overrides == {}
    assert caps.effective("ongoing") == EffectiveCap(10, CapSource.ASSEMBLY)
    assert caps.effective("other") == EffectiveCap(10, CapSource.ASSEMBLY)


def test_apply_to_all_collections_says_which_settings_it_erased() -> None:
    """The collections' own settings it cleared come back by name, "no maximum" included, for the person told."""
    caps = AssemblyCaps()
    caps.set_collection("dec-08", None)
    caps.set_collection("dec-01", 3)
    assert caps.set_all(10) == {"dec-01": 3, "dec-08": None}
    assert list(caps.set_all(5)) == []  # nothing left to erase


def test_clearing_a_collection_returns_it_to_the_assembly_default() -> None:
    """Its own setting goes (and is returned); clearing again finds nothing and changes nothing."""
    caps = AssemblyCaps()
    caps.set_all(10)
    caps.set_collection("dec-01", None)
    assert caps.clear_collection("dec-01") == (True, None)  # it had its own "no maximum"
    assert caps.effective("dec-01") == EffectiveCap(10, CapSource.ASSEMBLY)
    assert caps.clear_collection("dec-01") == (False, None)
    assert caps == AssemblyCaps(default=10)


def test_what_a_cap_leaves_is_negative_when_a_collection_is_over_it() -> None:
    """cap - ordered, the true overrun shown (not clamped); no cap leaves None."""
    assert remaining(10, 8) == 2
    assert remaining(5, 8) == -3
    assert remaining(None, 8) is None


def test_a_collection_is_over_its_cap_only_beyond_it() -> None:
    """More units than the cap in force; exactly at the cap is full, not over; no maximum is never over."""
    caps = AssemblyCaps()
    caps.set_all(5)
    caps.set_collection("own", 9)
    caps.set_collection("free", None)
    ordered = {"dec-08": 8, "dec-01": 5, "own": 10, "free": 99, "quiet": 0}
    assert over_cap(caps, ordered) == [OverCap("dec-08", 8, 5), OverCap("own", 10, 9)]


def test_no_maximum_for_one_collection_leaves_only_the_overall_stock() -> None:
    """'Do not assign a maximum amount to this collection': only the overall stock is considered."""
    caps = AssemblyCaps()
    caps.set_all(10)
    caps.set_collection("dec-08", None)
    assert caps.effective("dec-08") == EffectiveCap(None, CapSource.COLLECTION)
    assert caps.effective("dec-01") == EffectiveCap(10, CapSource.ASSEMBLY)
    assert channel_ats(25, caps.effective("dec-08").limit, 0) == 25


def test_a_collections_own_cap_wins_over_the_assembly_default() -> None:
    """Effective cap = the collection's own setting if any, else the assembly default, else none."""
    caps = AssemblyCaps()
    caps.set_all(10)
    caps.set_collection("dec-01", 4)
    assert caps.effective("dec-01") == EffectiveCap(4, CapSource.COLLECTION)


def test_removing_the_assembly_default_leaves_no_cap() -> None:
    """All collections with no maximum: no cap anywhere in the assembly."""
    caps = AssemblyCaps()
    caps.set_all(10)
    caps.set_all(None)
    assert caps.effective("dec-01") == EffectiveCap(None, CapSource.NONE)


@pytest.mark.parametrize(
    ("sku_ats", "cap", "ordered", "expected"),
    [
        (30, 10, 0, 10),  # the cap binds
        (30, 10, 8, 2),  # room left under the cap
        (3, 10, 0, 3),  # a cap never raises ATS
        (30, 5, 8, 0),  # a cap lowered below what is ordered: 0, orders kept
        (-4, 10, 0, 0),  # an oversold SKU: 0
        (30, None, 99, 30),  # no cap: the SKU's ATS
        (-4, None, 0, 0),
    ],
)
def test_channel_ats_is_the_room_left_under_the_cap_within_the_skus_ats(
    sku_ats: int, cap: int | None, ordered: int, expected: int
) -> None:
    """Channel ATS = max(0, min(ATS of the SKU, effective cap - units already ordered in that collection))."""
    assert channel_ats(sku_ats, cap, ordered) == expected


def test_a_placement_beyond_the_cap_is_refused_with_what_was_available() -> None:
    """Refused when a line's quantity exceeds the channel ATS; the refusal says the cap and what is ordered."""
    with pytest.raises(CapReached) as refused:
        check_channel_placement(
            "O9",
            "paris-11",
            "dec-01",
            {"EGGS": 3},
            {"EGGS": 30},
            {"EGGS": EffectiveCap(10, CapSource.ASSEMBLY)},
            {"EGGS": 8},
        )
    assert [(s.requested, s.available, s.cap, s.ordered) for s in refused.value.shortages] == [(3, 2, 10, 8)]
    assert "collection dec-01 in assembly paris-11" in str(refused.value)


def test_a_placement_within_the_cap_passes() -> None:
    """Exactly the room left is accepted."""
    check_channel_placement(
        "O9",
        "paris-11",
        "dec-01",
        {"EGGS": 2},
        {"EGGS": 30},
        {"EGGS": EffectiveCap(10, CapSource.ASSEMBLY)},
        {"EGGS": 8},
    )


def test_an_uncapped_collection_is_not_checked_here() -> None:
    """Without a cap, only the SKU's ATS applies (checked by the allocation rules)."""
    check_channel_placement(
        "O9", "paris-11", "dec-08", {"EGGS": 50}, {"EGGS": 30}, {"EGGS": EffectiveCap(None, CapSource.COLLECTION)}, {}
    )
