"""The seed's warning through the `gateway` command: a level older than a confirmation the gateway applied for its
SKU (simple mode) is set, exit 0, with `gateway: warning: snapshot_predates_confirmation: ...` on stderr; `ingest
--json` and `ledger --json` carry it as `warnings`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.e2e.test_cli import Cli

CODE = "snapshot_predates_confirmation"
WARNED = f"gateway: warning: {CODE}: 1 level(s) older than the last confirmation the gateway applied for their SKU"
FIRST = "2025-12-01T00:00:00Z"  # the first levels
OLDER = "2025-12-15T00:00:00Z"  # after them, before the confirmation (the wall clock's now)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A simple-mode partner: W1 and W2 stocked on 1 December, an order of 2 W1 confirmed now (W1 leaves stock)."""
    run = Cli(write_config(tmp_path, {"shop": {"stock_mode": "simple"}}))
    for sku in ("W1", "W2"):
        run("stock", "set", "--partner", "shop", "--sku", sku, "--quantity", "10", "--as-of", FIRST)
    run("order", "place", "--partner", "shop", "--order-id", "O1", "--line", "W1:2")
    run("order", "set-status", "--partner", "shop", "--order-id", "O1", "--status", "confirmed")
    assert run.ats("shop", "W1")["stock"] == 8
    return run


def test_stock_set_older_than_a_confirmation_sets_the_level_and_warns_on_stderr(cli: Cli) -> None:
    """Exit 0, the usual lines on stdout, the warning on stderr; a level set now (after the confirmation) is quiet."""
    done = cli("stock", "set", "--partner", "shop", "--sku", "W1", "--quantity", "10", "--as-of", OLDER)
    assert done.stdout.splitlines() == ["  ATS W1: 8 -> 10", "SKU W1 stock set to 10"]
    assert f"{WARNED} (W1): applied, but such a level may put units already sold back on sale" in done.stderr
    assert cli.ats("shop", "W1")["stock"] == 10
    quiet = cli("stock", "set", "--partner", "shop", "--sku", "W1", "--quantity", "9")
    assert "gateway: warning:" not in quiet.stderr
    never_moved = cli("stock", "set", "--partner", "shop", "--sku", "W2", "--quantity", "9", "--as-of", OLDER)
    assert "gateway: warning:" not in never_moved.stderr


def test_ingest_json_and_ledger_json_carry_the_warning(cli: Cli, tmp_path: Path) -> None:
    """`ingest --json`: the file's report has `warnings` (exit 0, and the words on stderr); `ledger --json`: the
    entry has the same `warnings`; an entry without any has an empty list."""
    older = tmp_path / "older.csv"
    older.write_text(f"sku,quantity,as_of\nW1,10,{OLDER}\nW2,7,{OLDER}\n", encoding="utf-8")
    done = cli("ingest", "--partner", "shop", "--kind", "stock", "--json", str(older))
    report = json.loads(done.stdout)
    expected = [
        {
            "warning": CODE,
            "skus": ["W1"],
            "count": 1,
            "message": "1 level(s) older than the last confirmation the gateway applied for their SKU (W1):"
            " applied, but such a level may put units already sold back on sale",
        }
    ]
    assert (report["outcome"], report["rows_applied"], report["warnings"]) == ("applied", 2, expected)
    assert WARNED in done.stderr
    newer = tmp_path / "newer.csv"
    newer.write_text("sku,quantity\nW1,5\n", encoding="utf-8")  # as of now: after the confirmation
    quiet = cli("ingest", "--partner", "shop", "--kind", "stock", "--json", str(newer))
    assert json.loads(quiet.stdout)["warnings"] == []
    assert "gateway: warning:" not in quiet.stderr

    latest, first = json.loads(cli("ledger", "--partner", "shop", "--json").stdout)
    assert (first["id"], first["source"], first["warnings"]) == (report["ledger_id"], str(older), expected)
    assert (latest["source"], latest["warnings"]) == (str(newer), [])
    table = cli("ledger", "--partner", "shop").stdout  # the table is unchanged
    assert table.splitlines()[0].split() == ["id", "received_at", "kind", "outcome", "applied", "refused", "source"]


def test_a_bundle_with_an_older_level_warns_on_stderr_once_for_the_bundle(cli: Cli, tmp_path: Path) -> None:
    """`ingest --bundle`: the stock member's level older than the confirmation is applied, exit 0, and the warning
    is said on stderr (and in the bundle's `--json` report) as for a lone file."""
    (tmp_path / "levels.csv").write_text(f"sku,quantity,as_of\nW1,10,{OLDER}\n", encoding="utf-8")
    (tmp_path / "acks.csv").write_text("order_id,status\nO1,invoicing\n", encoding="utf-8")
    manifest = tmp_path / "day.bundle.csv"
    manifest.write_text("kind,file\nstock,levels.csv\nacknowledgements,acks.csv\n", encoding="utf-8")
    done = cli("ingest", "--partner", "shop", "--bundle", str(manifest))
    assert done.stderr.count(f"{WARNED} (W1)") == 1
    assert cli.ats("shop", "W1")["stock"] == 10
