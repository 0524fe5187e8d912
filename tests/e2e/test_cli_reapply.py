"""Applying content again on purpose through the `gateway` command: `ledger reapply` and `ingest --force`, and the
`duplicate_of_older` warning as an operator reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(write_config(tmp_path, {"adv": {"stock_mode": "advanced"}, "tb": {"stock_mode": "time_based"}}))


def snapshot(tmp_path: Path, name: str, quantity: int) -> str:
    path = tmp_path / name
    path.write_text(f"sku,quantity\nW1,{quantity}\n", encoding="utf-8")
    return str(path)


def ingest(cli: Cli, *args: str, expect: int = 0) -> dict[str, object]:
    """`gateway ingest --partner adv --kind stock --json ARGS`: the one file's report."""
    done = cli("ingest", "--partner", "adv", "--kind", "stock", "--json", *args, expect=expect)
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_a_confirmations_file_refused_for_an_order_that_came_later_applies_when_reapplied(
    cli: Cli, tmp_path: Path
) -> None:
    """time_based: confirmations before their order (refused, exit 1); the order arrives; `ledger reapply
    --json` applies them as a new entry naming the first: ATS 10 - 5 ordered = 5, then 10 - 4 confirmed = 6."""
    cli("stock", "set", "--partner", "tb", "--sku", "A", "--quantity", "10", "--as-of", "2019-06-25T12:00:00")
    path = tmp_path / "confirmations.csv"
    path.write_text("order_id,sku,confirmed_quantity,confirmed_at\nO1,A,4,2019-06-26T11:00:00\n", encoding="utf-8")
    early = cli("ingest", "--partner", "tb", "--kind", "confirmations", "--json", str(path), expect=1)
    report = json.loads(early.stdout)
    assert (report["rows_applied"], report["rows_refused"]) == (0, 1)
    assert "order O1 is unknown" in report["refused"][0]["message"]
    cli("order", "place", "--partner", "tb", "--order-id", "O1", "--line", "A:5")
    assert cli.ats("tb", "A")["ats"] == 5

    done = cli("ledger", "reapply", "--partner", "tb", "--id", str(report["ledger_id"]), "--json")
    again = json.loads(done.stdout)
    assert (again["outcome"], again["rows_applied"], again["rows_refused"]) == ("applied", 1, 0)
    assert (again["kind"], again["reapply_of"], again["sha256"]) == (
        "confirmations",
        report["ledger_id"],
        report["sha256"],
    )
    assert again["ledger_id"] > report["ledger_id"]
    assert cli.ats("tb", "A")["ats"] == 6
    newest, first = json.loads(cli("ledger", "--partner", "tb", "--json").stdout)[:2]
    assert (newest["id"], newest["reapply_of"], first["id"], first["reapply_of"]) == (
        again["ledger_id"],
        report["ledger_id"],
        report["ledger_id"],
        None,
    )


def test_an_older_snapshot_again_exits_0_with_a_warning_and_force_applies_it(cli: Cli, tmp_path: Path) -> None:
    """W1=10, W1=5, W1=10 again: a duplicate, exit 0, the warning on stderr and in --json naming both entries;
    `ingest --force` then applies it (W1 back to 10) as an entry naming the first."""
    first = ingest(cli, snapshot(tmp_path, "a.csv", 10))
    second = ingest(cli, snapshot(tmp_path, "b.csv", 5))
    again = snapshot(tmp_path, "c.csv", 10)
    plain = cli("ingest", "--partner", "adv", "--kind", "stock", again)
    assert (
        f"c.csv: duplicate of ledger entry {first['ledger_id']}, older than the content in force "
        f"(ledger entry {second['ledger_id']}), nothing applied"
    ) in plain.stdout
    assert "gateway: warning: duplicate_of_older: the same content as ledger entry" in plain.stderr
    assert f"`gateway ledger reapply --partner adv --id {first['ledger_id']}`" in plain.stderr
    report = ingest(cli, again)
    assert (report["outcome"], report["duplicate_of"]) == ("duplicate", first["ledger_id"])
    assert [(w["warning"], w["duplicate_of"], w["in_force"]) for w in report["warnings"]] == [
        ("duplicate_of_older", first["ledger_id"], second["ledger_id"])
    ]
    assert cli.ats("adv", "W1")["stock"] == 5

    forced = ingest(cli, "--force", again)
    assert (forced["outcome"], forced["reapply_of"], forced["rows_applied"], forced["warnings"]) == (
        "applied",
        first["ledger_id"],
        1,
        [],
    )
    assert cli.ats("adv", "W1")["stock"] == 10
    shown = cli("ledger", "--partner", "adv").stdout.splitlines()
    assert shown[1].endswith(f"c.csv  (re-applies {first['ledger_id']})")


def test_ledger_reapply_prints_what_it_applied_and_a_dry_run_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    """Without --json: the summary line naming the entry applied again; --dry-run: the change it would make."""
    first = ingest(cli, snapshot(tmp_path, "a.csv", 10))
    ingest(cli, snapshot(tmp_path, "b.csv", 5))
    ledger_id = str(first["ledger_id"])
    dry = cli("ledger", "reapply", "--partner", "adv", "--id", ledger_id, "--dry-run")
    assert f"would apply again (ledger entry {ledger_id}) 1 row(s)" in dry.stdout
    assert "W1" in dry.stdout
    assert cli.ats("adv", "W1")["stock"] == 5
    done = cli("ledger", "reapply", "--partner", "adv", "--id", ledger_id)
    assert done.stdout.startswith(f"reapply of {ledger_id}: ")
    assert f"a.csv: applied again (ledger entry {ledger_id}) 1 row(s), skipped 0 stale, refused 0" in done.stdout
    assert cli.ats("adv", "W1")["stock"] == 10


def test_ledger_reapply_of_an_entry_without_a_kept_copy_is_refused_clearly(cli: Cli, tmp_path: Path) -> None:
    """No copy kept (retention.items_days = 0 here; pruned, or made before this release, alike): exit 1 and why;
    an id that is no applied item of the partner: exit 1 too."""
    with cli.config.open("a", encoding="utf-8") as config:
        config.write("\n[retention]\nitems_days = 0\n")
    first = ingest(cli, snapshot(tmp_path, "a.csv", 10))
    done = cli("ledger", "reapply", "--partner", "adv", "--id", str(first["ledger_id"]), expect=1)
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"gateway: refused: ledger entry {first['ledger_id']} of adv: its content is not kept any more "
        "(copies of applied items are kept retention.items_days = 0 days"
    )
    unknown = cli("ledger", "reapply", "--partner", "adv", "--id", "999", expect=1)
    assert "gateway: refused: ledger entry 999 is no applied item of adv" in unknown.stderr
    assert cli("ledger", "reapply", "--partner", "adv", expect=2).returncode == 2  # --id is required
