"""Every command of `gateway`, by name: where it lives and its one-line help, so that a command's module (and
the libraries it needs) is imported only when that command runs, while `gateway --help` still lists them all.

tests/unit/test_cli_commands.py checks that each one-line help here is the command's own (its docstring's first
sentence), so the table cannot drift from the commands.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from click.formatting import HelpFormatter

from gateway.cli.loading import imported
from gateway.cli.terminal import SafeGroup


@dataclass(frozen=True)
class Entry:
    """A command: `module:attribute` of its click command, and its short help as `gateway --help` shows it."""

    target: str
    short_help: str


COMMANDS: dict[str, Entry] = {
    "ats": Entry(
        "gateway.cli.ats:ats",
        "Show available-to-sell (published values: never negative), per SKU or per collection of an assembly.",
    ),
    "cap": Entry("gateway.cli.caps:cap", "Cap how many units of a SKU one collection of an assembly may take."),
    "check-config": Entry(
        "gateway.cli.config:check_config",
        "Validate the configuration; list every problem by key (exit 2) or say it is fine.",
    ),
    "collection": Entry(
        "gateway.cli.collections:collection",
        "Date a collection: when it takes orders and when its lines are picked up.",
    ),
    "deliver": Entry(
        "gateway.cli.worker:deliver",
        "One delivery pass: send what the outbox holds for the partner, batch by batch, and settle each batch.",
    ),
    "ingest": Entry(
        "gateway.cli.ingest:ingest",
        "Apply flat files (--kind K FILES...), each in one transaction, or a bundle (--bundle MANIFEST); a "
        "duplicate of an applied file or bundle is a no-op, unless --force (files only).",
    ),
    "ledger": Entry(
        "gateway.cli.ledger:ledger",
        "What was received and what became of it: applied, duplicate, rejected, quarantined, released.",
    ),
    "order": Entry(
        "gateway.cli.orders:order",
        "Place orders, move their status, record confirmations; show one order, list orders.",
    ),
    "outbox": Entry(
        "gateway.cli.outbox:outbox",
        "What waits for delivery to the partner and why (or, with --dead, what was given up on and why).",
    ),
    "poll": Entry(
        "gateway.cli.worker:poll",
        "One pass over the partner's sources and API feeds: take complete files and new pages, apply each once.",
    ),
    "purge": Entry(
        "gateway.cli.purge:purge",
        "Remove what [retention] no longer keeps (what `gateway run` does daily).",
    ),
    "run": Entry(
        "gateway.cli.worker:run",
        "The worker: watch, poll and deliver for every partner until SIGTERM or SIGINT (SIGHUP reloads).",
    ),
    "serve": Entry(
        "gateway.cli.worker:serve",
        "The platform HTTP API alone (it also runs inside `gateway run` when [api] enabled is true).",
    ),
    "status": Entry(
        "gateway.cli.status:status",
        "One screen: each source's last successful poll and error, the last hour's items, the outbox, dead letters.",
    ),
    "stock": Entry("gateway.cli.stock:stock", "Set stock levels by hand."),
}


def load(name: str) -> click.Command:
    """The click command `name` of COMMANDS, its module imported now."""
    module, _, attribute = COMMANDS[name].target.partition(":")
    command = getattr(imported(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name].target} is not a click command")
    return command


class LazyGroup(SafeGroup):
    """The root group: its commands are COMMANDS, each imported on first use (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, nothing imported."""
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command `cmd_name`, its module imported the first time it is asked for."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: HelpFormatter) -> None:
        """The Commands section of --help from COMMANDS' short helps, cut as click cuts them, nothing imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _stand_in(name, self.commands.get(name)).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _stand_in(name: str, loaded: click.Command | None) -> click.Command:
    """The command as --help needs it: the one added by hand, or a stand-in holding COMMANDS' short help (cut
    by click's own rule, as the command's docstring would be)."""
    if loaded is not None and name not in COMMANDS:
        return loaded
    return click.Command(name, help=COMMANDS[name].short_help)
