"""PostgreSQL benchmark: a 1,000,000-row snapshot ingested into a PostgreSQL store against a floor measured in the
same run, the statements a placement costs, then order placements per second from 1, 2 and 4 worker processes on one
store (a scaling table) against the per-commit ceiling.

Everything runs in fresh schemas of the server named by GATEWAY_TEST_POSTGRES_URL (default: the `test` database of
postgres@127.0.0.1:5432), each dropped at the end, failures included.

Ingest. The floor: a bare `COPY ... FROM STDIN (FORMAT csv, HEADER true)` of the snapshot file, read in 1 MiB
blocks, into an unindexed table (sku text, quantity bigint, as_of text), committed (median of --repeat COPYs, each
into its own table). Then the gateway's ingest of the same file into a fresh store (`app.ingestor.ingest`: validation,
stale check, ledger, ATS changes and their outbox rows included; all SKUs new), and a second ingest of a snapshot that
changes 1% of the SKUs. Each ingest runs in its own process; the store's migrations are not timed.
Targets: the first ingest within 3x of the COPY floor, the 1% one within 2x.

Round trips. Statements per placement as the server's log shows them (`log_statement = all` on the store's one
connection; Debian's log must be readable here): one-SKU placements through `app.commands.place`, through the API's
`orders.place` (an Idempotency-Key and its kept answer), and two-SKU placements. Targets: 2, 3 and 2.

Placements. A store seeded with one snapshot of --skus SKUs, each with plenty of stock, one partner in advanced
mode. W worker processes (spawned by this script) each build an app on the store and place their share of the
placements one after another through `app.commands.place`: each is one unit of one SKU under its own order id. They
start together (a start file, once every worker has connected) and the time runs until the last one finishes:
placements/s = placements / seconds. The store is checked afterwards: the units allocated over every SKU equal the
placements. Each (run, W) gets a store of its own; figures are the median of --repeat runs. The bench, its workers
and the PostgreSQL server share this machine's cores, so W beyond the cores cannot scale linearly. The ceiling, in
the same run: a bare psycopg loop committing one one-row INSERT per placement. Targets: one worker within 2x of the
ceiling, two workers at least 1.7x one.

Usage: python bench/postgres.py [--rows N] [--placements N] [--skus S] [--workers 1 2 4] [--repeat R] [--keep DIR]
       [--parts ingest round-trips placements]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ingest import generate  # the same snapshot file as the SQLite benchmark

POSTGRES_ENV = "GATEWAY_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PARTNER = "bench"
T0 = "2026-01-01T00:00:00Z"
STOCK = 1_000_000  # units of every SKU of the placements' store: no placement is ever refused
BLOCK = 1 << 20  # the floor's COPY reads the file in blocks of 1 MiB
RATIO_TARGET = 3.0
ROUTINE_TARGET = 2.0  # the 1%-changed snapshot against the same floor
CEILING_TARGET = 2.0  # one worker's placements/s within this factor of the per-commit ceiling
SCALE_TARGET = 1.7  # two workers' placements/s over one worker's
PARTS = ("ingest", "round-trips", "placements")
START_TIMEOUT = 300.0  # seconds a worker waits for the start file (and the bench for every worker to be ready)


# the server: a schema of the bench's own per store


def libpq(url: str) -> str:
    """The SQLAlchemy URL as a libpq one (psycopg's): no `+driver` in the scheme."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


@contextmanager
def postgres_schema(base_url: str, options: str = "") -> Iterator[str]:
    """A URL whose connections work in a new, empty schema of their own (with more server `options`, such as
    `-clog_statement=all`); the schema is dropped afterwards."""
    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(libpq(base_url), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options={quote(f'-csearch_path={name} {options}'.strip())}"
    finally:
        with psycopg.connect(libpq(base_url), autocommit=True) as admin:
            admin.execute("SET lock_timeout = '20s'")
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def write_config(folder: Path, url: str, pool: str = "") -> Path:
    """One partner in advanced mode (pending lines allocate), the store at `url` (`pool`: more [store] settings),
    staging in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gateway.toml"
    path.write_text(
        f'staging = "staging"\n\n[store]\nurl = {json.dumps(url)}\n{pool}\n[partners.{PARTNER}]\n'
        'stock_mode = "advanced"\n',
        encoding="utf-8",
    )
    return path


def analyze(url: str) -> None:
    """Statistics for the store's tables just seeded, as autovacuum gathers them within a minute of a load (the
    planner would otherwise take a table of 2,000 rows for an empty one)."""
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        connection.execute("ANALYZE")


def scalar(url: str, query: str) -> object:
    with psycopg.connect(libpq(url)) as connection:
        row = connection.execute(query).fetchone()
        return None if row is None else row[0]


# files


def sku_name(index: int) -> str:
    return f"SKU{index:06d}"


def catalogue(path: Path, skus: int) -> None:
    """The placements' snapshot: every SKU at STOCK units."""
    with path.open("w", encoding="utf-8") as out:
        out.write("sku,quantity,as_of\n")
        out.writelines(f"{sku_name(i)},{STOCK},{T0}\n" for i in range(skus))


def placements(count: int, skus: int, tag: str) -> list[tuple[str, str]]:
    """`count` placements (order id, SKU) spread over the SKUs (consecutive ones on different SKUs)."""
    stride = 7919  # a prime: placement i goes to SKU i * stride mod skus, every SKU in turn
    return [(f"{tag}-{i:07d}", sku_name(i * stride % skus)) for i in range(count)]


# phases, each in its own process


def phase_copy(url: str, path: Path, table: str) -> dict[str, float]:
    """The floor: COPY the file into a new unindexed table, committed."""
    with psycopg.connect(libpq(url)) as connection:
        connection.execute(f"CREATE TABLE {table} (sku text, quantity bigint, as_of text)")
        connection.commit()
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} (sku, quantity, as_of) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while block := handle.read(BLOCK):
                copy.write(block)
        connection.commit()
        seconds = time.perf_counter() - started
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return {"seconds": seconds, "rows": row[0] if row else 0}


