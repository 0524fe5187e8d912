"""Command-line start-up benchmark: how long `gateway --version`, `ats`, `ledger`, `outbox` and `order show` take
from exec to exit, against `python -c pass` measured in the same run (the interpreter's own start on this machine,
at this moment: a shared machine's load moves both alike).

Each command runs as a real subprocess (`python -m gateway`, the interpreter of this venv), on a small SQLite store
this script makes in a temporary folder from the demo configuration (config/demo.toml: its paths are relative to
the file, so a copy puts the store in the temporary folder): one stock level and one order. Each command runs once
to warm the page cache and the bytecode, then `--repeat` times; the median wall time is reported.

Target: every command under 0.35 s (issue #17); the ratio to `python -c pass` says how much of that is ours. The
CPU time (user + system) of each run is shown too: on a shared machine it moves less than the wall time.

`--root DIR` times the `gateway` package of another checkout (`git archive REV | tar -x -C DIR`), run with this
interpreter: a before-and-after on the same machine, in the same minutes.

Usage: python bench/cli.py [--repeat N] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
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


def run(args: Sequence[str], root: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of `args` in `root` (whose `gateway` package
    `python -m gateway` runs), which must succeed."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def median_of(args: Sequence[str], repeat: int, root: Path) -> tuple[float, float]:
    """The median wall time and the median CPU time of `repeat` runs, after one run not counted."""
    run(args, root)
    runs = [run(args, root) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def seed(folder: Path, root: Path) -> Path:
    """The demo configuration copied into `folder`, its store holding one stock level and one order."""
    config = folder / "config" / "demo.toml"
    config.parent.mkdir(parents=True)
    shutil.copy(ROOT / "config" / "demo.toml", config)
    gateway = [sys.executable, "-m", "gateway", "--config", str(config), "--log-level", "warning"]
    for args in (
        ["stock", "set", "--partner", PARTNER, "--sku", "3700000000011", "--quantity", "10"],
        ["order", "place", "--partner", PARTNER, "--order-id", "O-1", "--line", "3700000000011:2"],
    ):
        subprocess.run([*gateway, *args], check=True, stdout=subprocess.DEVNULL, cwd=root)
    return config


def main() -> int:
    """Time each command; exit 1 when one is over the target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="Timed runs of each command (default 15).")
    parser.add_argument("--root", type=Path, default=ROOT, help="The checkout whose gateway to time (default: this).")
    options = parser.parse_args()
    root = options.root.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        config = seed(Path(tmp), root)
        baseline, baseline_cpu = median_of([sys.executable, "-c", "pass"], options.repeat, root)
        print(f"gateway of {root}; medians of {options.repeat} runs")
        print(f"{'command':<20} {'wall':>7} {'ratio':>7} {'cpu':>7}  under {TARGET} s")
        print(f"{'python -c pass':<20} {baseline:>6.3f}s {1:>6.1f}x {baseline_cpu:>6.3f}s")
        over = 0
        for name, args in commands(config).items():
            took, cpu = median_of(args, options.repeat, root)
            verdict = "yes" if took < TARGET else "NO"
            over += took >= TARGET
            print(f"{name:<20} {took:>6.3f}s {took / baseline:>6.1f}x {cpu:>6.3f}s  {verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
