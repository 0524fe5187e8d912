"""Latency benchmark: drop-to-delivered time of a file dropped into a watched folder, with the worker running.

`gateway run` runs as a real subprocess on a temporary configuration: one partner with a folder source
(completion = "rename") and its ATS delivered over HTTP to a partner server on 127.0.0.1 (a minimal werkzeug
WSGI app in its own process). The bench drops files of 100 stock rows one after another: each is written as
`.NAME.tmp` in the folder and renamed into place (one event), and the next is dropped once the partner has
received every ATS item of the one before, so each latency is measured unloaded. File i sets the SKUs
F{i}-{j}, so every ATS item names the file it came from. The latency of a file is the partner's arrival time of
its last ATS item minus the moment of the rename, both on CLOCK_MONOTONIC (one clock for every process of a
boot, on Linux).

The floor, in the same run and in this process: the same files applied with the ingest service (what
`gateway ingest` runs) plus one delivery pass each, on a fresh store, to the same partner server.

Target: p50 under 250 ms and p99 under 1 s.

With `--log-level info` the worker's log lines are read back to split each latency into stages: drop to
ingest start (event delivery, the pickup's listing, the copy into staging), ingest, archive, then delivery.

Usage: python bench/latency.py [--files N] [--rows R] [--gap SECONDS] [--log-level warning|info]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from gateway import bootstrap, logs, settings
from gateway.formats.rows import Kind

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "BENCH_PARTNER_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN = "bench-latency-token"  # noqa: S105 - a throw-away token for a local server
PARTNER = "bench"
P50_TARGET = 0.250
P99_TARGET = 1.0


# the partner


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class Partner:
    """Records when each ATS item arrived, per tenant (the first path segment) and file (the SKU's prefix).

    POST /<tenant>/v1/ats takes a batch; GET /_wait?tenant=T&file=F&count=N&timeout=S answers once N SKUs of
    file F have arrived (or the timeout passed) with their values and first arrival times, on both clocks.
    """

    def __init__(self) -> None:
        # (tenant, file) -> sku -> (ats, monotonic, wall) of its first arrival
        self.arrivals: dict[tuple[str, str], dict[str, tuple[int, float, float]]] = {}
        self.requests = 0
        self.arrived = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.method == "GET" and request.path == "/_wait":
            return self._wait(request)(environ, start_response)
        tenant, _, rest = request.path.strip("/").partition("/")
        if request.method != "POST" or rest != "v1/ats":
            return Response("{}", 404, content_type="application/json")(environ, start_response)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response("{}", 401, content_type="application/json")(environ, start_response)
        body = request.get_data()
        monotonic, wall = time.monotonic(), time.time()  # the whole batch is here
        items = json.loads(body)["items"]
        with self.arrived:
            self.requests += 1
            for item in items:
                sku = item["sku"]
                skus = self.arrivals.setdefault((tenant, sku.partition("-")[0]), {})
                if sku not in skus:
                    skus[sku] = (item["ats"], monotonic, wall)
            self.arrived.notify_all()
        return Response("{}", 200, content_type="application/json")(environ, start_response)

    def _wait(self, request: Request) -> Response:
        key = (request.args["tenant"], request.args["file"])
        count = int(request.args["count"])
        deadline = time.monotonic() + float(request.args["timeout"])
        with self.arrived:
            while len(self.arrivals.get(key, {})) < count and time.monotonic() < deadline:
                self.arrived.wait(max(0.0, deadline - time.monotonic()))
            skus = dict(self.arrivals.get(key, {}))
            requests_seen = self.requests
        body = {"skus": {sku: list(value) for sku, value in skus.items()}, "requests": requests_seen}
        return Response(json.dumps(body), 200, content_type="application/json")


def serve(port_out: Any) -> None:
    """The partner, in its own process (as a partner is): it does not compete with the bench for a GIL."""
    server = make_server("127.0.0.1", 0, Partner(), threaded=True, request_handler=_Quiet)
    port_out.put(server.server_port)
    server.serve_forever()


class Arrivals:
    """The bench's side of /_wait."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def wait(self, tenant: str, file: str, count: int, timeout: float) -> dict[str, tuple[int, float, float]]:
        """The SKUs of `file` the partner holds, once it holds `count` of them or `timeout` passed."""
        params: dict[str, str | int | float] = {"tenant": tenant, "file": file, "count": count, "timeout": timeout}
        response = self.session.get(f"{self.url}/_wait", params=params, timeout=(5, timeout + 30))
        response.raise_for_status()
        return {sku: (int(v[0]), float(v[1]), float(v[2])) for sku, v in response.json()["skus"].items()}


# the files


def file_tag(index: int) -> str:
    return f"F{index:03d}"


def file_bytes(tag: str, index: int, rows: int) -> bytes:
    """`rows` SKUs of their own, each with its own quantity (at least 1: a new SKU's ATS changes)."""
    as_of = f"2026-01-01T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}Z"
    lines = ["sku,quantity,as_of"]
    lines.extend(f"{tag}-{j:03d},{(index * 7 + j) % 400 + 1},{as_of}" for j in range(rows))
    return ("\n".join(lines) + "\n").encode()


def expected_values(data: bytes) -> dict[str, int]:
    rows = data.decode().splitlines()[1:]
    return {sku: int(quantity) for sku, quantity, _ in (row.split(",") for row in rows)}


def write_config(folder: Path, base_url: str, drop: Path | None) -> Path:
    """A partner with its API on the bench's server (token from the environment), delivery defaults."""
    sources = ""
    if drop is not None:
        sources = f'sources = [{{ type = "folder", kind = "stock", path = "{drop}", completion = "rename" }}]\n'
    config = folder / "gateway.toml"
    config.write_text(
        f'staging = "{folder / "staging"}"\n\n'
        f'[store]\nurl = "sqlite:///{folder / "gateway.db"}"\n\n'
        "[worker]\nhealth_port = 0\n\n"
        f'[partners.{PARTNER}]\nstock_mode = "simple"\n'
        f'api = {{ base_url = "{base_url}", token_env = "{TOKEN_ENV}", feeds = [] }}\n' + sources,
        encoding="utf-8",
    )
    return config


# the floor: in this process


def floor(folder: Path, url: str, files: Sequence[tuple[str, bytes]], arrivals: Arrivals) -> list[float]:
    """Each file applied with the ingest service plus one delivery pass, on a fresh store: seconds per file."""
    logs.configure("json", sys.stderr, "warning")
    folder.mkdir()
    app = bootstrap.build(settings.load(write_config(folder, f"{url}/floor/v1", None)))
    inputs = folder / "in"
    inputs.mkdir()
    seconds = []
    try:
        for index, (tag, data) in enumerate(files):
            path = inputs / f"stock-{index:03d}.csv"
            path.write_bytes(data)
            started = time.perf_counter()
            result = app.ingestor.ingest(PARTNER, Kind.STOCK, path, source=f"bench:{path.name}")
            report = app.publisher.deliver(PARTNER)
            seconds.append(time.perf_counter() - started)
            expected = expected_values(data)
            if result.outcome != "applied" or report.delivered != len(expected) or not report.ok:
                raise SystemExit(f"floor, {path.name}: {result.summary()}; {report.summary()}")
            received = arrivals.wait("floor", tag, len(expected), 5)
            if {sku: value[0] for sku, value in received.items()} != expected:
                raise SystemExit(f"floor, {path.name}: the partner's values differ from the file's")
    finally:
        app.close()
    return seconds


# the worker: a subprocess


class Worker:
    """`gateway run` on the bench's configuration, its JSON log lines in a file."""

    def __init__(self, folder: Path, url: str, log_level: str) -> None:
        folder.mkdir()
        self.drop = folder / "drop"
        self.drop.mkdir()
        self.config = write_config(folder, f"{url}/worker/v1", self.drop)
        self.log_path = folder / "worker.log"
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | {TOKEN_ENV: TOKEN}
        command = [sys.executable, "-m", "gateway", "--log-level", self.log_level, "run", "--config", str(self.config)]
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def drop_file(self, name: str, data: bytes) -> tuple[float, float]:
        """Write `.NAME.tmp` in the folder, then rename it into place; the rename's moment on both clocks."""
        temporary = self.drop / f".{name}.tmp"
        with temporary.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        monotonic, wall = time.monotonic(), time.time()
        os.replace(temporary, self.drop / name)
        return monotonic, wall

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM; the exit code (None when it did not exit within `timeout`, and was killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                lines.append({"event": "(not json)", "text": text})
        return lines

    def tail(self, count: int = 20) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:])


