"""The `gateway` command as people and scripts use it: real files, exit codes (in-process through click's
CliRunner; the tests about the process itself, its environment and log lines, as real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, write_config
from tests.support import cli as in_process

GATEWAY = [sys.executable, "-m", "gateway"]


class Cli:
    """`gateway --config CONFIG ARGS`, in-process (tests/support/cli.py); exit code checked against `expect`."""

    def __init__(self, config: Path) -> None:
        self.config = config

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        done = in_process.run(["--config", str(self.config), "--log-level", "warning", *args])
        if expect is not None:
            assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        return done

    def ats(self, partner: str, sku: str) -> dict[str, Any]:
        [row] = json.loads(self("ats", "--partner", partner, "--sku", sku, "--json").stdout)
        return row


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    config = write_config(
        tmp_path,
        {
            "on": {"stock_mode": "simple", "pending_allocation": True},
            "off": {"stock_mode": "simple", "pending_allocation": False},
            "adv": {"stock_mode": "advanced"},
            "tb": {"stock_mode": "time_based"},
        },
    )
    return Cli(config)


@pytest.mark.parametrize(("partner", "after_placing"), [("on", 5), ("off", 10)])
def test_simple_mode_sequences_hold_through_the_cli(cli: Cli, partner: str, after_placing: int) -> None:
    """stock 10; order 5; confirmed -> 5 (stock 5); stock set to 4 -> 4, with pending allocation on and off."""
    cli("stock", "set", "--partner", partner, "--sku", "123", "--quantity", "10", "--as-of", "2019-06-25T12:00:00")
    assert cli.ats(partner, "123")["ats"] == 10
    cli("order", "place", "--partner", partner, "--order-id", "O1", "--line", "123:5")
    assert cli.ats(partner, "123")["ats"] == after_placing
    cli("order", "set-status", "--partner", partner, "--order-id", "O1", "--status", "confirmed")
    assert cli.ats(partner, "123") | {"as_of": None} == {
        "sku": "123",
        "stock": 5,
        "allocated": 0,
        "ats": 5,
        "oversold": False,
        "as_of": None,
    }
    cli("stock", "set", "--partner", partner, "--sku", "123", "--quantity", "4", "--as-of", "2019-06-26T12:00:00")
    assert cli.ats(partner, "123")["ats"] == 4


def test_advanced_sequence_holds_through_the_cli(cli: Cli) -> None:
    """10, 5, 5, 5, then stock 5 and order closed -> 5."""
    cli("stock", "set", "--partner", "adv", "--sku", "123", "--quantity", "10", "--as-of", "2019-06-25T12:00:00")
    cli("order", "place", "--partner", "adv", "--order-id", "O1", "--line", "123:5")
    assert cli.ats("adv", "123")["ats"] == 5
    for status in ("confirmed", "invoicing"):
        cli("order", "set-status", "--partner", "adv", "--order-id", "O1", "--status", status)
        assert cli.ats("adv", "123")["ats"] == 5
    cli("stock", "set", "--partner", "adv", "--sku", "123", "--quantity", "5", "--as-of", "2019-06-26T12:00:00")
    cli("order", "set-status", "--partner", "adv", "--order-id", "O1", "--status", "closed")
    assert cli.ats("adv", "123") == {
        "sku": "123",
        "stock": 5,
        "allocated": 0,
        "ats": 5,
        "oversold": False,
        "as_of": "2019-06-26T12:00:00Z",
    }


def test_time_based_sequence_holds_through_the_cli_and_is_explained(cli: Cli) -> None:
    """10, 5, 5, 5, 5, confirmed 4 -> 6, stock 6 -> 6; --explain names the rule of each allocating line."""
    cli("stock", "set", "--partner", "tb", "--sku", "123", "--quantity", "10", "--as-of", "2019-06-25T12:00:00")
    cli("order", "place", "--partner", "tb", "--order-id", "O1", "--line", "123:5")
    for status in ("confirmed", "invoicing", "closed"):
        cli("order", "set-status", "--partner", "tb", "--order-id", "O1", "--status", status)
        assert cli.ats("tb", "123")["ats"] == 5
    explained = cli("ats", "--partner", "tb", "--sku", "123", "--explain").stdout
    assert "order O1 (closed, ordered 5): 5 unit(s), closed line, not yet confirmed by the partner" in explained
    cli(
        "order", "confirm", "--partner", "tb", "--order-id", "O1", "--sku", "123", "--quantity", "4",
        "--at", "2019-06-26T11:00:00",
    )  # fmt: skip
    assert cli.ats("tb", "123")["ats"] == 6
    explained = json.loads(cli("ats", "--partner", "tb", "--sku", "123", "--explain", "--json").stdout)
    assert [(line["order_id"], line["units"]) for line in explained["lines"]] == [("O1", 4)]
    cli("stock", "set", "--partner", "tb", "--sku", "123", "--quantity", "6", "--as-of", "2019-06-26T12:00:00")
    assert cli.ats("tb", "123")["ats"] == 6
    assert "allocated 0 by 0 line(s)" in cli("ats", "--partner", "tb", "--sku", "123", "--explain").stdout


def test_a_refusal_exits_1_with_one_readable_line_on_stderr(cli: Cli) -> None:
    """Not enough ATS: exit 1, what and why on stderr."""
    cli("stock", "set", "--partner", "adv", "--sku", "123", "--quantity", "2")
    done = cli("order", "place", "--partner", "adv", "--order-id", "O1", "--line", "123:3", expect=1)
    assert "gateway: refused: order O1 refused, not enough available to sell: SKU 123 wants 3, 2 available" in (
        done.stderr
    )


def test_an_illegal_status_move_exits_1_naming_both_statuses(cli: Cli) -> None:
    """closed -> pending is refused with the order, its status and the requested one."""
    cli("stock", "set", "--partner", "adv", "--sku", "123", "--quantity", "2")
    cli("order", "place", "--partner", "adv", "--order-id", "O1", "--line", "123:1")
    cli("order", "set-status", "--partner", "adv", "--order-id", "O1", "--status", "closed")
    done = cli("order", "set-status", "--partner", "adv", "--order-id", "O1", "--status", "pending", expect=1)
    assert "order O1: cannot move from closed to pending" in done.stderr


def test_ingest_applies_then_reports_a_duplicate_with_exit_0(cli: Cli) -> None:
    """Re-ingesting the same content is a no-op reported as a duplicate."""
    good = str(FIXTURES / "stock" / "good.csv")
    assert "applied 3 row(s)" in cli("ingest", "--partner", "adv", "--kind", "stock", good).stdout
    assert "duplicate of ledger entry" in cli("ingest", "--partner", "adv", "--kind", "stock", good).stdout


def test_ingest_of_a_malformed_file_exits_1_and_lists_every_bad_row(cli: Cli) -> None:
    """The report names each bad row's line; nothing is applied."""
    bad = str(FIXTURES / "stock" / "bad_quantity.csv")
    done = cli("ingest", "--partner", "adv", "--kind", "stock", bad, expect=1)
    assert "gateway: rejected:" in done.stderr
    assert "line 3, column quantity" in done.stderr
    assert "line 4, column quantity" in done.stderr
    assert json.loads(cli("ats", "--partner", "adv", "--json").stdout) == []


