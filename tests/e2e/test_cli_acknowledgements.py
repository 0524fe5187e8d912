"""Acknowledgement files through the `gateway` command, as brand IT closing orders would send them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, write_config
from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """An advanced-mode partner with the fixtures' stock and two orders (O-1001 pending, O-1002 confirmed)."""
    run = Cli(write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}))
    run("ingest", "--partner", "brand", "--kind", "stock", str(FIXTURES / "stock" / "good.csv"))
    run("ingest", "--partner", "brand", "--kind", "orders", str(FIXTURES / "orders" / "good.csv"))
    assert run.ats("brand", "3700000000011")["ats"] == 5
    return run


def test_ingest_kind_acknowledgements_closes_the_orders_and_frees_their_units(cli: Cli) -> None:
    """`gateway ingest --partner P --kind acknowledgements FILE`: one summary line, exit 0, ATS back to stock."""
    good = str(FIXTURES / "acknowledgements" / "good.csv")
    done = cli("ingest", "--partner", "brand", "--kind", "acknowledgements", good)
    assert "good.csv: applied 2 row(s), skipped 0 stale, refused 0; 3 ATS change(s)" in done.stdout
    assert (cli.ats("brand", "3700000000011")["ats"], cli.ats("brand", "3700000000028")["ats"]) == (10, 4)
    assert "duplicate of ledger entry" in cli("ingest", "--partner", "brand", "--kind", "acknowledgements", good).stdout


def test_unknown_orders_and_illegal_moves_exit_1_listing_each_row(cli: Cli, tmp_path: Path) -> None:
    """Rows the rules refuse are listed on stderr with their lines; the rest applies; exit 1."""
    path = tmp_path / "acks.csv"
    path.write_text("order_id,status\nO-1001,closed\nO-100l,closed\nO-1002,pending\n", encoding="utf-8")
    done = cli("ingest", "--partner", "brand", "--kind", "acknowledgements", str(path), expect=1)
    assert "applied 1 row(s), skipped 0 stale, refused 2" in done.stdout
    assert "gateway: refused 2 row(s) of" in done.stderr
    assert "  line 3: [unknown_order] order O-100l is unknown" in done.stderr
    assert "  line 4: [illegal_transition] order O-1002: cannot move from confirmed to pending" in done.stderr
    assert cli.ats("brand", "3700000000028")["ats"] == 4  # O-1001 closed


def test_the_json_report_lists_refused_rows_and_the_rejected_file_its_problems(cli: Cli, tmp_path: Path) -> None:
    """--json: a report per file; refusals with their lines, and for a file refused whole its problems."""
    path = tmp_path / "acks.csv"
    path.write_text("order_id,status,updated_at\nNOPE,closed,\nO-1001,invoicing,2019-06-26T12:00:00Z\n")
    report = json.loads(
        cli("ingest", "--partner", "brand", "--kind", "acknowledgements", "--json", str(path), expect=1).stdout
    )
    assert (report["kind"], report["outcome"], report["rows_applied"], report["rows_refused"]) == (
        "acknowledgements",
        "applied",
        1,
        1,
    )
    assert report["refused"] == [
        {"line": 2, "column": None, "message": "order NOPE is unknown", "reason": "unknown_order"}
    ]
    bad = str(FIXTURES / "acknowledgements" / "bad_rows.csv")
    rejected = json.loads(
        cli("ingest", "--partner", "brand", "--kind", "acknowledgements", "--json", bad, expect=1).stdout
    )
    assert rejected["outcome"] == "rejected"
    assert [(p["line"], p["column"]) for p in rejected["problems"]] == [
        (3, "status"),
        (4, "order_id"),
        (5, "updated_at"),
    ]
    assert "first at line 2" in rejected["problems"][1]["message"]


def test_the_kind_is_offered_by_the_ingest_command(cli: Cli) -> None:
    """`--kind` lists acknowledgements among its choices."""
    done = cli("ingest", "--help")
    assert "acknowledgements" in done.stdout
