"""`gateway ats` marks oversold SKUs (a stock level below the allocation), in its JSON and in its table."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_config
from tests.support import cli as in_process


def gateway(config: Path, *args: str) -> str:
    done = in_process.run(["--config", str(config), "--log-level", "error", *args])
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def test_gateway_ats_marks_only_the_oversold_sku(tmp_path: Path) -> None:
    """Allocation 8 then a level of 5 on W1: `oversold: true` for W1 alone, and a `yes` in the table's column."""
    config = write_config(tmp_path, {"P": {"stock_mode": "advanced"}})
    for sku in ("W1", "W2"):
        gateway(
            config, "stock", "set", "--partner", "P", "--sku", sku, "--quantity", "10", "--as-of", "2026-01-01T00:00:00"
        )
    gateway(config, "order", "place", "--partner", "P", "--order-id", "O1", "--line", "W1:8", "--line", "W2:1")
    gateway(
        config, "stock", "set", "--partner", "P", "--sku", "W1", "--quantity", "5", "--as-of", "2026-01-01T01:00:00"
    )

    shown = json.loads(gateway(config, "ats", "--partner", "P", "--json"))
    assert [(v["sku"], v["stock"], v["allocated"], v["ats"], v["oversold"]) for v in shown] == [
        ("W1", 5, 8, 0, True),
        ("W2", 10, 1, 9, False),
    ]
    assert list(shown[0]) == ["sku", "stock", "allocated", "ats", "oversold", "as_of"]

    header, *rows = gateway(config, "ats", "--partner", "P").splitlines()
    assert header.split() == ["sku", "stock", "allocated", "ats", "oversold", "as_of"]
    assert [row.split()[:5] for row in rows] == [["W1", "5", "8", "0", "yes"], ["W2", "10", "1", "9", "no"]]
