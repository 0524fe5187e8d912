"""Platform API benchmark: order placements per second and their latency from concurrent clients on loopback, against
a floor measured in the same run: the same placements through the engine in-process.

The API side: `gateway serve` (uvicorn) as a real subprocess on 127.0.0.1, over a SQLite store seeded with one stock
snapshot of many SKUs, each with plenty of stock. 16 client threads, each on its own kept-alive connection (the standard
library's http.client: a light load generator), post their share of the placements as fast as the answers come back:
each placement is one unit of one SKU, with its own order id and Idempotency-Key. The store is checked afterwards:
every unit placed is allocated.

The floor, in this process on a fresh store seeded the same way: the same placements, one after another, through
`app.commands.place` (the engine in one transaction each), without HTTP, JSON or the Idempotency-Key's answer.

Targets: at least 500 placements per second through the API, and within 2.5x of the floor (floor placements/s over
API placements/s). Also shown: the CPU time each side spends per placement (the server's read from /proc, on Linux),
which says what bounds the API when the machine is shared.

Usage: python bench/api.py [--placements N] [--clients C] [--skus S] [--repeat R] [--log-level warning|info]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import requests

ROOT = Path(__file__).resolve().parent.parent
PARTNER = "bench"
TOKEN_ENV = "BENCH_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN = "bench-api-token-0123456789abcdef"  # noqa: S105 - a token of the bench's throwaway store
STOCK = 1_000_000  # units of every SKU: no placement is ever refused
AS_OF = "2026-01-01T00:00:00Z"

Placement = tuple[str, str]  # order id (also its Idempotency-Key), SKU


def write_config(folder: Path) -> Path:
    """One partner in simple mode (pending lines allocate), the store in `folder`, one token for the partner."""
    path = folder / "gateway.toml"
    path.write_text(
        'staging = "staging"\n\n[store]\nurl = "sqlite:///gateway.db"\n\n'
        f'[api]\nhost = "127.0.0.1"\n\n[[api.tokens]]\nname = "bench"\ntoken_env = "{TOKEN_ENV}"\n'
        f'partners = ["{PARTNER}"]\n\n[partners.{PARTNER}]\nstock_mode = "simple"\n',
        encoding="utf-8",
    )
    return path


def sku_name(index: int) -> str:
    return f"SKU{index:06d}"


def seed(folder: Path, skus: int) -> Path:
    """A fresh store in `folder` holding one snapshot: every SKU at STOCK units. The configuration's path."""
    from gateway import bootstrap, settings
    from gateway.formats.rows import Kind

    folder.mkdir(parents=True)
    config = write_config(folder)
    snapshot = folder / "stock.csv"
    with snapshot.open("w", encoding="utf-8") as out:
        out.write("sku,quantity,as_of\n")
        out.writelines(f"{sku_name(i)},{STOCK},{AS_OF}\n" for i in range(skus))
    app = bootstrap.build(settings.load(config))
    try:
        app.ingestor.ingest(PARTNER, Kind.STOCK, snapshot)
    finally:
        app.close()
    return config


def placements(count: int, skus: int, tag: str) -> list[Placement]:
    """`count` placements spread over the SKUs (consecutive ones on different SKUs), order ids unique to `tag`."""
    stride = 7919  # a prime: placement i goes to SKU i * stride mod skus, every SKU in turn
    return [(f"{tag}-{i:07d}", sku_name(i * stride % skus)) for i in range(count)]


def allocated(config: Path) -> int:
    """Units allocated over every SKU of the partner (each placement allocates its one unit)."""
    from gateway import bootstrap, settings
    from gateway.service import queries

    app = bootstrap.build(settings.load(config))
    try:
        with app.store.read() as tx:
            return sum(view.allocated for view in queries.ats(tx, PARTNER))
    finally:
        app.close()


