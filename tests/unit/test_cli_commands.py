"""`gateway --help` lists every command from a table (gateway.cli.commands), so that no command's module is imported
to list it: the table must say what the commands themselves say."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.cli.commands import COMMANDS, load


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_of_the_table_is_the_command_of_that_name_with_its_own_short_help(name: str) -> None:
    """The target imports a click command named as its entry, whose first sentence is the entry's short help."""
    command = load(name)
    assert command.name == name
    assert command.get_short_help_str(limit=10_000) == COMMANDS[name].short_help


@pytest.mark.parametrize("width", [30, 60, 80, 200])
def test_help_is_what_click_shows_from_the_commands_themselves(width: int) -> None:
    """At any terminal width, `gateway --help` reads as the help of a group holding every command, imported."""
    eager = click.Group(cli.name, params=cli.params, help=cli.help, commands={name: load(name) for name in COMMANDS})
    names = ["-h", "--help"]  # as the command's context settings say
    lazy_help = cli.get_help(click.Context(cli, info_name="gateway", terminal_width=width, help_option_names=names))
    eager_help = eager.get_help(
        click.Context(eager, info_name="gateway", terminal_width=width, help_option_names=names)
    )
    assert lazy_help == eager_help


def test_help_lists_every_command_and_only_those_of_the_table() -> None:
    """Every command of the table, no other."""
    result = CliRunner().invoke(cli, ["--help"], prog_name="gateway")
    section = result.stdout.split("Commands:\n", 1)[1]
    names = [line.split()[0] for line in section.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert names == sorted(COMMANDS)