def fail(worker: Worker, message: str) -> None:
    code = worker.stop(timeout=10)
    raise SystemExit(f"{message} (worker exit code {code}); the worker's last log lines:\n{worker.tail()}")


def run_worker(
    folder: Path, url: str, files: Sequence[tuple[str, bytes]], arrivals: Arrivals, args: argparse.Namespace
) -> dict[str, Any]:
    """Start the worker, warm it up with one file, drop the files one after another; latencies and stages."""
    worker = Worker(folder, url, args.log_level)
    started = time.monotonic()
    worker.start()
    # the warm-up file proves the worker is up (its watcher takes files already there at start) and delivering
    warm = file_bytes("W000", 0, args.rows)
    worker.drop_file("warm-up.csv", warm)
    if len(arrivals.wait("worker", "W000", args.rows, args.startup_timeout)) < args.rows:
        fail(worker, f"the warm-up file was not delivered within {args.startup_timeout:g} s of the worker's start")
    startup = time.monotonic() - started
    latencies: list[float] = []
    drops: dict[str, tuple[float, float]] = {}
    delivered_wall: dict[str, float] = {}
    for index, (tag, data) in enumerate(files):
        if args.gap:
            time.sleep(args.gap)  # the bench's pause between files (not the gateway's)
        name = f"stock-{index:03d}.csv"
        dropped, dropped_wall = worker.drop_file(name, data)
        drops[name] = (dropped, dropped_wall)
        expected = expected_values(data)
        received = arrivals.wait("worker", tag, len(expected), args.timeout)
        if len(received) < len(expected):
            alive = "running" if worker.alive() else "exited"
            fail(worker, f"{name}: {len(received)} of {len(expected)} ATS items within {args.timeout:g} s ({alive})")
        if {sku: value[0] for sku, value in received.items()} != expected:
            fail(worker, f"{name}: the partner's values differ from the file's")
        latencies.append(max(value[1] for value in received.values()) - dropped)
        delivered_wall[name] = max(value[2] for value in received.values())
    stopping = time.monotonic()
    code = worker.stop()
    stopped = time.monotonic() - stopping
    archived = sorted(p.name for p in (worker.drop / "archive").glob("*.csv"))
    failed = sorted(p.name for p in (worker.drop / "failed").glob("*")) if (worker.drop / "failed").exists() else []
    left = sorted(p.name for p in worker.drop.iterdir() if p.is_file())
    lines = worker.log_lines()
    problems = [line for line in lines if line.get("level") in ("warning", "error", "critical")]
    return {
        "latencies": latencies,
        "startup": startup,
        "exit_code": code,
        "stopped": stopped,
        "archived": len(archived),
        "failed": failed,
        "left": left,
        "problems": problems,
        "stages": stages(lines, drops, delivered_wall) if args.log_level in ("info", "debug") else None,
    }