def phase_ceiling(url: str, count: int) -> dict[str, float]:
    """The per-commit ceiling: a bare psycopg loop committing one one-row INSERT per placement."""
    table = f"ceiling_{secrets.token_hex(4)}"
    with psycopg.connect(libpq(url)) as connection:
        connection.execute(f"CREATE TABLE {table} (order_id text PRIMARY KEY, sku text, quantity bigint)")
        connection.commit()
        insert = f"INSERT INTO {table} (order_id, sku, quantity) VALUES (%s, %s, %s)"
        started = time.perf_counter()
        for n in range(count):
            connection.execute(insert, (f"o{n}", sku_name(n), 1))
            connection.commit()
        seconds = time.perf_counter() - started
        connection.execute(f"DROP TABLE {table}")
        connection.commit()
    return {"seconds": seconds, "rate": count / seconds}


def phase_ingest(config: Path, path: Path) -> dict[str, float]:
    from gateway import bootstrap, logs, settings
    from gateway.formats.rows import Kind

    logs.configure("json", None, "error")
    app = bootstrap.build(settings.load(config, environ={}))
    try:
        started = time.perf_counter()
        result = app.ingestor.ingest(PARTNER, Kind.STOCK, path)
        seconds = time.perf_counter() - started
    finally:
        app.close()
    assert result.outcome == "applied", result.summary()
    return {"seconds": seconds, "changes": result.ats_changes, "applied": result.counts.applied}


def phase_place(config: Path, folder: Path, tag: str, numbers: list[int]) -> dict[str, float]:
    """Worker `index` of `workers`: connect, say ready, wait for the start file, place its share."""
    index, workers, count, skus = numbers
    from gateway import bootstrap, logs, settings
    from gateway.domain.orders import RequestedLine
    from gateway.service import queries

    logs.configure("json", None, "warning")
    share = placements(count, skus, tag)[index::workers]
    app = bootstrap.build(settings.load(config, environ={}))
    try:
        with app.store.read() as tx:  # connected, the partner known: the first placement pays for neither
            queries.ats(tx, PARTNER, [share[0][1]] if share else [])
        (folder / f"ready-{index}").touch()
        waited = time.perf_counter()
        while not (folder / "start").exists():
            if time.perf_counter() - waited > START_TIMEOUT:
                raise SystemExit(f"worker {index}: no start file after {START_TIMEOUT:.0f} s")
            time.sleep(0.001)
        started = time.perf_counter()
        for order_id, sku in share:
            app.commands.place(PARTNER, order_id, [RequestedLine(sku, 1)])
        finished = time.perf_counter()
    finally:
        app.close()
    return {"started": started, "finished": finished, "placed": len(share)}


SERVER_LOGS = "/var/log/postgresql/postgresql-*-main.log"  # Debian's log of the server (log_line_prefix '%m [%p] ')
ROUND_TRIP_SAMPLES = 50  # placements counted per kind (after as many to warm the driver's prepared statements)


