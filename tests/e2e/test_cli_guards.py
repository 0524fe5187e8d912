"""Ordinary partner mistakes through `gateway ingest` as brand IT runs it: each refused row printed with its line
and its reason, in `--json` too, exit 1 as for any refused row; the rest of the file applied.

The fixtures' future stamps are in 2099, so these tests hold on the real clock for years to come.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, write_config
from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    config = write_config(
        tmp_path,
        {
            "tb": {"stock_mode": "time_based"},
            "lax": {"stock_mode": "time_based", "allow_over_confirmation": True},
        },
    )
    run = Cli(config)
    for partner in ("tb", "lax"):
        run("ingest", "--partner", partner, "--kind", "stock", str(FIXTURES / "stock" / "good.csv"))
        run("ingest", "--partner", partner, "--kind", "orders", str(FIXTURES / "orders" / "good.csv"))
    return run


def ingest(cli: Cli, partner: str, kind: str, path: Path, *options: str, expect: int = 1) -> tuple[str, str]:
    done = cli("ingest", "--partner", partner, "--kind", kind, *options, str(path), expect=expect)
    return done.stdout, done.stderr


def test_a_closing_row_for_a_mistyped_order_is_refused_unknown_order_and_creates_nothing(cli: Cli) -> None:
    """O-100l (a lower-case L) for O-1001: line 4 refused, exit 1; O-1001 closes; no order O-100l exists."""
    path = FIXTURES / "orders" / "refused_unknown_order.csv"
    stdout, stderr = ingest(cli, "tb", "orders", path)
    assert "applied 2 row(s), skipped 0 stale, refused 1" in stdout
    assert f"gateway: refused 1 row(s) of {path}:" in stderr
    assert "  line 4: [unknown_order] order O-100l is unknown, and a row places a new order only as pending or " in (
        stderr
    )
    assert cli.ats("tb", "3700000000011")["allocated"] == 3 + 2  # O-1002 open; O-1001 closed, not yet confirmed
    done = cli("order", "set-status", "--partner", "tb", "--order-id", "O-100l", "--status", "cancelled", expect=1)
    assert "order O-100l is unknown" in done.stderr


def test_ingest_json_lists_each_refused_row_with_its_line_and_reason(cli: Cli) -> None:
    """--json: `refused` holds line, message and reason; exit 1."""
    path = FIXTURES / "orders" / "refused_unknown_order.csv"
    stdout, _ = ingest(cli, "tb", "orders", path, "--json")
    report = json.loads(stdout)
    assert (report["outcome"], report["rows_applied"], report["rows_refused"]) == ("applied", 2, 1)
    [listed] = report["refused"]
    assert (listed["line"], listed["reason"]) == (4, "unknown_order")


def test_a_stock_row_dated_in_the_future_is_refused_and_a_later_file_updates_that_sku(cli: Cli, tmp_path: Path) -> None:
    """Line 3 (2099) refused future_timestamp; the SKU is not frozen: a file of today sets it."""
    path = FIXTURES / "stock" / "refused_future_as_of.csv"
    stdout, stderr = ingest(cli, "tb", "stock", path)
    assert "applied 1 row(s), skipped 0 stale, refused 1" in stdout
    assert "  line 3: [future_timestamp] as_of 2099-01-01T00:00:00Z is in the future: more than max_clock_skew" in (
        stderr
    )
    assert cli.ats("tb", "3700000000028")["stock"] == 4  # as good.csv left it

    today = tmp_path / "today.csv"
    today.write_text("sku,quantity\n3700000000028,6\n", encoding="utf-8")  # as of now, when received
    stdout, _ = ingest(cli, "tb", "stock", today, expect=0)
    assert "applied 1 row(s), skipped 0 stale, refused 0" in stdout
    assert cli.ats("tb", "3700000000028")["stock"] == 6


def test_a_future_as_of_option_refuses_the_whole_file(cli: Cli, tmp_path: Path) -> None:
    """--as-of 2099: rejected, nothing applied, the reason named."""
    path = tmp_path / "levels.csv"
    path.write_text("sku,quantity\n3700000000011,1\n", encoding="utf-8")
    stdout, stderr = ingest(cli, "tb", "stock", path, "--as-of", "2099-01-01T00:00:00Z", "--json")
    assert "gateway: rejected:" in stderr
    assert "file: [future_timestamp] the file's as_of 2099-01-01T00:00:00Z is in the future" in stderr
    assert json.loads(stdout)["reason"] == "future_timestamp"
    assert cli.ats("tb", "3700000000011")["stock"] == 10


def test_a_confirmation_dated_in_the_future_is_refused_at_its_line(cli: Cli) -> None:
    """confirmed_at 2099: line 3 refused; line 2 applies."""
    path = FIXTURES / "confirmations" / "refused_future_confirmed_at.csv"
    stdout, stderr = ingest(cli, "tb", "confirmations", path)
    assert "applied 1 row(s), skipped 0 stale, refused 1" in stdout
    assert "  line 3: [future_timestamp] confirmed_at 2099-01-01T00:00:00Z is in the future" in stderr


def test_confirming_50_on_a_2_unit_line_is_refused_unless_the_partner_allows_it(cli: Cli) -> None:
    """confirmed_above_ordered for `tb`; `lax` (allow_over_confirmation = true) takes it, exit 0."""
    path = FIXTURES / "confirmations" / "refused_above_ordered.csv"
    _, stderr = ingest(cli, "tb", "confirmations", path)
    assert "  line 2: [confirmed_above_ordered] order O-1001, SKU 3700000000011: confirmed quantity 50 is " in stderr
    assert "above the 2 ordered (allow_over_confirmation = true accepts it for this partner)" in stderr
    stdout, _ = ingest(cli, "lax", "confirmations", path, expect=0)
    assert "applied 2 row(s), skipped 0 stale, refused 0" in stdout


def test_the_confirm_command_refuses_above_the_ordered_quantity(cli: Cli) -> None:
    """`gateway order confirm`: exit 1 with the reason on one line."""
    done = cli(
        "order", "confirm", "--partner", "tb", "--order-id", "O-1001", "--sku", "3700000000011", "--quantity", "3",
        "--at", "2019-06-26T11:00:00Z", expect=1,
    )  # fmt: skip
    assert "gateway: refused: order O-1001, SKU 3700000000011: confirmed quantity 3 is above the 2 ordered" in (
        done.stderr
    )
