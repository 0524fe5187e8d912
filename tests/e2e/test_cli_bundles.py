"""Bundles through the `gateway` command: `gateway ingest --partner P --bundle MANIFEST`, as brand IT sending its
stock level and its closings together would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, write_config
from tests.e2e.test_cli import Cli

GOOD = FIXTURES / "bundles" / "good" / "close-day.bundle.csv"
BAD = FIXTURES / "bundles" / "bad"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """An advanced-mode partner with the fixtures' stock and two orders (O-1001 pending, O-1002 confirmed)."""
    run = Cli(write_config(tmp_path, {"brand": {"stock_mode": "advanced"}}))
    run("ingest", "--partner", "brand", "--kind", "stock", str(FIXTURES / "stock" / "good.csv"))
    run("ingest", "--partner", "brand", "--kind", "orders", str(FIXTURES / "orders" / "good.csv"))
    return run


def test_the_good_bundle_applies_with_one_line_per_member_and_exit_0(cli: Cli) -> None:
    """The summary of the bundle, then one line per member; the ATS is the final one; a second run: duplicate."""
    done = cli("ingest", "--partner", "brand", "--bundle", str(GOOD))
    lines = done.stdout.splitlines()
    assert lines[0] == f"{GOOD}: applied a bundle of 2 file(s): 5 row(s), skipped 0 stale, refused 0; 1 ATS change(s)"
    assert lines[1].startswith(f"  {GOOD.parent / 'stock.csv'}: applied 3 row(s)")
    assert lines[2].startswith(f"  {GOOD.parent / 'acknowledgements.csv'}: applied 2 row(s)")
    assert [cli.ats("brand", sku)["ats"] for sku in ("3700000000011", "3700000000028", "3700000000035")] == [5, 3, 6]
    again = cli("ingest", "--partner", "brand", "--bundle", str(GOOD))
    assert again.stdout == f"{GOOD}: duplicate of ledger entry 3, nothing applied\n"


def test_json_reports_the_bundle_and_each_member(cli: Cli) -> None:
    """--json: one object: the bundle (kind bundle, its ledger id, its ATS changes over the whole bundle) and its
    members in order, each with its own ledger id, kind and counts."""
    report = json.loads(cli("ingest", "--partner", "brand", "--bundle", str(GOOD), "--json").stdout)
    assert (report["kind"], report["outcome"], report["rows_applied"]) == ("bundle", "applied", 5)
    assert report["ats_changes"] == [{"sku": "3700000000035", "before": 0, "after": 6}]
    members = report["members"]
    assert [(m["kind"], m["outcome"], m["rows_applied"], m["bundle_id"]) for m in members] == [
        ("stock", "applied", 3, report["ledger_id"]),
        ("acknowledgements", "applied", 2, report["ledger_id"]),
    ]
    assert [m["ledger_id"] for m in members] == [report["ledger_id"] + 1, report["ledger_id"] + 2]
    entries = json.loads(cli("ledger", "--partner", "brand", "--json").stdout)
    assert [(e["kind"], e["outcome"]) for e in entries[:3]] == [
        ("acknowledgements", "bundled"),
        ("stock", "bundled"),
        ("bundle", "applied"),
    ]


def test_a_malformed_member_exits_1_and_lists_every_member_problem(cli: Cli) -> None:
    """The bad fixture: exit 1, the bundle's problem naming the member at its manifest line, the member's own
    problems under it; nothing applied."""
    before = cli.ats("brand", "3700000000011")
    done = cli("ingest", "--partner", "brand", "--bundle", str(BAD / "close-day.bundle.csv"), expect=1)
    assert "gateway: rejected: " in done.stderr
    assert "  line 3, column file: " in done.stderr
    assert "acknowledgements.csv (acknowledgements) is refused whole" in done.stderr
    assert "    line 2, column status: " in done.stderr
    assert cli.ats("brand", "3700000000011") == before
    report = json.loads(
        cli("ingest", "--partner", "brand", "--bundle", str(BAD / "close-day.bundle.csv"), "--json", expect=1).stdout
    )
    assert [m["outcome"] for m in report["members"]] == ["rejected", "rejected"]
    assert report["members"][0]["reason"] == "bundle_rejected"


def test_a_bad_manifest_exits_1_naming_each_line(cli: Cli) -> None:
    """A path out of the folder, a bundle inside the bundle, an unknown kind: each at its line."""
    done = cli("ingest", "--partner", "brand", "--bundle", str(BAD / "bad_manifest.bundle.csv"), expect=1)
    assert "line 2, column file: the path '../good/stock.csv' leaves the manifest's folder (..)" in done.stderr
    assert "line 3, column kind: a bundle may not contain another bundle" in done.stderr
    assert "line 4, column kind: unknown kind 'invoices'" in done.stderr


def test_refused_rows_of_a_member_exit_1_and_the_rest_applies(cli: Cli, tmp_path: Path) -> None:
    """A row refused by the rules (an unknown order) stays refused alone: the bundle applies, exit 1."""
    (tmp_path / "acks.csv").write_text("order_id,status\nO-1001,closed\nO-100l,closed\n", encoding="utf-8")
    manifest = tmp_path / "day.bundle.csv"
    manifest.write_text("kind,file\nacknowledgements,acks.csv\n", encoding="utf-8")
    done = cli("ingest", "--partner", "brand", "--bundle", str(manifest), expect=1)
    assert "applied a bundle of 1 file(s): 1 row(s), skipped 0 stale, refused 1" in done.stdout
    assert f"gateway: refused 1 row(s) of {tmp_path / 'acks.csv'}:" in done.stderr
    assert "  line 3: [unknown_order] order O-100l is unknown" in done.stderr


def test_a_dry_run_prints_the_changes_over_the_whole_bundle(cli: Cli) -> None:
    """--dry-run: what it would do, the ATS moves over the whole bundle; nothing changes."""
    done = cli("ingest", "--partner", "brand", "--bundle", str(GOOD), "--dry-run")
    assert "would apply a bundle of 2 file(s)" in done.stdout
    assert "  ATS 3700000000035: 0 -> 6" in done.stdout
    assert "3700000000011" not in done.stdout
    assert cli.ats("brand", "3700000000035")["ats"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--bundle", str(GOOD), "--kind", "stock"),
        ("--bundle", str(GOOD), str(GOOD)),
        ("--kind", "stock"),
        (),
    ],
)
def test_bundle_and_kind_with_files_are_one_or_the_other(cli: Cli, args: tuple[str, ...]) -> None:
    """--bundle takes no --kind and no FILES; without it, --kind and FILES are needed (usage error, exit 2)."""
    done = cli("ingest", "--partner", "brand", *args, expect=2)
    assert "--bundle" in done.stderr


def test_a_bundle_is_not_applied_again_on_purpose(cli: Cli) -> None:
    """`ledger reapply` refuses a bundle's entry and its members' (exit 1, saying how), `--force` a bundle (exit 2)."""
    report = json.loads(cli("ingest", "--partner", "brand", "--bundle", str(GOOD), "--json").stdout)
    for entry in (report["ledger_id"], report["members"][0]["ledger_id"]):
        done = cli("ledger", "reapply", "--partner", "brand", "--id", str(entry), expect=1)
        assert "is a bundle or one of its files: a bundle applies once" in done.stderr
    done = cli("ingest", "--partner", "brand", "--bundle", str(GOOD), "--force", expect=2)
    assert "--force applies files again, not bundles" in done.stderr
