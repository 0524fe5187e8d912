"""Caps through the `gateway` command: the seed's producer workflow, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, write_config
from tests.e2e.test_cli import Cli

CH = ("--assembly", "paris-11", "--collection", "2026-12-01")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    run = Cli(write_config(tmp_path, {"farm": {"stock_mode": "advanced"}}))
    run("stock", "set", "--partner", "farm", "--sku", "EGGS", "--quantity", "30")
    return run


def channel(cli: Cli) -> dict[str, object]:
    [row] = json.loads(cli("ats", "--partner", "farm", "--sku", "EGGS", *CH, "--json").stdout)
    return row


def test_the_producers_workflow_holds_through_the_cli(cli: Cli) -> None:
    """Cap 10 for one collection, order 8, refuse 3, apply 5 to all collections, no maximum for one."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "10")
    assert channel(cli) == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "2026-12-01",
        "ats": 10,
        "cap": 10,
        "ordered": 0,
    }
    cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:8", *CH)
    assert (channel(cli)["ats"], channel(cli)["ordered"]) == (2, 8)
    refused = cli("order", "place", "--partner", "farm", "--order-id", "O2", "--line", "EGGS:3", *CH, expect=1)
    assert "cap of collection 2026-12-01 in assembly paris-11 is reached" in refused.stderr
    assert "2 available (cap 10, 8 already ordered)" in refused.stderr

    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", "--assembly", "paris-11", "--all-collections", "--max", "5")
    assert channel(cli) == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "2026-12-01",
        "ats": 0,
        "cap": 5,
        "ordered": 8,
    }
    explained = cli("ats", "--partner", "farm", "--sku", "EGGS", *CH, "--explain").stdout
    assert "cap: 5, from the assembly default" in explained

    cli(
        "cap", "set", "--partner", "farm", "--sku", "EGGS", "--assembly", "paris-11",
        "--collection", "2026-12-08", "--no-max",
    )  # fmt: skip
    explained = cli(
        "ats", "--partner", "farm", "--sku", "EGGS", "--assembly", "paris-11", "--collection", "2026-12-08",
        "--explain", "--json",
    ).stdout  # fmt: skip
    assert json.loads(explained)[0] | {"sku_ats": None} == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "2026-12-08",
        "ats": 22,
        "cap": None,
        "ordered": 0,
        "cap_source": "collection override",
        "sku_ats": None,
    }
    shown = json.loads(cli("cap", "show", "--partner", "farm", "--json").stdout)
    assert shown == [
        {"sku": "EGGS", "assembly": "paris-11", "collection": "*", "max": 5, "cap_source": "assembly default",
         "ordered": None, "remaining": None, "over_cap": False},
        {"sku": "EGGS", "assembly": "paris-11", "collection": "2026-12-01", "max": 5, "cap_source": "assembly default",
         "ordered": 8, "remaining": -3, "over_cap": True},
        {"sku": "EGGS", "assembly": "paris-11", "collection": "2026-12-08", "max": None,
         "cap_source": "collection override", "ordered": 0, "remaining": None, "over_cap": False},
    ]  # fmt: skip


def test_cancelling_frees_room_through_the_cli(cli: Cli) -> None:
    """A cancelled order's units no longer count against the cap."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "4")
    cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:4", *CH)
    cli("order", "set-status", "--partner", "farm", "--order-id", "O1", "--status", "cancelled")
    assert channel(cli)["ats"] == 4


ALL = ("--assembly", "paris-11", "--all-collections")


def test_apply_to_all_collections_prints_what_it_erased_and_the_collections_over_their_cap(cli: Cli) -> None:
    """The operator is told which collections lost their own setting and which now hold more than the cap."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "10")
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", "--assembly", "paris-11", "--collection", "B", "--no-max")
    cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:8", *CH)
    done = cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ALL, "--max", "5")
    assert done.stdout.splitlines() == [
        "SKU EGGS, all collections of paris-11: at most 5",
        "  erased: collection 2026-12-01's own setting (at most 10)",
        "  erased: collection B's own setting (no maximum)",
        "  over cap: collection 2026-12-01 holds 8 ordered, cap 5 (3 over; the orders stay, it takes no more)",
        "  ongoing (open now, reached by the setting): 2026-12-01, B",
    ]
    again = json.loads(cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ALL, "--max", "4", "--json").stdout)
    assert again == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "*",
        "max": 4,
        "cap_source": "assembly default",
        "erased": [],  # erased by the previous command already
        "over_cap": [{"collection": "2026-12-01", "ordered": 8, "cap": 4}],
        "ongoing": ["2026-12-01", "B"],  # no dates: open at any time
        "ats_changes": [],
    }
    one = cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "20").stdout
    assert one.splitlines() == ["SKU EGGS, collection 2026-12-01 of paris-11: at most 20"]


