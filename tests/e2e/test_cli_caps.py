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
        {"sku": "EGGS", "assembly": "paris-11", "collection": "*", "max": 5},
        {"sku": "EGGS", "assembly": "paris-11", "collection": "2026-12-08", "max": None},
    ]


def test_cancelling_frees_room_through_the_cli(cli: Cli) -> None:
    """A cancelled order's units no longer count against the cap."""
    cli("cap", "set", "--partner", "farm", "--sku", "EGGS", *CH, "--max", "4")
    cli("order", "place", "--partner", "farm", "--order-id", "O1", "--line", "EGGS:4", *CH)
    cli("order", "set-status", "--partner", "farm", "--order-id", "O1", "--status", "cancelled")
    assert channel(cli)["ats"] == 4


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
