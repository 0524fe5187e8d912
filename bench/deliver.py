"""Delivery benchmark: 100,000 ATS changes over 10,000 SKUs delivered through the outbox to a partner on
127.0.0.1, against a floor measured in the same run: the same final 10,000 values posted in the same batch size
with a bare requests loop to the same server.

The changes come in as ten stock snapshots of the 10,000 SKUs (each SKU's level changes in each), so the outbox
coalesces them to one pending value per SKU, as after an outage. The partner is a minimal HTTP/1.1 server
(http.server, in its own process, keeping connections alive) that parses each batch and keeps the latest value per
SKU, deduplicating by Idempotency-Key; both runs post to it. Target: delivery within 1.5x of the floor.

Usage: python bench/deliver.py [--skus N] [--rounds R] [--batch-size B]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from gateway import bootstrap, settings
from gateway.domain import instant
from gateway.formats.rows import Kind
from gateway.logs import configure

TARGET = 1.5  # the median ratio of delivery to the floor
TOKEN_ENV = "BENCH_PARTNER_TOKEN"  # noqa: S105 - the name of a variable, not a secret


class Partner:
    """Keeps the latest ATS per SKU; a batch whose Idempotency-Key it has seen is not applied again."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.keys: set[str] = set()
        self.requests = 0
        self.lock = threading.Lock()

    def take(self, key: str, body: bytes) -> None:
        """One batch posted."""
        items = json.loads(body)["items"]
        with self.lock:
            self.requests += 1
            if key not in self.keys:
                self.keys.add(key)
                for item in items:
                    self.values[item["sku"]] = item["ats"]

    def view(self) -> tuple[bytes, int]:
        """What it holds and how many requests it took; reset."""
        with self.lock:
            body = json.dumps(self.values).encode()
            requests_seen = self.requests
            self.values, self.keys, self.requests = {}, set(), 0
        return body, requests_seen


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as a partner's server keeps a client's connection between requests (werkzeug's
    development server closes every connection: both sides would pay a new connection per batch)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the headers and the body go out as written, not held for an acknowledgement
    partner = Partner()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:  # the bench reads what the partner holds, and resets it
        body, requests_seen = self.partner.view()
        self._answer(body, {"X-Requests": str(requests_seen)})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.partner.take(self.headers.get("Idempotency-Key", ""), body)
        self._answer(b"{}", {})

    def _answer(self, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def serve(port_out: Any) -> None:
    """The partner, in its own process (as a partner is): its parsing does not compete with the gateway's GIL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port_out.put(server.server_port)
    server.serve_forever()


def take_view(url: str) -> tuple[dict[str, int], int]:
    """What the partner holds and how many requests it took; resets it."""
    response = requests.get(f"{url}/_state", timeout=(5, 30))
    response.raise_for_status()
    values: dict[str, int] = response.json()
    return values, int(response.headers["X-Requests"])


def write_snapshots(folder: Path, skus: int, rounds: int) -> list[Path]:
    paths = []
    for round_ in range(rounds):
        path = folder / f"stock-{round_:02d}.csv"
        as_of = instant.to_iso(instant.parse("2026-01-01T00:00:00Z") + round_ * 60_000_000)
        with path.open("w", encoding="utf-8") as out:
            out.write("sku,quantity,as_of\n")
            out.writelines(f"SKU{i:06d},{(i * 7 + round_ * 13) % 500 + round_},{as_of}\n" for i in range(skus))
        paths.append(path)
    return paths


def floor(url: str, values: list[dict[str, Any]], batch_size: int, token: str) -> float:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    for start in range(0, len(values), batch_size):
        body = json.dumps({"items": values[start : start + batch_size]}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"floor-{start}"}
        response = session.post(f"{url}/ats", data=body, headers=headers, timeout=(5, 30))
        response.raise_for_status()
    seconds = time.perf_counter() - started
    session.close()
    return seconds


def one_run(url: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """Queue the changes in a fresh store, deliver them, then post the same final values with the floor."""
    folder.mkdir()
    config = folder / "gateway.toml"
    config.write_text(
        '[store]\nurl = "sqlite:///gateway.db"\n\n[partners.bench]\nstock_mode = "simple"\n'
        f'api = {{ base_url = "{url}", token_env = "{TOKEN_ENV}", feeds = [] }}\n'
        f"delivery = {{ batch_size = {args.batch_size} }}\n",
        encoding="utf-8",
    )
    app = bootstrap.build(settings.load(config))
    started = time.perf_counter()
    changes = sum(
        app.ingestor.ingest("bench", Kind.STOCK, path).ats_changes
        for path in write_snapshots(folder, args.skus, args.rounds)
    )
    queued = time.perf_counter() - started
    with app.store.read() as tx:
        pending = tx.outbox.rows(tx.partners.id_of("bench"), "pending", kind="ats")
    final = [
        {
            "message_id": m.id,
            "sku": m.key,
            "ats": m.value,
            "as_of": instant.to_iso(m.as_of),
            "computed_at": instant.to_iso_fixed(m.created_at),
        }
        for m in pending
    ]
    started = time.perf_counter()
    report = app.publisher.deliver("bench")
    gateway_seconds = time.perf_counter() - started
    app.close()
    expected = {item["sku"]: item["ats"] for item in final}
    view, gateway_requests = take_view(url)
    if view != expected or not report.ok:
        raise SystemExit(f"the partner's view differs from the store's ATS: {report.summary()}")
    floor_seconds = floor(url, final, args.batch_size, os.environ[TOKEN_ENV])
    if take_view(url)[0] != expected:
        raise SystemExit("the floor did not deliver the same values")
    return {
        "changes": changes,
        "queued": queued,
        "values": len(final),
        "gateway": gateway_seconds,
        "floor": floor_seconds,
        "requests": gateway_requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="Runs, each measuring both sides; the median ratio.")
    args = parser.parse_args()
    configure("json", level="warning")
    os.environ[TOKEN_ENV] = "bench-token"
    port_out: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port_out,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port_out.get(timeout=30)}/v1"
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deliver-") as tmp:
            runs = [one_run(url, Path(tmp) / f"run-{i}", args) for i in range(args.repeat)]
    finally:
        server.terminate()
        server.join(timeout=10)
    first = runs[0]
    gateway_seconds = min(run["gateway"] for run in runs)
    floor_seconds = min(run["floor"] for run in runs)
    values = first["values"]
    ratios = sorted(run["gateway"] / run["floor"] for run in runs)
    ratio = statistics.median(ratios)
    print(f"ATS changes applied: {first['changes']:,.0f} over {args.skus:,} SKUs in {first['queued']:.2f} s (queued)")
    print(
        f"pending after coalescing: {values:,.0f} values, batch size {args.batch_size}; "
        f"{args.repeat} runs, best times shown"
    )
    print(f"floor   (bare requests loop): {floor_seconds:.3f} s, {values / floor_seconds:,.0f} values/s")
    print(
        f"gateway (outbox delivery):    {gateway_seconds:.3f} s, {values / gateway_seconds:,.0f} values/s, "
        f"{first['requests']:.0f} requests"
    )
    print(f"ratio gateway/floor per run: {', '.join(f'{r:.2f}x' for r in ratios)}")
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"ratio gateway/floor, median: {ratio:.2f}x (target <= {TARGET}x): {verdict}")


if __name__ == "__main__":
    main()
