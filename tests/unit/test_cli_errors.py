"""A command ends by raising an exception that carries its message and its exit code: refused 1, usage or
configuration 2, each line shown escaped on stderr."""

from __future__ import annotations

import click
from click.testing import CliRunner

from gateway import settings
from gateway.cli.errors import ConfigProblems, Failed, Refused, UsageProblem


def ended_by(error: click.ClickException) -> tuple[int, str, str]:
    @click.command()
    def command() -> None:
        raise error

    result = CliRunner().invoke(command, [])
    return result.exit_code, result.stdout, result.stderr


def test_a_refusal_exits_1_with_its_reason() -> None:
    """`gateway: refused: REASON` on stderr, nothing on stdout."""
    assert ended_by(Refused("no such order")) == (1, "", "gateway: refused: no such order\n")


def test_a_usage_problem_exits_2_with_its_lines_as_given() -> None:
    """The store, the port or a setting: exit 2."""
    assert ended_by(UsageProblem("gateway: cannot open the store: locked")) == (
        2,
        "",
        "gateway: cannot open the store: locked\n",
    )


def test_configuration_problems_are_listed_one_per_line() -> None:
    """Each problem by key, indented under one heading."""
    code, _, err = ended_by(ConfigProblems(settings.ConfigError(["store.url: missing", "partners: none"])))
    assert code == 2
    assert err == "gateway: the configuration has problems:\n  store.url: missing\n  partners: none\n"


def test_every_line_is_escaped_for_the_terminal() -> None:
    """A control character in a message is shown as an escape, never sent raw."""
    assert ended_by(Failed("gateway: file a\x1b[2Jb", "  next")) == (1, "", "gateway: file a\\x1b[2Jb\n  next\n")
