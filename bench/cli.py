"""Command-line start-up benchmark: how long `gateway --version`, `ats`, `ledger`, `outbox` and `order show` take
from exec to exit, against `python -c pass` measured in the same run (the interpreter's own start on this machine,
at this moment: a shared machine's load moves both alike).

Each command runs as a real subprocess (`python -m gateway`, the interpreter of this venv), on a small SQLite store
this script makes in a temporary folder from the demo configuration (config/demo.toml: its paths are relative to
the file, so a copy puts the store in the temporary folder): one stock level and one order. Each command runs once
to warm the page cache and the bytecode, then `--repeat` times; the median wall time is reported.

Target: every command under 0.35 s (issue #17); the ratio to `python -c pass` says how much of that is ours.

Usage: python bench/cli.py [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.35  # seconds, each command
PARTNER = "simple-shop"


def commands(config: Path) -> dict[str, list[str]]:
    """The five commands timed, by the name the report shows."""
    base = [sys.executable, "-m", "gateway", "--config", str(config)]
    return {
        "gateway --version": [sys.executable, "-m", "gateway", "--version"],
        "gateway ats": [*base, "ats", "--partner", PARTNER],
        "gateway ledger": [*base, "ledger", "--partner", PARTNER],
        "gateway outbox": [*base, "outbox", "--partner", PARTNER],
        "gateway order show": [*base, "order", "show", "--partner", PARTNER, "--order-id", "O-1"],
    }


def run(args: Sequence[str]) -> float:
    """Wall seconds of one run of `args`, which must succeed."""
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def median_of(args: Sequence[str], repeat: int) -> float:
    """The median wall time of `repeat` runs, after one run not counted."""
    run(args)
    return statistics.median(run(args) for _ in range(repeat))


def seed(folder: Path) -> Path:
    """The demo configuration copied into `folder`, its store holding one stock level and one order."""
    config = folder / "config" / "demo.toml"
    config.parent.mkdir(parents=True)
    shutil.copy(ROOT / "config" / "demo.toml", config)
    gateway = [sys.executable, "-m", "gateway", "--config", str(config), "--log-level", "warning"]
    for args in (
        ["stock", "set", "--partner", PARTNER, "--sku", "3700000000011", "--quantity", "10"],
        ["order", "place", "--partner", PARTNER, "--order-id", "O-1", "--line", "3700000000011:2"],
    ):
        subprocess.run([*gateway, *args], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return config


def main() -> int:
    """Time each command; exit 1 when one is over the target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="Timed runs of each command (default 15).")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        config = seed(Path(tmp))
        baseline = median_of([sys.executable, "-c", "pass"], options.repeat)
        print(f"python -c pass: {baseline:.3f} s (median of {options.repeat})")
        print(f"{'command':<20} {'median':>8} {'ratio':>7}  under {TARGET} s")
        over = 0
        for name, args in commands(config).items():
            took = median_of(args, options.repeat)
            verdict = "yes" if took < TARGET else "NO"
            over += took >= TARGET
            print(f"{name:<20} {took:>7.3f}s {took / baseline:>6.1f}x  {verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
