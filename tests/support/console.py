"""A store holding what the operator console shows, and a worker serving the console over it: for the console's
tests (in process and in a real browser) and `make console-screenshots`.

    seeded = seed(folder, partner)          # partner: a running FakePartner; an applied item, a rejected one
                                            # (with a hostile file name), a delivered message and a dead letter
    with console_worker(folder) as (worker, base):  # `gateway run` with the API and its console, over that store
        ... base + "/console/" ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import bootstrap, settings
from gateway.formats.rows import Kind
from tests.conftest import toml_value, write_config
from tests.support.partner import FakePartner, Status
from tests.support.worker import WORKER_DEFAULTS, WorkerProcess

PARTNER = "shop"
CONSOLE_TOKEN_ENV = "CONSOLE_TEST_TOKEN"  # noqa: S105 - the name of a variable
CONSOLE_TOKEN = "console-token-0123456789abcdef"  # noqa: S105 - a throwaway test token
API_TOKEN_ENV = "CONSOLE_TEST_API_TOKEN"  # noqa: S105 - the name of a variable
API_TOKEN = "api-only-token-0123456789abcdef"  # noqa: S105 - a throwaway test token
PARTNER_TOKEN = "partner-s3cret"  # noqa: S105 - the fake partner's token
ENV = {CONSOLE_TOKEN_ENV: CONSOLE_TOKEN, API_TOKEN_ENV: API_TOKEN}

HOSTILE = '<img src=x onerror="alert(1)">&levels.csv'  # a file name a page must show as text, never as markup
APPLIED_RUN = "run-applied-0001"
DEAD_ANSWER = '{"error": "unknown sku DEAD-1"}'

TOKENS_TOML = f"""
[[api.tokens]]
name = "operator"
token_env = "{CONSOLE_TOKEN_ENV}"
partners = ["*"]
scopes = ["console"]

[[api.tokens]]
name = "checkout"
token_env = "{API_TOKEN_ENV}"
partners = ["*"]
"""


@dataclass(frozen=True)
class Seeded:
    """What `seed` put in the store: the items' digests and the dead letter's id."""

    store_url: str
    applied_sha256: str
    rejected_sha256: str
    dead_id: int
    drop: Path  # the folder source's folder


def _config(folder: Path, store_url: str, drop: Path, partner_api: dict[str, Any] | None) -> Path:
    source = {"type": "folder", "name": "drop", "kind": "stock", "path": str(drop)}
    options: dict[str, Any] = {"stock_mode": "simple", "sources": [source]}
    if partner_api is not None:
        options["api"] = partner_api
        options["delivery"] = {"retries": 1, "breaker_threshold": 100}
    return write_config(folder, {PARTNER: options}, store_url)


def seed(folder: Path, partner: FakePartner) -> Seeded:
    """A SQLite store in `folder` holding an applied item (run APPLIED_RUN, its values delivered to `partner`), a
    rejected item named HOSTILE, a stock level DEAD-1 whose delivery `partner` refused (400: a dead letter)."""
    (folder / "var").mkdir(parents=True, exist_ok=True)
    (folder / "drop").mkdir(exist_ok=True)
    store_url = f"sqlite:///{folder / 'var' / 'gateway.db'}"
    token_file = folder / "partner-token"
    token_file.write_text(PARTNER_TOKEN, encoding="utf-8")
    api = {"base_url": partner.url, "token_file": str(token_file), "connect_timeout": 2.0, "read_timeout": 2.0}
    (folder / "seed").mkdir()
    path = _config(folder / "seed", store_url, folder / "drop", api)
    app = bootstrap.build(settings.load(path, environ=ENV))
    try:
        app.commands.set_stock(PARTNER, "DEAD-1", 5, None)
        partner.script(Status(400, body=DEAD_ANSWER))
        assert app.publisher.deliver(PARTNER).dead == 1
        good = folder / "good.csv"
        good.write_text("sku,quantity,as_of\nEGGS,12,2026-01-01T10:00:00Z\nMILK,3,2026-01-01T10:00:00Z\n")
        applied = app.ingestor.ingest(PARTNER, Kind.STOCK, good, source="levels-good.csv", run_id=APPLIED_RUN)
        assert applied.outcome == "applied", applied.summary()
        bad = folder / "bad.csv"
        bad.write_text("article;count\nEGGS;x\n")
        rejected = app.ingestor.ingest(PARTNER, Kind.STOCK, bad, source=HOSTILE)
        assert rejected.outcome == "rejected", rejected.outcome
        assert app.publisher.deliver(PARTNER).delivered == 2  # EGGS and MILK
        with app.store.read() as tx:
            [dead] = tx.outbox.rows(tx.partners.id_of(PARTNER), state="dead")
    finally:
        app.close()
    return Seeded(store_url, applied.sha256, rejected.sha256, dead.id, folder / "drop")


def worker_config(folder: Path, seeded: Seeded) -> Path:
    """The worker's configuration over the seeded store: the folder source, no partner API (a message queued
    again stays queued: it has no route), the platform API and its console on a free port."""
    (folder / "run").mkdir(exist_ok=True)
    path = _config(folder / "run", seeded.store_url, seeded.drop, None)
    worker = "".join(f"{key} = {toml_value(value)}\n" for key, value in WORKER_DEFAULTS.items())
    api = "\n[api]\nenabled = true\nport = 0\n" + TOKENS_TOML
    path.write_text(path.read_text(encoding="utf-8") + "\n[worker]\n" + worker + api, encoding="utf-8")
    return path


@contextlib.contextmanager
def console_worker(folder: Path, seeded: Seeded) -> Iterator[tuple[WorkerProcess, str]]:
    """`gateway run` over the seeded store with its console; (the worker, its API's base URL). Killed after."""
    worker = WorkerProcess(worker_config(folder, seeded), ENV)
    try:
        worker.start()
        port = worker.events("worker_started")[0]["api_port"]
        yield worker, f"http://127.0.0.1:{port}"
    finally:
        worker.kill()