def test_cap_clear_returns_one_collection_to_the_assembly_default(cli: Cli) -> None:
    """It says what the collection had and what applies now; the collection's ATS follows; clearing again is a
    no-op that says so (exit 0)."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ALL, "--max", "5")
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "10")
    cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:8", *CH)
    assert channel(cli)["ats"] == 2
    done = cli("cap", "clear", "--partner", "farm", "--sku", "EGGS", *CH)
    assert done.stdout.splitlines() == [
        "SKU EGGS, collection 2026-12-01 of paris-11: its own setting (at most 10) cleared; "
        "now at most 5, from the assembly default",
        "  over cap: collection 2026-12-01 holds 8 ordered, cap 5 (3 over; the orders stay, it takes no more)",
    ]
    assert (channel(cli)["ats"], channel(cli)["cap"]) == (0, 5)
    again = json.loads(cli("cap", "clear", "--partner", "farm", "--sku", "EGGS", *CH, "--json").stdout)
    assert again == {
        "sku": "EGGS",
        "assembly": "paris-11",
        "collection": "2026-12-01",
        "max": 5,
        "cap_source": "assembly default",
        "erased": [],
        "over_cap": [{"collection": "2026-12-01", "ordered": 8, "cap": 5}],
        "ongoing": [],
        "ats_changes": [],
    }
    other = ("--assembly", "lyon-3", "--collection", "X")
    nothing = cli("cap", "clear", "--partner", "farm", "--sku", "EGGS", *other).stdout
    assert nothing.splitlines() == [
        "SKU EGGS, collection X of lyon-3: no setting of its own, nothing cleared; "
        "now no cap (no setting of its own, no assembly default)"
    ]


def test_cap_show_prints_ordered_and_remaining_and_flags_an_overrun(cli: Cli) -> None:
    """The table: the default's line, each collection's cap (and whether from the default), units and what is
    left, negative with `over cap` when over."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "10")
    cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:8", *CH)
    cli("order", "place", "--partner", "farm", "--order-id", "O2", "--line", "EGGS:2", "--assembly", "paris-11",
        "--collection", "B")  # fmt: skip
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *ALL, "--max", "5")
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", "--assembly", "paris-11", "--collection", "C", "--no-max")
    rows = [line.split() for line in cli("cap", "show", "--partner", "farm").stdout.splitlines()]
    assert rows == [
        ["sku", "assembly", "collection", "max", "ordered", "remaining"],
        ["EGGS", "paris-11", "*", "(all)", "5", "-", "-"],
        ["EGGS", "paris-11", "2026-12-01", "5", "(default)", "8", "-3", "over", "cap"],
        ["EGGS", "paris-11", "B", "5", "(default)", "2", "3"],
        ["EGGS", "paris-11", "C", "no", "maximum", "0", "-"],
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("--assembly", "a"),  # no --collection
        ("--assembly", "a", "--collection", "*"),
        ("--assembly", "a", "--collection", "c*"),
        ("--collection", "c"),  # no --assembly
    ],
)
def test_cap_clear_usage_errors_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    """One named collection of one assembly; the default is changed with cap set --all-collections."""
    cli("cap", "clear", "--partner", "farm", "--sku", "EGGS", *args, expect=2)


@pytest.mark.parametrize(
    "args",
    [
        ("--assembly", "a", "--max", "3"),  # neither --collection nor --all-collections
        ("--assembly", "a", "--collection", "c", "--all-collections", "--max", "3"),
        ("--assembly", "a", "--collection", "c"),  # neither --max nor --no-max
        ("--assembly", "a", "--collection", "c", "--max", "3", "--no-max"),
        ("--assembly", "a", "--collection", "c", "--max", "-1"),
        ("--assembly", "a", "--collection", "c*", "--max", "1"),
    ],
)
def test_cap_set_usage_errors_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    """Exactly one target and one limit; a negative max or a pattern is a usage error."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *args, expect=2)


def test_a_bad_cap_file_is_refused_with_every_bad_row(cli: Cli) -> None:
    """Exit 1, each bad row listed with its line."""
    done = cli("ingest", "--partner", "farm", "--kind", "caps", str(FIXTURES / "caps" / "bad_rows.csv"), expect=1)
    for line in (2, 3, 4, 5):
        assert f"line {line}, column" in done.stderr
    assert json.loads(cli("cap", "show", "--partner", "farm", "--json").stdout) == []