def test_ingest_json_report_is_machine_readable(cli: Cli) -> None:
    """--json prints the report: outcome, counts, problems with line numbers."""
    bad = str(FIXTURES / "confirmations" / "bad_rows.csv")
    report = json.loads(cli("ingest", "--partner", "tb", "--kind", "confirmations", "--json", bad, expect=1).stdout)
    assert report["outcome"] == "rejected"
    assert [p["line"] for p in report["problems"]] == [2, 3]


def test_dry_run_prints_the_ats_changes_and_changes_nothing(cli: Cli) -> None:
    """--dry-run: the changes the file would make; the store untouched."""
    good = str(FIXTURES / "stock" / "good.csv")
    done = cli("ingest", "--partner", "adv", "--kind", "stock", "--dry-run", good)
    assert "ATS 3700000000011: - -> 10" in done.stdout
    assert json.loads(cli("ats", "--partner", "adv", "--json").stdout) == []
    assert "applied 3 row(s)" in cli("ingest", "--partner", "adv", "--kind", "stock", good).stdout


def test_no_progress_display_when_stderr_is_not_a_terminal(cli: Cli) -> None:
    """The progress line is for terminals only."""
    done = cli("ingest", "--partner", "adv", "--kind", "stock", str(FIXTURES / "stock" / "good.csv"))
    assert "rows read" not in done.stderr


def test_check_config_lists_every_problem_by_key_and_exits_2(tmp_path: Path) -> None:
    """A bad config: every problem by key, exit 2."""
    path = tmp_path / "bad.toml"
    path.write_text(
        '[partners.acme]\nstock_mode = "simpel"\ntimezone = "Mars/Base"\nabsent = "drop"\n'
        '[partners.acme.files.stock]\ncolumns = { ean = "EAN" }\n',
        encoding="utf-8",
    )
    done = Cli(path)("check-config", expect=2)
    for key in (
        "partners.acme.stock_mode",
        "partners.acme.timezone",
        "partners.acme.absent",
        "partners.acme.files.stock.columns.ean",
    ):
        assert key in done.stderr


def test_check_config_accepts_a_good_config(cli: Cli) -> None:
    """Exit 0 and the partners with their modes."""
    assert "tb (time_based)" in cli("check-config").stdout


def test_an_unknown_partner_is_a_configuration_error(cli: Cli) -> None:
    """Exit 2, naming the known partners."""
    done = cli("ats", "--partner", "nobody", expect=2)
    assert "partners.nobody: no such partner" in done.stderr


def test_a_bad_line_argument_is_a_usage_error(cli: Cli) -> None:
    """SKU:QTY or exit 2."""
    cli("order", "place", "--partner", "adv", "--order-id", "O1", "--line", "123", expect=2)


def test_the_config_can_come_from_the_environment(cli: Cli) -> None:
    """GATEWAY_CONFIG names the file when --config is not given."""
    env = {**os.environ, "GATEWAY_CONFIG": str(cli.config)}
    done = subprocess.run([*GATEWAY, "check-config"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_logs_are_json_lines_with_the_item_context(cli: Cli) -> None:
    """One file_applied event with partner, kind, source, sha256, rows and duration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    good = str(FIXTURES / "stock" / "good.csv")
    done = subprocess.run(
        [*GATEWAY, "--config", str(cli.config), "ingest", "--partner", "adv", "--kind", "stock", good],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    [applied] = [e for e in events if e["event"] == "file_applied"]
    for key in ("partner", "kind", "source", "sha256", "rows_applied", "rows_skipped", "rows_refused", "duration_ms"):
        assert key in applied
    assert applied["level"] == "info"
    assert "timestamp" in applied
