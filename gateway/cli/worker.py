"""The worker's work by hand and the worker itself: `gateway poll` and `gateway deliver` (one pass each),
`gateway run` (the daemon) and `gateway serve` (the platform HTTP API alone)."""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from gateway import bootstrap, logs, settings
from gateway.cli.errors import EXIT_CONFIG, EXIT_REFUSED, ConfigProblems, UsageProblem
from gateway.cli.log_output import choose
from gateway.cli.state import State
from gateway.cli.terminal import echo
from gateway.domain.outcomes import Outcome
from gateway.store.port import StoreError
from gateway.transport.http import ApiConfigError
from gateway.transport.inbox import TransportError


@click.command()
@click.option("--partner", required=True)
@click.option("--source", "source_name", help="Only this file source (default: every source and feed of the partner).")
@click.option("--feed", "feed_name", type=click.Choice([f.value for f in settings.FEEDS]), help="Only this API feed.")
@click.pass_obj
def poll(state: State, partner: str, source_name: str | None, feed_name: str | None) -> None:
    """One pass over the partner's sources and API feeds: take complete files and new pages, apply each once."""
    config = state.settings()
    try:
        partner_settings = config.partner(partner)
        sources = [partner_settings.source(source_name)] if source_name else list(partner_settings.sources)
    except settings.ConfigError as exc:
        raise ConfigProblems(exc) from exc
    api = partner_settings.api
    if feed_name is not None and source_name is not None:
        raise click.UsageError("give --source or --feed, not both")
    if feed_name is not None and (api is None or feed_name not in api.feeds):
        raise ConfigProblems(
            settings.ConfigError([f"partners.{partner}.api.feeds: the partner has no {feed_name} feed"])
        )
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
    raise click.exceptions.Exit(worst)


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
        if result.outcome != Outcome.EMPTY:
            echo(f"api {feed}: {result.summary()}", err=result.outcome == Outcome.REJECTED)
    applied = sum(1 for p in report.pages if p.result.outcome == Outcome.APPLIED)
    echo(f"api {feed}: {len(report.pages)} page(s), {applied} applied; cursor {report.cursor or '(start)'}")
    if report.error:
        echo(f"gateway: feed {feed}: {report.error}", err=True)
    return 0 if report.ok else EXIT_REFUSED


@click.command()
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
        raise ConfigProblems(exc) from exc
    parent = ctx.parent.params if ctx.parent is not None else {}
    # the worker's events go to stdout: JSON lines unless it is a terminal (or --log-format says), level info
    chosen = choose(parent.get("log_format"), parent.get("log_level"), isatty=sys.stdout.isatty(), long_running=True)
    logs.configure(chosen.fmt, sys.stdout, chosen.level, extra=[daemon.metrics.observe])
    try:
        code = daemon.run()
    except (StoreError, worker.WorkerError) as exc:  # another worker holds the store or the port; no store
        raise UsageProblem(f"gateway: {exc}") from exc
    if not daemon.finished:  # an item still in hand runs on a thread the interpreter would wait for: leave now,
        sys.stdout.flush()  # its transaction never commits
        sys.stderr.flush()
        os._exit(code)
    raise click.exceptions.Exit(code)


@click.command()
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
        raise ConfigProblems(exc) from exc
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
            raise UsageProblem("gateway: the platform API could not start (is its port taken?)")


@click.command()
@click.option("--partner", required=True)
@click.pass_obj
def deliver(state: State, partner: str) -> None:
    """One delivery pass: send what the outbox holds for the partner, batch by batch, and settle each batch."""
    with state.app(partner) as app:
        try:
            report = app.publisher.deliver(partner)
        except ApiConfigError as exc:
            raise UsageProblem(f"gateway: {exc}") from exc
    echo(report.summary(), err=not report.ok)
    for kind, why in report.not_configured.items():
        echo(f"gateway: {kind}: not delivered: {why}", err=True)
    for kind in report.unrouted:
        echo(f"{kind}: waiting, but the partner has no route for it (configure api.deliver or export)")
    for error in report.errors[:5]:
        echo(f"  {error}", err=True)
    raise click.exceptions.Exit(EXIT_CONFIG if report.not_configured else 0 if report.ok else EXIT_REFUSED)
