"""The root of the `gateway` command: the top-level options, every command group (imported as it runs, see
gateway.cli.commands), and `main()`."""

from __future__ import annotations

import sys

import click

from gateway import logs
from gateway.cli.commands import LazyGroup
from gateway.cli.errors import EXIT_REFUSED
from gateway.cli.loading import collector_paused, leaving
from gateway.cli.log_output import LONG_RUNNING, choose
from gateway.cli.terminal import echo
from gateway.store.errors import StoreError


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Configuration file (or GATEWAY_CONFIG).")
@click.option(
    "--log-format",
    type=click.Choice(["json", "console"]),
    help="Log lines on stderr [default: console on a terminal, json otherwise].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="[default: warning on a terminal, info otherwise and for run and serve].",
)
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.version_option(package_name="stock-gateway")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_format: str | None, log_level: str | None, quiet: bool) -> None:
    """stock-gateway: take in partners' stock files, apply them, publish available-to-sell."""
    long_running = ctx.invoked_subcommand in LONG_RUNNING
    chosen = choose(log_format, log_level, isatty=sys.stderr.isatty(), long_running=long_running)
    logs.configure(chosen.fmt, sys.stderr, chosen.level, extra=[logs.Without(chosen.dropped)] if chosen.dropped else [])
    with collector_paused():  # the settings' models load for a command, not for --version (gateway.cli.loading)
        from gateway.cli.state import State  # noqa: PLC0415

    ctx.obj = State(config, quiet)


def main() -> None:
    """Entry point of the `gateway` console script."""
    try:
        cli(prog_name="gateway")
    except StoreError as exc:  # the store is unreachable, locked beyond patience, or refused a write
        echo(f"gateway: the store: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    finally:
        leaving()
