"""Ingest benchmark: a 1,000,000-row snapshot through the gateway against two floors measured in the same run.

Floors: (1) parsing the file with Python's csv module alone; (2) parsing it plus a plain executemany INSERT of
the rows into an empty table of the same SQLite file, in one transaction. Then: the gateway's ingest into a
fresh store (validation, stale check, ledger, ATS changes and their outbox rows included), and a second ingest
of a snapshot that changes 1% of the SKUs. Each phase runs in its own process, so peak RSS is its own.

Usage: python bench/ingest.py [--rows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-02T00:00:00Z"


def generate(path: Path, rows: int, changed: set[int] | None = None) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("sku,quantity,as_of\n")
        for i in range(rows):
            quantity = rng.randrange(0, 500)
            if changed is not None and i in changed:
                out.write(f"SKU{i:08d},{quantity + 1},{T1}\n")
            else:
                out.write(f"SKU{i:08d},{quantity},{T0}\n")


def phase_parse(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    count = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for _row in reader:
            count += 1
    return {"seconds": time.perf_counter() - started, "rows": count}


def phase_insert(path: Path, db: Path) -> dict[str, float]:
    started = time.perf_counter()
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE floor (sku TEXT PRIMARY KEY, quantity INTEGER, as_of TEXT)")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO floor (sku, quantity, as_of) VALUES (?, ?, ?)", ((s, int(q), a) for s, q, a in reader)
        )
        connection.execute("COMMIT")
    connection.close()
    return {"seconds": time.perf_counter() - started}


def phase_ingest(path: Path, folder: Path) -> dict[str, float]:
    from gateway import bootstrap, logs, settings
    from gateway.formats.rows import Kind

    logs.configure("json", None, "error")
    config = folder / "bench.toml"
    if not config.exists():
        config.write_text('[store]\nurl = "sqlite:///gateway.db"\n[partners.bench]\nstock_mode = "advanced"\n')
    app = bootstrap.build(settings.load(config, environ={}))
    started = time.perf_counter()
    result = app.ingestor.ingest("bench", Kind.STOCK, path)
    seconds = time.perf_counter() - started
    app.close()
    assert result.outcome == "applied", result.summary()
    return {"seconds": seconds, "changes": result.ats_changes, "applied": result.counts.applied}


def run_phase(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=True)
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return measured


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        paths = [Path(p) for p in rest]
        if name == "parse":
            out = phase_parse(paths[0])
        elif name == "insert":
            out = phase_insert(paths[0], paths[1])
        else:
            out = phase_ingest(paths[0], paths[1])
        print(json.dumps(out))
        return

    folder = args.keep or Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    first, second = folder / "snapshot.csv", folder / "snapshot-1pct.csv"
    rows = args.rows
    generate(first, rows)
    changed = set(random.Random(11).sample(range(rows), rows // 100))
    generate(second, rows, changed)

    parse = run_phase("parse", str(first))
    insert = run_phase("insert", str(first), str(folder / "floor.db"))
    ingest1 = run_phase("ingest", str(first), str(folder))
    ingest2 = run_phase("ingest", str(second), str(folder))

    def rate(seconds: float) -> str:
        return f"{rows / seconds:>12,.0f} rows/s"

    print(f"rows: {rows:,}")
    print(f"floor: csv parse only          {parse['seconds']:7.2f} s {rate(parse['seconds'])}")
    print(f"floor: parse + executemany     {insert['seconds']:7.2f} s {rate(insert['seconds'])}")
    print(f"gateway: first ingest          {ingest1['seconds']:7.2f} s {rate(ingest1['seconds'])}")
    print(f"gateway: 1% changed            {ingest2['seconds']:7.2f} s {rate(ingest2['seconds'])}")
    print(f"ratio first ingest / parse+insert floor: {ingest1['seconds'] / insert['seconds']:.2f}x (target <= 3x)")
    print(f"ratio first ingest / parse floor:        {ingest1['seconds'] / parse['seconds']:.2f}x")
    print(f"speed-up of the 1% ingest over the first: {ingest1['seconds'] / ingest2['seconds']:.2f}x (target >= 5x)")
    print(f"changes queued: first {ingest1['changes']:,.0f}, second {ingest2['changes']:,.0f}")
    print(f"peak RSS of the ingest processes: {ingest2['peak_rss_mb']:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main()