def server_log() -> Path | None:
    """The server's log file, where this machine's server writes one (Debian's), readable here."""
    found = sorted(Path("/").glob(SERVER_LOGS.lstrip("/")), key=lambda p: p.stat().st_mtime)
    return found[-1] if found and os.access(found[-1], os.R_OK) else None


def phase_round_trips(config: Path) -> dict[str, float]:
    """Statements the server logs per placement (log_statement = all on the store's one connection): one-SKU
    placements through the engine's entry (`app.commands.place`), through the API's (`orders.place`, with an
    Idempotency-Key and its kept answer), and two-SKU placements; after as many of each to warm the driver."""
    from gateway import bootstrap, logs, settings
    from gateway.domain.errors import Refusal
    from gateway.domain.orders import RequestedLine
    from gateway.service import orders
    from gateway.service.snapshots import AtsChange

    class Answers:
        def placed(self, changes: list[AtsChange]) -> orders.Answer:
            return orders.Answer(201, json.dumps([[c.sku, c.before, c.after] for c in changes]))

        def refused(self, refusal: Refusal) -> orders.Answer:
            return orders.Answer(409, str(refusal))

    log = server_log()
    if log is None:
        return {"engine": -1.0, "api": -1.0, "two": -1.0}
    logs.configure("json", None, "error")
    app = bootstrap.build(settings.load(config, environ={}))
    commands = app.commands
    kinds = {
        "engine": lambda n, tag: commands.place(PARTNER, f"{tag}{n}", [RequestedLine(sku_name(n), 1)]),
        "api": lambda n, tag: orders.place(
            commands,
            orders.OrderRequest(PARTNER, f"{tag}{n}", [RequestedLine(sku_name(n), 1)], f"key-{tag}{n}", "digest"),
            Answers(),
        ),
        "two": lambda n, tag: commands.place(
            PARTNER, f"{tag}{n}", [RequestedLine(sku_name(n), 1), RequestedLine(sku_name(n + 1000), 1)]
        ),
    }
    counted: dict[str, float] = {}
    try:
        with app.store.engine.connect() as connection:  # type: ignore[attr-defined]  # the pool's one connection
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            connection.commit()
        for name, place in kinds.items():
            for n in range(ROUND_TRIP_SAMPLES):  # warm: the driver prepares a statement after 5 runs
                place(n, f"warm-{name}-")
            start = log.stat().st_size
            for n in range(ROUND_TRIP_SAMPLES, 2 * ROUND_TRIP_SAMPLES):
                place(n, f"{name}-")
            with log.open("rb") as handle:
                handle.seek(start)
                written = handle.read().decode("utf-8", "replace")
            marker = f"[{pid}] "
            lines = [line for line in written.splitlines() if marker in line and "LOG:  " in line]
            statements = [line for line in lines if "LOG:  statement: " in line or "LOG:  execute " in line]
            counted[name] = len(statements) / ROUND_TRIP_SAMPLES
    finally:
        app.close()
    return counted