def _wall(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


def stages(
    lines: Sequence[dict[str, Any]], drops: dict[str, tuple[float, float]], delivered: dict[str, float]
) -> dict[str, list[float]]:
    """From the worker's info lines (wall clock): per file, seconds from the drop to the start of its ingest,
    in the ingest, from its end to the archive move's end, and from there to the partner's receipt."""
    applied: dict[str, dict[str, Any]] = {}
    archived: dict[str, float] = {}
    for line in lines:
        name = str(line.get("file") or line.get("source") or "").rpartition(":")[2]
        if name not in drops:
            continue
        if line.get("event") == "file_applied":
            applied[name] = line
        elif line.get("event") == "file_archived":
            archived[name] = _wall(line)
    found: dict[str, list[float]] = {"to ingest": [], "ingest": [], "archive": [], "to partner": []}
    for name, (_, dropped) in drops.items():
        line = applied.get(name)
        if line is None or name not in archived or name not in delivered:
            continue
        ingest = float(line.get("duration_ms", 0)) / 1000
        ended = _wall(line)
        found["to ingest"].append(ended - ingest - dropped)
        found["ingest"].append(ingest)
        found["archive"].append(archived[name] - ended)
        found["to partner"].append(delivered[name] - archived[name])
    return found


# figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def line(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"{label}: no figures"
    figures = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)]
    parts = [f"{name} {percentile(values, q) * 1000:7.1f}" for name, q in figures]
    return (
        f"{label}: "
        + ", ".join(parts)
        + f", max {max(values) * 1000:7.1f} ms (mean {statistics.mean(values) * 1000:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100, help="Rows (SKUs) per file.")
    parser.add_argument(
        "--gap", type=float, default=0.0, help="Seconds the bench waits between a delivery and the next drop."
    )
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="Seconds a file may take before the bench gives up."
    )
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--log-level", choices=["warning", "info", "debug"], default="warning", help="The worker's.")
    parser.add_argument("--keep", type=Path, help="Run in this (new) folder and keep it, logs included.")
    args = parser.parse_args()
    files = [(file_tag(i), file_bytes(file_tag(i), i, args.rows)) for i in range(args.files)]
    port_out: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port_out,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port_out.get(timeout=30)}"
    os.environ[TOKEN_ENV] = TOKEN
    arrivals = Arrivals(url)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
            folder = args.keep or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            floor_seconds = floor(folder / "floor", url, files, arrivals)
            result = run_worker(folder / "worker", url, files, arrivals, args)
    finally:
        server.terminate()
        server.join(timeout=10)
    latencies = result["latencies"]
    print(
        f"{args.files} files of {args.rows} rows, one after another" + (f", {args.gap:g} s apart" if args.gap else "")
    )
    print(line("floor  (ingest + one delivery pass, in-process)", floor_seconds))
    print(line("worker (drop to delivered, gateway run)        ", latencies))
    if result["stages"] is not None:
        for name, values in result["stages"].items():
            print(line(f"  stage {name:<41}", values))
    print(f"worker start to warm-up file delivered: {result['startup']:.2f} s")
    problems = result["problems"]
    print(
        f"worker: exit code {result['exit_code']} {result['stopped']:.2f} s after SIGTERM; "
        f"{result['archived']} files archived, "
        f"{len(result['failed'])} in failed/, {len(result['left'])} left in the folder, "
        f"{len(problems)} warning/error log lines"
    )
    for problem in problems[:5]:
        print(f"  {json.dumps(problem)[:300]}")
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    met = p50 < P50_TARGET and p99 < P99_TARGET
    print(
        f"target p50 < {P50_TARGET * 1000:.0f} ms and p99 < {P99_TARGET * 1000:.0f} ms: "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms: {'met' if met else 'MISSED'}"
    )
    healthy = result["exit_code"] == 0 and result["archived"] == args.files + 1 and not result["failed"]
    if not healthy:
        raise SystemExit("the worker did not exit 0 or did not archive every file")


if __name__ == "__main__":
    main()
