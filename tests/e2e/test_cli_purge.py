"""`gateway purge [--dry-run] [--partner P] [--json]`, the retention run for cron, on a store aged by applying
files with a clock 100 days back (the command itself runs on the real clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import bootstrap, settings
from gateway.domain import instant
from gateway.formats.rows import Kind
from tests.conftest import FakeClock, write_config
from tests.e2e.test_cli import Cli

EMPTY = {"outbox": 0, "ledger": 0, "dedupe": 0, "files": 0, "pages": 0, "items": 0}


def aged(tmp_path: Path) -> Cli:
    """Partners a and b, each with one file applied 100 days ago (a ledger entry and its kept copy)."""
    config = write_config(tmp_path, {"a": {"stock_mode": "advanced"}, "b": {"stock_mode": "advanced"}})
    long_ago = FakeClock()
    long_ago.now = instant.from_datetime(datetime.now(UTC) - timedelta(days=100))
    app = bootstrap.build(settings.load(config, environ={}), clock=long_ago)
    try:
        for partner in ("a", "b"):
            path = tmp_path / f"{partner}.csv"
            path.write_text("sku,quantity\nA,1\n", encoding="utf-8")
            assert app.ingestor.ingest(partner, Kind.STOCK, path).outcome == "applied"
    finally:
        app.close()
    return Cli(config)


def totals(cli: Cli, *args: str) -> dict[str, int]:
    report = json.loads(cli("purge", "--json", *args).stdout)
    found: dict[str, int] = report["totals"]
    return found


def test_purge_dry_run_counts_per_kind_and_removes_nothing_then_purge_removes_one_partners_then_all(
    tmp_path: Path,
) -> None:
    """--dry-run: 2 ledger entries and 2 copies would go (the table says so too) and nothing does; --partner a
    removes a's alone; a plain run then removes b's; the same file again is still a duplicate."""
    cli = aged(tmp_path)
    table = cli("purge", "--dry-run").stdout
    assert ["a", "ledger", "90", "1"] in [line.split() for line in table.splitlines()]
    assert table.splitlines()[-1].startswith("dry run: nothing removed; would remove in all: outbox 0, ledger 2,")
    assert totals(cli, "--dry-run") == EMPTY | {"ledger": 2, "items": 2}
    assert totals(cli, "--dry-run") == EMPTY | {"ledger": 2, "items": 2}

    done = json.loads(cli("purge", "--partner", "a", "--json").stdout)
    assert (done["dry_run"], done["totals"]) == (False, EMPTY | {"ledger": 1, "items": 1})
    assert {p["partner"] for p in done["purged"]} == {"a"}
    assert json.loads(cli("ledger", "--partner", "a", "--json").stdout) == []
    assert len(json.loads(cli("ledger", "--partner", "b", "--json").stdout)) == 1
    assert cli("purge").stdout.splitlines()[-1] == (
        "removed in all: outbox 0, ledger 1, dedupe 0, files 0, pages 0, items 1"
    )
    assert totals(cli, "--dry-run") == EMPTY

    again = json.loads(cli("ingest", "--partner", "a", "--kind", "stock", "--json", str(tmp_path / "a.csv")).stdout)
    assert (again["outcome"], again["duplicate_of"]) == ("duplicate", 1)


def test_purge_of_an_unknown_partner_is_a_usage_error(tmp_path: Path) -> None:
    """Exit 2, naming the partner; nothing removed."""
    cli = aged(tmp_path)
    done = cli("purge", "--partner", "nobody", expect=2)
    assert "nobody" in done.stderr
    assert totals(cli, "--dry-run") == EMPTY | {"ledger": 2, "items": 2}