def run_phase(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {args[0]} failed with code {done.returncode}:\n{done.stderr[-4000:]}")
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


# the two parts


def ingest_part(base_url: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    first, second = folder / "snapshot.csv", folder / "snapshot-1pct.csv"
    generate(first, args.rows)
    generate(second, args.rows, set(random.Random(11).sample(range(args.rows), args.rows // 100)))
    with postgres_schema(base_url) as url:
        floors = [run_phase("copy", url, str(first), f"floor_{i}") for i in range(args.repeat)]
        if any(f["rows"] != args.rows for f in floors):
            raise SystemExit(f"the floor's COPY loaded {[f['rows'] for f in floors]} rows, not {args.rows}")
        config = write_config(folder / "ingest", url)
        ingest1 = run_phase("ingest", str(config), str(first))
        ingest2 = run_phase("ingest", str(config), str(second))
        held = scalar(url, "SELECT count(*) FROM stock")
    if held != args.rows or ingest1["applied"] != args.rows:
        raise SystemExit(f"the store holds {held} SKUs ({ingest1['applied']} applied) after {args.rows} rows")
    return {
        "floor": statistics.median(f["seconds"] for f in floors),
        "first": ingest1["seconds"],
        "second": ingest2["seconds"],
        "changes1": ingest1["changes"],
        "changes2": ingest2["changes"],
    }


def placement_run(base_url: str, folder: Path, workers: int, tag: str, args: argparse.Namespace) -> dict[str, float]:
    """W workers placing args.placements on a fresh, seeded store; seconds from the start file to the last one."""
    with postgres_schema(base_url) as url:
        config = write_config(folder, url)
        snapshot = folder / "catalogue.csv"
        catalogue(snapshot, args.skus)
        run_phase("ingest", str(config), str(snapshot))
        analyze(url)
        for stale in [folder / "start", *folder.glob("ready-*")]:  # a kept folder's, from an earlier run
            stale.unlink(missing_ok=True)
        shared = [str(config), str(folder), tag]
        sizes = [str(workers), str(args.placements), str(args.skus)]
        processes = []
        try:
            for index in range(workers):
                out, log = folder / f"worker-{index}.out", folder / f"worker-{index}.log"
                with out.open("wb") as stdout, log.open("wb") as stderr:
                    command = [sys.executable, __file__, "--phase", "place", *shared, str(index), *sizes]
                    processes.append(subprocess.Popen(command, stdout=stdout, stderr=stderr))
            waited = time.perf_counter()
            while not all((folder / f"ready-{i}").exists() for i in range(workers)):
                failed = [i for i, p in enumerate(processes) if p.poll() is not None]
                if failed or time.perf_counter() - waited > START_TIMEOUT:
                    worker_failed(folder, failed[0] if failed else 0, "did not get ready")
                time.sleep(0.005)
            started = time.perf_counter()
            (folder / "start").touch()
            for index, process in enumerate(processes):
                if process.wait() != 0:
                    worker_failed(folder, index, f"exited with code {process.returncode}")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        outs = [(folder / f"worker-{i}.out").read_text().strip().splitlines() for i in range(workers)]
        measured = [json.loads(lines[-1]) for lines in outs]
        held = scalar(url, "SELECT coalesce(sum(allocated), 0) FROM stock")
        orders = scalar(url, "SELECT count(*) FROM orders")
    placed = sum(m["placed"] for m in measured)
    if placed != args.placements or held != placed or orders != placed:
        raise SystemExit(f"{placed} placements of one unit, but the store allocates {held} units in {orders} orders")
    seconds = max(m["finished"] for m in measured) - started
    return {"seconds": seconds, "rate": placed / seconds}


def round_trips_part(base_url: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """Statements per placement, counted from the server's log on a store whose one connection logs them all."""
    with postgres_schema(base_url, "-clog_statement=all") as url:
        config = write_config(folder, url, pool="pool_size = 1\nmax_overflow = 0\n")
        snapshot = folder / "catalogue.csv"
        catalogue(snapshot, args.skus)
        run_phase("ingest", str(config), str(snapshot))
        analyze(url)
        return run_phase("round_trips", str(config))


def worker_failed(folder: Path, index: int, what: str) -> NoReturn:
    log = folder / f"worker-{index}.log"
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]) if log.exists() else ""
    raise SystemExit(f"placement worker {index} {what}; its last log lines:\n{tail}")


def phase(name: str, *rest: str) -> dict[str, float]:
    """Run one phase (this script started with --phase) and return its figures."""
    if name == "copy":
        return phase_copy(rest[0], Path(rest[1]), rest[2])
    if name == "ingest":
        return phase_ingest(Path(rest[0]), Path(rest[1]))
    if name == "round_trips":
        return phase_round_trips(Path(rest[0]))
    if name == "ceiling":
        return phase_ceiling(rest[0], int(rest[1]))
    config, folder, tag, *numbers = rest
    return phase_place(Path(config), Path(folder), tag, [int(n) for n in numbers])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows of the snapshot ingested.")
    parser.add_argument("--placements", type=int, default=2000, help="Placements per run, shared by the workers.")
    parser.add_argument("--skus", type=int, default=2000, help="SKUs of the placements' store.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="Worker processes, one run each.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each placement figure and of the floor.")
    parser.add_argument("--url", default=os.environ.get(POSTGRES_ENV, DEFAULT_URL), help=f"Default: ${POSTGRES_ENV}.")
    parser.add_argument("--keep", type=Path, help="Generate the files in this (new) folder and keep them.")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="What to measure (default: all): the ingest, round trips per placement, placements per second.",
    )
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(*args.phase)))
        return

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: drop the schemas
    version = scalar(args.url, "SELECT current_setting('server_version')")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"PostgreSQL {version}; {cores} CPU cores on this machine, shared by the bench and the server")
        if "ingest" in args.parts:
            report_ingest(ingest_part(args.url, folder, args), args)
        if "round-trips" in args.parts:
            report_round_trips(round_trips_part(args.url, folder / "round-trips", args))
        if "placements" in args.parts:
            report_placements(args.url, folder, args, cores)


def report_ingest(ingest: dict[str, float], args: argparse.Namespace) -> None:
    def rate(seconds: float) -> str:
        return f"{args.rows / seconds:>12,.0f} rows/s"

    ratio = ingest["first"] / ingest["floor"]
    print(f"rows: {args.rows:,}")
    print(f"floor: COPY, unindexed table   {ingest['floor']:7.2f} s {rate(ingest['floor'])}")
    print(f"gateway: first ingest          {ingest['first']:7.2f} s {rate(ingest['first'])}")
    print(f"gateway: 1% changed            {ingest['second']:7.2f} s {rate(ingest['second'])}")
    verdict = "met" if ratio <= RATIO_TARGET else "MISSED"
    print(f"ratio first ingest / COPY floor: {ratio:.2f}x (target <= {RATIO_TARGET:.0f}x): {verdict}")
    routine = ingest["second"] / ingest["floor"]
    verdict = "met" if routine <= ROUTINE_TARGET else "MISSED"
    print(f"ratio 1% ingest / COPY floor:    {routine:.2f}x (target <= {ROUTINE_TARGET:.0f}x): {verdict}")
    print(f"changes queued: first {ingest['changes1']:,.0f}, second {ingest['changes2']:,.0f}", flush=True)


def report_round_trips(counted: dict[str, float]) -> None:
    if any(value < 0 for value in counted.values()):
        print("round trips per placement: the server's log cannot be read here; not counted")
        return
    targets = {"engine": 2, "api": 3, "two": 2}
    names = {"engine": "engine, one SKU", "api": "API (Idempotency-Key), one SKU", "two": "engine, two SKUs"}
    print(f"statements per placement, from the server's log ({ROUND_TRIP_SAMPLES} placements of each):")
    for key, name in names.items():
        verdict = "met" if counted[key] <= targets[key] else "MISSED"
        print(f"  {name:<32} {counted[key]:5.2f} (target <= {targets[key]}): {verdict}")


def report_placements(url: str, folder: Path, args: argparse.Namespace, cores: int) -> None:
    ceilings = [run_phase("ceiling", url, str(args.placements)) for _ in range(args.repeat)]
    ceiling = statistics.median(c["rate"] for c in ceilings)
    print(f"ceiling: bare psycopg loop, one one-row INSERT committed per placement: {ceiling:,.0f}/s", flush=True)
    runs: dict[int, list[dict[str, float]]] = {w: [] for w in args.workers}
    for r in range(args.repeat):
        for workers in args.workers:
            run = placement_run(url, folder / f"place-{r}-{workers}", workers, f"r{r}w{workers}", args)
            runs[workers].append(run)
            print(f"run {r + 1}: {workers} worker(s): {run['rate']:,.0f} placements/s", flush=True)
    print()
    print(
        f"{args.placements:,} placements of 1 unit over {args.skus:,} SKUs per run, advanced mode, "
        f"median of {args.repeat} run(s)"
    )
    base = args.workers[0]
    base_rate = statistics.median(run["rate"] for run in runs[base])
    print(f"{'workers':>7} | {'placements':>10} | {'seconds':>7} | {'placements/s':>12} | speed-up vs {base}")
    for workers in args.workers:
        seconds = statistics.median(run["seconds"] for run in runs[workers])
        speed = statistics.median(run["rate"] for run in runs[workers])
        print(f"{workers:>7} | {args.placements:>10,} | {seconds:>7.2f} | {speed:>12,.0f} | {speed / base_rate:.2f}x")
    if base == 1:
        below = ceiling / base_rate
        verdict = "met" if below <= CEILING_TARGET else "MISSED"
        print(f"ceiling / 1 worker: {below:.2f}x (target <= {CEILING_TARGET:.0f}x): {verdict}")
    if base == 1 and 2 in runs:
        two = statistics.median(run["rate"] for run in runs[2]) / base_rate
        verdict = "met" if two >= SCALE_TARGET else "MISSED"
        print(f"2 workers / 1 worker: {two:.2f}x (target >= {SCALE_TARGET}x): {verdict}")
    print(
        f"note: {cores} CPU cores: the workers and the PostgreSQL server share them, so {max(args.workers)} "
        "processes cannot scale linearly"
    )


if __name__ == "__main__":
    main()
