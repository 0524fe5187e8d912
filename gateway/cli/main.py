"""The `gateway` command. Exit codes: 0 success, 1 refused or rejected, 2 usage or configuration error."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
from sqlalchemy import make_url

from gateway import bootstrap, logs, settings
from gateway.cli import ledger as cli_ledger
from gateway.cli.terminal import IDENTIFIER, ORDER_LINE, SafeGroup, echo
from gateway.domain import identifiers, instant
from gateway.domain.caps import CapSource
from gateway.domain.errors import Refusal
from gateway.domain.orders import RequestedLine
from gateway.domain.status import OrderStatus, parse_status
from gateway.formats.rows import Kind
from gateway.service import publish, queries
from gateway.service.channels import ChannelView
from gateway.service.engine import AtsChange
from gateway.service.ingest import IngestResult
from gateway.store.port import OutboxRecord, StoreError
from gateway.transport.http import ApiConfigError
from gateway.transport.inbox import TransportError

EXIT_REFUSED = 1
EXIT_CONFIG = 2


class State:
    """What the top-level options chose; the app is built on first use, not for --help."""

    def __init__(self, config: str | None, quiet: bool) -> None:
        self.config = config
        self.quiet = quiet
        self._settings: settings.Settings | None = None

    def settings(self) -> settings.Settings:
        if self._settings is None:
            try:
                path = settings.config_path(self.config, os.environ)
                self._settings = settings.load(path)
            except settings.ConfigError as exc:
                fail_config(exc)
        return self._settings

    @contextmanager
    def app(self, partner: str | None = None) -> Iterator[bootstrap.App]:
        config = self.settings()
        if partner is not None:
            try:
                config.partner(partner)
            except settings.ConfigError as exc:
                fail_config(exc)
        try:
            built = bootstrap.build(config)
        except StoreError as exc:
            echo(f"gateway: cannot open the store: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
        try:
            yield built
        finally:
            built.close()


def fail_config(exc: settings.ConfigError) -> NoReturn:
    echo("gateway: the configuration has problems:", err=True)
    for problem in exc.problems:
        echo(f"  {problem}", err=True)
    sys.exit(EXIT_CONFIG)


def refuse(reason: str) -> NoReturn:
    echo(f"gateway: refused: {reason}", err=True)
    sys.exit(EXIT_REFUSED)


def parse_instant(text: str | None, zone_of: str, state: State) -> int | None:
    if text is None:
        return None
    try:
        return instant.parse(text, state.settings().partner(zone_of).zone)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def print_changes(changes: Sequence[AtsChange], stream: TextIO | None = None) -> None:
    for change in sorted(changes, key=lambda c: c.sku):
        before = "-" if change.before is None else str(change.before)
        echo(f"  ATS {change.sku}: {before} -> {change.after}", file=stream)


class ProgressLine:
    """Rows read and rows per second on one self-rewriting line of a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO, label: str, enabled: bool) -> None:
        self.stream = stream
        self.label = identifiers.escape_controls(label)  # a file name may hold anything
        self.enabled = enabled and stream.isatty()
        self.started = time.perf_counter()
        self.drawn = False

    def __call__(self, rows: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.stream.write(f"\r{self.label}: {rows:,} rows read, {rows / elapsed:,.0f} rows/s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


@click.group(cls=SafeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Configuration file (or GATEWAY_CONFIG).")
@click.option("--log-format", type=click.Choice(["json", "console"]), default="json", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.version_option(package_name="stock-gateway")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_format: str, log_level: str, quiet: bool) -> None:
    """stock-gateway: take in partners' stock files, apply them, publish available-to-sell."""
    logs.configure("console" if log_format == "console" else "json", sys.stderr, log_level)
    ctx.obj = State(config, quiet)


@cli.command("check-config")
@click.pass_obj
def check_config(state: State) -> None:
    """Validate the configuration; list every problem by key (exit 2) or say it is fine."""
    config = state.settings()
    names = ", ".join(f"{n} ({p.stock_mode.value})" for n, p in sorted(config.partners.items())) or "none"
    url = make_url(config.store.url)
    shown = url.difference_update_query([k for k in url.query if k.lower() == "password"]).render_as_string(
        hide_password=True
    )
    echo(f"configuration is valid: store {shown}; partners: {names}")


@cli.command()
@click.option("--partner", required=True)
@click.option("--kind", required=True, type=click.Choice([k.value for k in Kind]))
@click.option("--dry-run", is_flag=True, help="Show the ATS changes the file would make; change nothing.")
@click.option("--as-of", "as_of", help="The files' instant, for stock rows without an as_of column.")
@click.option("--json", "as_json", is_flag=True, help="Print each file's report as JSON.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def ingest(
    state: State,
    partner: str,
    kind: str,
    dry_run: bool,
    as_of: str | None,
    as_json: bool,
    files: tuple[Path, ...],
) -> None:
    """Apply flat files, each in one transaction (a duplicate of an applied file is a no-op)."""
    file_as_of = parse_instant(as_of, partner, state)
    worst = 0
    with state.app(partner) as app:
        for path in files:
            progress = ProgressLine(sys.stderr, path.name, not state.quiet)
            try:
                result = app.ingestor.ingest(
                    partner,
                    Kind(kind),
                    path,
                    as_of=file_as_of,
                    dry_run=dry_run,
                    progress=progress if progress.enabled else None,
                )
            finally:
                progress.close()
            worst = max(worst, _report_ingest(result, as_json))
    sys.exit(worst)


def _report_ingest(result: IngestResult, as_json: bool) -> int:
    if as_json:
        body = result.report()
        body["dry_run"] = result.dry_run
        body["ats_changes"] = [
            {"sku": c.sku, "before": c.before, "after": c.after} for c in sorted(result.changes, key=lambda c: c.sku)
        ]
        echo(json.dumps(body))
    if result.outcome == "rejected":
        echo(f"gateway: rejected: {result.summary()}", err=True)
        for problem in result.problems:
            echo(f"  {problem.describe()}", err=True)
        if result.unlisted:
            echo(f"  ... and {result.unlisted} more", err=True)
        return EXIT_REFUSED
    if not as_json:
        echo(result.summary())
        if result.dry_run:
            print_changes(result.changes)
    if result.refusals:
        echo(f"gateway: refused {result.counts.refused} row(s) of {result.source}:", err=True)
        for problem in result.refusals:
            echo(f"  {problem.describe()}", err=True)
        return EXIT_REFUSED
    return 0


@cli.command()
@click.option("--partner", required=True)
@click.option("--sku", "skus", multiple=True, type=IDENTIFIER, help="Only these SKUs (repeatable).")
@click.option(
    "--assembly", type=IDENTIFIER, help="With --collection: the ATS of that collection (channel ATS), cap included."
)
@click.option("--collection", type=IDENTIFIER, help="With --assembly: the collection.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects, one per SKU.")
@click.option("--explain", is_flag=True, help="For one --sku: why its ATS is what it is.")
@click.pass_obj
def ats(
    state: State,
    partner: str,
    skus: tuple[str, ...],
    assembly: str | None,
    collection: str | None,
    as_json: bool,
    explain: bool,
) -> None:
    """Show available-to-sell (published values: never negative), per SKU or per collection of an assembly.

    Per SKU, --json prints {sku, stock, allocated, ats, as_of}; per collection, {sku, assembly, collection,
    ats, cap, ordered}.
    """
    if (assembly is None) != (collection is None):
        raise click.UsageError("--assembly and --collection go together")
    if explain and len(skus) != 1:
        raise click.UsageError("--explain needs exactly one --sku")
    if assembly is not None and collection is not None:
        if not skus:
            raise click.UsageError("a collection's ATS needs at least one --sku")
        with state.app(partner) as app, app.store.read() as tx:
            channel_views = [queries.channel(tx, partner, sku, assembly, collection) for sku in dict.fromkeys(skus)]
        _print_channels(channel_views, as_json, explain)
        return
    with state.app(partner) as app, app.store.read() as tx:
        if explain:
            _print_explanation(queries.explain(tx, partner, app.settings.partner(partner).policy, skus[0]), as_json)
            return
        views = queries.ats(tx, partner, list(skus))
    if as_json:
        body = [
            {"sku": v.sku, "stock": v.stock, "allocated": v.allocated, "ats": v.ats, "as_of": instant.to_iso(v.as_of)}
            for v in views
        ]
        echo(json.dumps(body))
        return
    echo(f"{'sku':<24} {'stock':>8} {'allocated':>10} {'ats':>8}  as_of")
    for v in views:
        echo(f"{v.sku:<24} {v.stock:>8} {v.allocated:>10} {v.ats:>8}  {instant.to_iso(v.as_of) or '-'}")


def _print_channels(views: Sequence[ChannelView], as_json: bool, explain: bool) -> None:
    if as_json:
        body: list[dict[str, object]] = []
        for v in views:
            item: dict[str, object] = {
                "sku": v.sku,
                "assembly": v.assembly,
                "collection": v.collection,
                "ats": v.ats,
                "cap": v.cap,
                "ordered": v.ordered,
            }
            if explain:
                item |= {"cap_source": v.source.value, "sku_ats": max(0, v.sku_ats)}
            body.append(item)
        echo(json.dumps(body))
        return
    for v in views:
        if not explain:
            cap = "no cap" if v.cap is None else f"cap {v.cap}"
            echo(f"{v.sku} in {v.assembly}/{v.collection}: ATS {v.ats} ({cap}, {v.ordered} ordered)")
            continue
        echo(f"SKU {v.sku} in collection {v.collection} of assembly {v.assembly}")
        if v.cap is None:
            why = (
                "an explicit no maximum for this collection: only the overall stock counts"
                if v.source == CapSource.COLLECTION
                else "no cap in this assembly: only the overall stock counts"
            )
            echo(f"  cap: none ({why})")
            echo(f"  ATS {v.ats} = max(0, SKU ATS {v.sku_ats})")
        else:
            echo(f"  cap: {v.cap}, from the {v.source.value}")
            echo(f"  {v.ordered} unit(s) ordered in this collection (cancelled lines not counted)")
            echo(f"  ATS {v.ats} = max(0, min(SKU ATS {v.sku_ats}, {v.cap} - {v.ordered}))")


def _print_explanation(explanation: queries.Explanation, as_json: bool) -> None:
    view = explanation.view
    if as_json:
        echo(
            json.dumps(
                {
                    "sku": view.sku,
                    "mode": explanation.mode,
                    "stock": view.stock,
                    "as_of": instant.to_iso(view.as_of),
                    "set_by_ledger_id": explanation.set_by,
                    "allocated": view.allocated,
                    "ats": view.ats,
                    "lines": [line.__dict__ for line in explanation.lines],
                    "lines_not_allocating": explanation.non_allocating,
                }
            )
        )
        return
    source = f"ledger entry {explanation.set_by}" if explanation.set_by is not None else "a command"
    snapshot = (
        f"stock {view.stock} as of {instant.to_iso(view.as_of)}, set by {source}"
        if view.as_of is not None
        else f"stock {view.stock}, never set by a snapshot"
    )
    echo(f"SKU {view.sku} ({explanation.mode} mode)")
    echo(f"  {snapshot}")
    echo(f"  allocated {view.allocated} by {len(explanation.lines)} line(s):")
    for line in explanation.lines:
        echo(f"    order {line.order_id} ({line.status}, ordered {line.quantity}): {line.units} unit(s), {line.rule}")
    if explanation.non_allocating:
        echo(f"  {explanation.non_allocating} other open or closed line(s) allocate nothing")
    raw = view.stock - view.allocated
    echo(f"  ATS {view.ats} = max(0, {view.stock} - {view.allocated})" + (" (oversold)" if raw < 0 else ""))


def _run_command(action: object) -> None:
    try:
        changes = action() if callable(action) else []
    except Refusal as refusal:
        refuse(str(refusal))
    print_changes(changes)


@cli.group()
def order() -> None:
    """Place orders, move their status, record confirmations."""


@order.command("place")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--line", "lines", multiple=True, required=True, type=ORDER_LINE, help="SKU:QTY (repeatable).")
@click.option(
    "--assembly", type=IDENTIFIER, help="With --collection: place the lines in that collection of that assembly."
)
@click.option("--collection", type=IDENTIFIER, help="With --assembly: the collection.")
@click.pass_obj
def order_place(
    state: State,
    partner: str,
    order_id: str,
    lines: tuple[RequestedLine, ...],
    assembly: str | None,
    collection: str | None,
) -> None:
    """Place an order: every line fits its SKU's ATS (and its collection's cap), or nothing is placed."""
    if (assembly is None) != (collection is None):
        raise click.UsageError("--assembly and --collection go together")
    requested = [replace(line, assembly=assembly, collection=collection) for line in lines]
    with state.app(partner) as app:
        _run_command(lambda: app.commands.place(partner, order_id, requested))
    echo(f"order {order_id} placed")


@order.command("set-status")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--status", required=True, type=click.Choice([s.value for s in OrderStatus]))
@click.pass_obj
def order_set_status(state: State, partner: str, order_id: str, status: str) -> None:
    """Move an order forward (pending, confirmed, invoicing, closed) or cancel it."""
    with state.app(partner) as app:
        _run_command(lambda: app.commands.set_status(partner, order_id, parse_status(status)))
    echo(f"order {order_id} is {status}")


@order.command("confirm")
@click.option("--partner", required=True)
@click.option("--order-id", required=True, type=IDENTIFIER)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--quantity", required=True, type=click.IntRange(min=0, max=999_999_999_999))
@click.option("--at", "at", required=True, help="The confirmation's instant (ISO 8601).")
@click.pass_obj
def order_confirm(state: State, partner: str, order_id: str, sku: str, quantity: int, at: str) -> None:
    """Record the partner's confirmed quantity for one order line."""
    moment = parse_instant(at, partner, state)
    assert moment is not None
    with state.app(partner) as app:
        _run_command(lambda: app.commands.confirm(partner, order_id, sku, quantity, moment))
    echo(f"order {order_id} SKU {sku} confirmed at {quantity}")


@cli.group()
def stock() -> None:
    """Set stock levels by hand."""


@stock.command("set")
@click.option("--partner", required=True)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--quantity", required=True, type=click.IntRange(min=0, max=999_999_999_999))
@click.option("--as-of", "as_of", help="The level's instant (ISO 8601; default now).")
@click.pass_obj
def stock_set(state: State, partner: str, sku: str, quantity: int, as_of: str | None) -> None:
    """Set one SKU's stock level, as a one-row snapshot."""
    moment = parse_instant(as_of, partner, state)
    with state.app(partner) as app:
        _run_command(lambda: app.commands.set_stock(partner, sku, quantity, moment))
    echo(f"SKU {sku} stock set to {quantity}")


@cli.command()
@click.option("--partner", required=True)
@click.option("--source", "source_name", help="Only this file source (default: every source and feed of the partner).")
@click.option("--feed", "feed_name", type=click.Choice(list(settings.FEEDS)), help="Only this API feed.")
@click.pass_obj
def poll(state: State, partner: str, source_name: str | None, feed_name: str | None) -> None:
    """One pass over the partner's sources and API feeds: take complete files and new pages, apply each once."""
    config = state.settings()
    try:
        partner_settings = config.partner(partner)
        sources = [partner_settings.source(source_name)] if source_name else list(partner_settings.sources)
    except settings.ConfigError as exc:
        fail_config(exc)
    api = partner_settings.api
    if feed_name is not None and source_name is not None:
        raise click.UsageError("give --source or --feed, not both")
    if feed_name is not None and (api is None or feed_name not in api.feeds):
        fail_config(settings.ConfigError([f"partners.{partner}.api.feeds: the partner has no {feed_name} feed"]))
    if feed_name is not None:
        sources = []
    feeds = [] if api is None or source_name else [f for f in api.feeds if feed_name in (None, f)]
    worst = 0
    with state.app(partner) as app:
        for source in sources:
            try:
                picked = app.pickup.poll(partner, source)
            except TransportError as exc:
                echo(f"gateway: source {source.name}: {exc}", err=True)
                worst = EXIT_REFUSED
                continue
            for item in picked:
                line = f"{source.name}: {item.file}: {item.outcome}" + (f" ({item.detail})" if item.detail else "")
                echo(line, err=not item.ok)
                worst = worst if item.ok else EXIT_REFUSED
            if not picked:
                echo(f"{source.name}: nothing to take")
        for feed in feeds:
            worst = max(worst, _poll_feed(app, partner, feed))
    sys.exit(worst)


def _poll_feed(app: bootstrap.App, partner: str, feed: str) -> int:
    try:
        report = app.feeds.poll(partner, feed)
    except ApiConfigError as exc:
        echo(f"gateway: feed {feed}: {exc}", err=True)
        return EXIT_CONFIG
    except TransportError as exc:
        echo(f"gateway: feed {feed}: {exc}", err=True)
        return EXIT_REFUSED
    for page in report.pages:
        result = page.result
        if result.outcome != "empty":
            echo(f"api {feed}: {result.summary()}", err=result.outcome == "rejected")
    applied = sum(1 for p in report.pages if p.result.outcome == "applied")
    echo(f"api {feed}: {len(report.pages)} page(s), {applied} applied; cursor {report.cursor or '(start)'}")
    if report.error:
        echo(f"gateway: feed {feed}: {report.error}", err=True)
    return 0 if report.ok else EXIT_REFUSED


@cli.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Configuration file (or GATEWAY_CONFIG).")
@click.pass_context
def run(ctx: click.Context, config: str | None) -> None:
    """The worker: watch, poll and deliver for every partner until SIGTERM or SIGINT (SIGHUP reloads)."""
    from gateway import worker  # noqa: PLC0415 - the daemon's libraries load for `run` alone: commands start faster

    state: State = ctx.obj
    path = settings.config_path(config or state.config, os.environ) if (config or state.config) else None
    try:
        path = path or settings.config_path(None, os.environ)
        daemon = worker.Worker(path)
    except settings.ConfigError as exc:
        fail_config(exc)
    parent = ctx.parent.params if ctx.parent is not None else {}
    fmt: logs.LogFormat = "console" if parent.get("log_format") == "console" else "json"
    logs.configure(fmt, sys.stdout, parent.get("log_level") or "info", extra=[daemon.metrics.observe])
    try:
        code = daemon.run()
    except (StoreError, worker.WorkerError) as exc:  # another worker holds the store or the port; no store
        echo(f"gateway: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    if not daemon.finished:  # an item still in hand runs on a thread the interpreter would wait for: leave now,
        sys.stdout.flush()  # its transaction never commits
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@cli.command()
@click.option("--host", help="Listen here (default: [api] host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen on this port (default: [api] port).")
@click.pass_obj
def serve(state: State, host: str | None, port: int | None) -> None:
    """The platform HTTP API alone (it also runs inside `gateway run` when [api] enabled is true)."""
    from gateway import access, platform_api  # noqa: PLC0415 - the web framework loads for `serve` alone

    config = state.settings()
    try:
        tokens = access.Tokens.from_settings(config)
    except settings.ConfigError as exc:
        fail_config(exc)
    with state.app() as app:
        server = platform_api.server(app, tokens, host or config.api.host, config.api.port if port is None else port)
        # served from a thread, so SIGTERM and SIGINT are ours: a clean stop, exit 0
        thread = threading.Thread(target=server.run, name="platform-api", daemon=True)

        def stop(_number: int, _frame: object) -> None:
            server.should_exit = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        thread.start()
        while thread.is_alive() and not server.started:
            thread.join(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()
            logs.get(__name__).info("api_listening", host=bound[0], port=bound[1])
        while thread.is_alive():
            thread.join(0.5)
        if not server.started:
            echo("gateway: the platform API could not start (is its port taken?)", err=True)
            sys.exit(EXIT_CONFIG)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--health-url", help="The running worker's endpoint (default: from [worker] in the configuration).")
@click.pass_obj
def status(state: State, as_json: bool, health_url: str | None) -> None:
    """One screen: each source's last successful poll and error, the last hour's items, the outbox, dead letters."""
    config = state.settings()
    url = health_url or _health_url(config)
    worker_view: dict[str, Any] | None = None
    worker_error: str | None = None
    if url is None:
        worker_error = "the worker has no health endpoint ([worker] health_port)"
    else:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=3) as answer:  # noqa: S310 - a local http URL
                worker_view = json.loads(answer.read())
        except urllib.error.HTTPError as exc:  # 503: not ready, and the body says why
            worker_view = json.loads(exc.read() or b"{}")
        except (OSError, ValueError) as exc:
            worker_error = f"no worker answers at {url}: {exc}"
    summary = _status(state, config, worker_view, worker_error)
    if as_json:
        echo(json.dumps(summary))
        return
    _print_status(summary)


def _health_url(config: settings.Settings) -> str | None:
    if config.worker.health_port in (None, 0):
        return None
    host = config.worker.health_host
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{config.worker.health_port}"  # noqa: S104


def _status(
    state: State, config: settings.Settings, worker_view: dict[str, Any] | None, worker_error: str | None
) -> dict[str, Any]:
    partners: list[dict[str, Any]] = []
    with state.app() as app, app.store.read() as tx:
        now = app.clock()
        for name in config.partners:
            partner_id = tx.partner_id(name)
            counts = tx.outbox_counts(partner_id)
            pending = [c for c in counts if c.state == "pending"]
            oldest = min((c.oldest for c in pending), default=None)
            partners.append(
                {
                    "partner": name,
                    "last_hour": [
                        {"kind": k, "outcome": o, "items": n, "rows_applied": a, "rows_refused": r}
                        for k, o, n, a, r in tx.ledger_since(partner_id, now - 3_600_000_000)
                    ],
                    "outbox_depth": sum(c.count for c in pending),
                    "oldest_undelivered_seconds": None if oldest is None else round((now - oldest) / 1e6, 1),
                    "dead_letters": sum(c.count for c in counts if c.state == "dead"),
                }
            )
    return {
        "worker": {
            "reachable": worker_view is not None,
            "ready": bool(worker_view and worker_view.get("ready")),
            "error": worker_error,
            "problems": (worker_view or {}).get("problems", []),
        },
        "sources": (worker_view or {}).get("sources", []),
        "partners": partners,
    }


def _print_status(summary: dict[str, Any]) -> None:
    worker_state = summary["worker"]
    if not worker_state["reachable"]:
        echo(f"worker: not reachable ({worker_state['error']})")
    else:
        echo(f"worker: {'ready' if worker_state['ready'] else 'NOT READY'}")
        for problem in worker_state["problems"]:
            echo(f"  ! {problem}")
    if summary["sources"]:
        echo("")
        echo(f"{'partner':<14} {'source':<28} {'last successful poll':<28} last error")
    for source in summary["sources"]:
        error = source["last_error"] or ""
        echo(f"{source['partner']:<14} {source['source']:<28} {source['last_ok'] or 'never':<28} {error[:60]}")
    echo("")
    echo(f"{'partner':<14} {'applied (1h)':>12} {'refused (1h)':>12} {'outbox':>8} {'oldest (s)':>10} {'dead':>6}")
    for partner in summary["partners"]:
        applied = sum(x["items"] for x in partner["last_hour"] if x["outcome"] == "applied")
        refused = sum(x["items"] for x in partner["last_hour"] if x["outcome"] in ("rejected", "quarantined"))
        refused += sum(x["rows_refused"] for x in partner["last_hour"] if x["outcome"] == "applied")
        oldest = partner["oldest_undelivered_seconds"]
        echo(
            f"{partner['partner']:<14} {applied:>12} {refused:>12} {partner['outbox_depth']:>8} "
            f"{'-' if oldest is None else oldest:>10} {partner['dead_letters']:>6}"
        )


@cli.command()
@click.option("--partner", required=True)
@click.pass_obj
def deliver(state: State, partner: str) -> None:
    """One delivery pass: send what the outbox holds for the partner, batch by batch, and settle each batch."""
    with state.app(partner) as app:
        try:
            report = app.publisher.deliver(partner)
        except ApiConfigError as exc:
            echo(f"gateway: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
    echo(report.summary(), err=not report.ok)
    for kind, why in report.not_configured.items():
        echo(f"gateway: {kind}: not delivered: {why}", err=True)
    for kind in report.unrouted:
        echo(f"{kind}: waiting, but the partner has no route for it (configure api.deliver or export)")
    for error in report.errors[:5]:
        echo(f"  {error}", err=True)
    sys.exit(EXIT_CONFIG if report.not_configured else 0 if report.ok else EXIT_REFUSED)


def _why(record: OutboxRecord, routed: set[str], now: int) -> str:
    if record.state == "dead":
        return f"dead after {record.attempts} attempt(s): {record.last_error or 'no answer recorded'}"
    if record.kind not in routed:
        return "no route: the partner has no API delivery or export for this kind"
    if record.claimed_until is not None and record.claimed_until > now:
        return f"being sent (claimed until {instant.to_iso(record.claimed_until)})"
    if record.next_attempt_at is not None and record.next_attempt_at > now:
        when = instant.to_iso(record.next_attempt_at)
        return f"retry at {when} after {record.attempts} attempt(s): {record.last_error or 'no answer recorded'}"
    return "due now" if record.attempts == 0 else f"due now, {record.attempts} attempt(s) so far"


def _outbox_json(record: OutboxRecord, why: str) -> dict[str, object]:
    return {
        "id": record.id,
        "kind": record.kind,
        "key": record.key,
        "value": record.value,
        "state": record.state,
        "attempts": record.attempts,
        "created_at": instant.to_iso(record.created_at),
        "next_attempt_at": instant.to_iso(record.next_attempt_at),
        "last_status": record.last_status,
        "last_error": record.last_error,
        "batch_id": record.batch_id,
        "why": why,
    }


@cli.group(invoke_without_command=True)
@click.option("--partner", help="The partner (required without a sub-command).")
@click.option("--dead", is_flag=True, help="Dead letters instead of what is waiting.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Messages listed.")
@click.option("--json", "as_json", is_flag=True, help="A JSON object: counts by kind and state, and the messages.")
@click.pass_context
def outbox(ctx: click.Context, partner: str | None, dead: bool, limit: int, as_json: bool) -> None:
    """What waits for delivery to the partner and why (or, with --dead, what was given up on and why)."""
    if ctx.invoked_subcommand is not None:
        return
    if partner is None:
        raise click.UsageError("Missing option '--partner'.")
    state: State = ctx.obj
    with state.app(partner) as app, app.store.read() as tx:
        partner_id = tx.partner_id(partner)
        counts = tx.outbox_counts(partner_id)
        records = tx.outbox(partner_id, "dead" if dead else "pending", limit=limit)
        now = app.clock()
        routed = set(publish.routes(app.settings.partner(partner)))
    listed = [(record, _why(record, routed, now)) for record in records]
    if as_json:
        body = {
            "partner": partner,
            "counts": [
                {
                    "kind": c.kind,
                    "state": c.state,
                    "count": c.count,
                    "oldest": instant.to_iso(c.oldest),
                    "next_attempt_at": instant.to_iso(c.next_attempt_at),
                }
                for c in counts
            ],
            "messages": [_outbox_json(record, why) for record, why in listed],
        }
        echo(json.dumps(body))
        return
    if not counts:
        echo(f"{partner}: the outbox is empty")
    for c in counts:
        echo(f"{c.kind:<13} {c.state:<11} {c.count:>8}  oldest {instant.to_iso(c.oldest)}")
    if listed:
        echo("")
        echo(f"{'id':>8}  {'kind':<13} {'key':<30} {'value':>8}  why")
    for record, why in listed:
        value = "" if record.value is None else str(record.value)
        echo(f"{record.id:>8}  {record.kind:<13} {record.key[:30]:<30} {value:>8}  {why}")


@outbox.command("retry")
@click.option("--partner", required=True)
@click.option("--id", "ids", multiple=True, type=int, help="A dead message's id (repeatable).")
@click.option("--all-dead", is_flag=True, help="Every dead message of the partner.")
@click.pass_obj
def outbox_retry(state: State, partner: str, ids: tuple[int, ...], all_dead: bool) -> None:
    """Put dead messages back in the queue, due now (a value superseded by a newer one of its key is not)."""
    if bool(ids) == all_dead:
        raise click.UsageError("give --id N (repeatable) or --all-dead")
    with state.app(partner) as app, app.store.write() as tx:
        revived, superseded = tx.revive(tx.partner_id(partner), None if all_dead else list(ids), app.clock())
    logs.get(__name__).info("outbox_retry", partner=partner, revived=revived, superseded=superseded)
    echo(f"{partner}: {revived} message(s) queued again; {superseded} superseded by a newer value")
    if ids and revived + superseded < len(set(ids)):
        echo("gateway: some ids are not dead messages of this partner", err=True)
        sys.exit(EXIT_REFUSED)


@cli.group()
def cap() -> None:
    """Cap how many units of a SKU one collection of an assembly may take."""


@cap.command("set")
@click.option("--partner", required=True)
@click.option("--sku", required=True, type=IDENTIFIER)
@click.option("--assembly", required=True, type=IDENTIFIER)
@click.option("--collection", type=IDENTIFIER, help="Cap this collection only.")
@click.option("--all-collections", is_flag=True, help="Apply to all collections of the assembly, ongoing ones too.")
@click.option("--max", "limit", type=click.IntRange(min=0, max=999_999_999_999), help="The maximum of units.")
@click.option("--no-max", is_flag=True, help="No maximum (for one collection: only the overall stock counts).")
@click.pass_obj
def cap_set(
    state: State,
    partner: str,
    sku: str,
    assembly: str,
    collection: str | None,
    all_collections: bool,
    limit: int | None,
    no_max: bool,
) -> None:
    """Set a cap: --collection C or --all-collections, and --max N or --no-max."""
    if (collection is None) == (not all_collections):
        raise click.UsageError("give exactly one of --collection C and --all-collections")
    if (limit is None) == (not no_max):
        raise click.UsageError("give exactly one of --max N and --no-max")
    if collection is not None and "*" in collection:
        raise click.UsageError("a collection is named; use --all-collections for all of them")
    with state.app(partner) as app:
        _run_command(lambda: app.commands.set_cap(partner, sku, assembly, collection, limit))
    where = f"all collections of {assembly}" if collection is None else f"collection {collection} of {assembly}"
    echo(f"SKU {sku}, {where}: {'no maximum' if limit is None else f'at most {limit}'}")


@cap.command("show")
@click.option("--partner", required=True)
@click.option("--sku", type=IDENTIFIER)
@click.option("--assembly", type=IDENTIFIER)
@click.option(
    "--json", "as_json", is_flag=True, help="[{sku, assembly, collection, max}]; collection * is the default."
)
@click.pass_obj
def cap_show(state: State, partner: str, sku: str | None, assembly: str | None, as_json: bool) -> None:
    """List cap settings: each assembly's default (collection *) and each collection's own."""
    with state.app(partner) as app, app.store.read() as tx:
        rows = tx.cap_rows(tx.partner_id(partner), sku, assembly)
    if as_json:
        echo(
            json.dumps(
                [{"sku": r.sku, "assembly": r.assembly, "collection": r.collection, "max": r.max_units} for r in rows]
            )
        )
        return
    echo(f"{'sku':<24} {'assembly':<16} {'collection':<16} max")
    for r in rows:
        shown = "no maximum" if r.max_units is None else str(r.max_units)
        label = "* (all)" if r.collection == "*" else r.collection
        echo(f"{r.sku:<24} {r.assembly:<16} {label:<16} {shown}")


cli.add_command(cli_ledger.ledger)


def main() -> None:
    """Entry point of the `gateway` console script."""
    try:
        cli(prog_name="gateway")
    except StoreError as exc:  # the store is unreachable, locked beyond patience, or refused a write
        echo(f"gateway: the store: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
