"""The root of the `gateway` command: the top-level options, every command group, and `main()`."""

from __future__ import annotations

import sys

import click

from gateway import logs
from gateway.cli import ats, caps, config, ingest, ledger, orders, outbox, purge, status, stock, worker
from gateway.cli.errors import EXIT_REFUSED
from gateway.cli.state import State
from gateway.cli.terminal import SafeGroup, echo
from gateway.store.port import StoreError


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


for command in (
    config.check_config,
    ingest.ingest,
    ats.ats,
    orders.order,
    stock.stock,
    worker.poll,
    worker.run,
    worker.serve,
    status.status,
    worker.deliver,
    outbox.outbox,
    caps.cap,
    ledger.ledger,
    purge.purge,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the `gateway` console script."""
    try:
        cli(prog_name="gateway")
    except StoreError as exc:  # the store is unreachable, locked beyond patience, or refused a write
        echo(f"gateway: the store: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