# the API: `gateway serve` in its own process, 16 clients


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """`gateway serve` on the bench's configuration, its log in a file beside it."""

    def __init__(self, config: Path, log_level: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/partners/{PARTNER}"
        self.log_path = config.parent / "serve.log"
        command = [sys.executable, "-m", "gateway", "--log-level", log_level, "--config", str(config)]
        command += ["serve", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {TOKEN_ENV: TOKEN}, cwd=ROOT
            )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until a GET answers 200."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                self.fail(f"gateway serve exited with code {self.process.returncode}")
            try:
                answer = requests.get(f"{self.url}/ats", params={"sku": sku_name(0)}, headers=auth(), timeout=(1, 5))
                if answer.status_code == 200:
                    return time.perf_counter() - started
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        return self.fail(f"gateway serve did not answer within {timeout:.0f} s")

    def cpu_seconds(self) -> float | None:
        """User and system CPU time the server process has used (None where /proc does not say)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text(encoding="ascii")
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def fail(self, message: str) -> NoReturn:
        self.stop()
        tail = "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        raise SystemExit(f"{message}; its last log lines:\n{tail}")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Client:
    """One client thread's share of the placements and what it saw."""

    share: Sequence[Placement]
    latencies: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def run(self, port: int, ready: threading.Barrier) -> None:
        """Post the share on one kept-alive connection. The standard library's client, not requests: on the same
        machine as the server, the load generator's own CPU (requests spends about 0.85 ms of it on a placement,
        more than the server) would be most of what is measured."""
        prefix = f"/v1/partners/{PARTNER}"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", f"{prefix}/ats?sku={sku_name(0)}", headers=auth())  # connected
            first = connection.getresponse()
            first.read()
            if first.status != 200:
                raise SystemExit(f"GET ats answered {first.status}")
            ready.wait()
            self.started = time.perf_counter()
            for order_id, sku in self.share:
                body = json.dumps({"order_id": order_id, "lines": [{"sku": sku, "quantity": 1}]}).encode()
                headers = {**auth(), "Content-Type": "application/json", "Idempotency-Key": order_id}
                sent = time.perf_counter()
                connection.request("POST", f"{prefix}/orders", body=body, headers=headers)
                answer = connection.getresponse()
                text = answer.read()
                self.latencies.append(time.perf_counter() - sent)
                if answer.status != 201:
                    self.refused.append(f"{order_id}: {answer.status} {text[:200]!r}")
            self.finished = time.perf_counter()
        finally:
            connection.close()


def api_run(folder: Path, args: argparse.Namespace) -> dict[str, float]:
    config = seed(folder, args.skus)
    todo = placements(args.placements, args.skus, "api")
    server = Server(config, args.log_level)
    ready_seconds = server.wait_ready()
    clients = [Client(todo[c :: args.clients]) for c in range(args.clients)]
    ready = threading.Barrier(args.clients)
    threads = [threading.Thread(target=c.run, args=(server.port, ready)) for c in clients]
    try:
        cpu_before = server.cpu_seconds()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu_after = server.cpu_seconds()
    finally:
        code = server.stop()
    refused = [problem for c in clients for problem in c.refused]
    latencies = [latency for c in clients for latency in c.latencies]
    if refused or len(latencies) != len(todo):
        raise SystemExit(f"{len(refused)} placements were not answered 201, e.g. {refused[:3]}")
    held = allocated(config)
    if held != len(todo):
        raise SystemExit(f"the store allocates {held} units after {len(todo)} placements of one unit")
    seconds = max(c.finished for c in clients) - min(c.started for c in clients)
    cpu = math.nan if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / len(todo)
    return {
        "rate": len(todo) / seconds,
        "seconds": seconds,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "cpu": cpu,  # the server's CPU seconds per placement (its 16 clients' own not counted)
        "ready": ready_seconds,
        "exit": -1 if code is None else code,
    }


# the floor: the engine in-process


def floor_run(folder: Path, args: argparse.Namespace) -> dict[str, float]:
    from gateway import bootstrap, logs, settings
    from gateway.domain.orders import RequestedLine

    config = seed(folder, args.skus)
    logs.configure("json", io.StringIO() if args.log_level in ("info", "debug") else None, args.log_level)
    todo = placements(args.placements, args.skus, "floor")
    app = bootstrap.build(settings.load(config))
    latencies = []
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        for order_id, sku in todo:
            sent = time.perf_counter()
            app.commands.place(PARTNER, order_id, [RequestedLine(sku, 1)])
            latencies.append(time.perf_counter() - sent)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        app.close()
        logs.configure("json", None, "warning")
    held = allocated(config)
    if held != len(todo):
        raise SystemExit(f"the floor's store allocates {held} units after {len(todo)} placements of one unit")
    return {
        "rate": len(todo) / seconds,
        "seconds": seconds,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "cpu": cpu / len(todo),
    }


# figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--placements", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skus", type=int, default=2000, help="SKUs in the store; a placement takes a unit of one.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs, each measuring both sides; the median figures.")
    parser.add_argument(
        "--log-level", choices=["warning", "info", "debug"], default="warning", help="The server's, and the floor's."
    )
    parser.add_argument("--keep", type=Path, help="Run in this (new) folder and keep it, the server's log included.")
    args = parser.parse_args()
    from gateway.logs import configure

    configure("json", None, "warning")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = args.keep or Path(tmp)
        for i in range(args.repeat):
            api = api_run(folder / f"run-{i}" / "api", args)
            floor = floor_run(folder / f"run-{i}" / "floor", args)
            runs.append((api, floor))
            print(
                f"run {i + 1}: API {api['rate']:,.0f} placements/s (p50 {api['p50'] * 1000:.1f} ms, "
                f"p99 {api['p99'] * 1000:.1f} ms, server CPU {api['cpu'] * 1000:.2f} ms each); "
                f"floor {floor['rate']:,.0f} placements/s (p99 {floor['p99'] * 1000:.2f} ms, "
                f"CPU {floor['cpu'] * 1000:.2f} ms each); ratio {floor['rate'] / api['rate']:.2f}x; "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    api_rate = statistics.median(api["rate"] for api, _ in runs)
    api_p50 = statistics.median(api["p50"] for api, _ in runs)
    api_p99 = statistics.median(api["p99"] for api, _ in runs)
    floor_rate = statistics.median(floor["rate"] for _, floor in runs)
    floor_p99 = statistics.median(floor["p99"] for _, floor in runs)
    api_cpu = statistics.median(api["cpu"] for api, _ in runs)
    floor_cpu = statistics.median(floor["cpu"] for _, floor in runs)
    ratio = statistics.median(floor["rate"] / api["rate"] for api, floor in runs)
    print(
        f"{args.placements:,} placements of 1 unit over {args.skus:,} SKUs, {args.clients} clients; "
        f"SQLite; server log level {args.log_level}; median of {args.repeat} runs"
    )
    print(
        f"API   (gateway serve, {args.clients} clients on loopback): {api_rate:,.0f} placements/s, "
        f"p50 {api_p50 * 1000:.1f} ms, p99 {api_p99 * 1000:.1f} ms; server CPU {api_cpu * 1000:.2f} ms a placement"
    )
    print(
        f"floor (engine in-process, one after another):   {floor_rate:,.0f} placements/s, "
        f"p99 {floor_p99 * 1000:.2f} ms; CPU {floor_cpu * 1000:.2f} ms a placement"
    )
    rate_verdict = "met" if api_rate >= 500 else "MISSED"
    ratio_verdict = "met" if ratio <= 2.5 else "MISSED"
    print(f"API placements/s: {api_rate:,.0f} (target >= 500): {rate_verdict}")
    print(f"ratio floor/API: {ratio:.2f}x (target <= 2.5x): {ratio_verdict}")


if __name__ == "__main__":
    main()
