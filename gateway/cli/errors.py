"""How a command ends when it cannot do what it was asked: an exception carrying its message and its exit code
(as click's own ClickException does), raised where the command finds out and shown once by click.

Exit codes: 0 success, 1 refused or rejected, 2 usage or configuration error (click's own usage errors too).
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import click

from gateway.cli.terminal import echo

if TYPE_CHECKING:
    from gateway import settings

EXIT_REFUSED = 1
EXIT_CONFIG = 2


class Failed(click.ClickException):
    """The command failed: its lines go to stderr as given (each escaped for the terminal), and it exits 1."""

    exit_code = EXIT_REFUSED

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines

    def show(self, file: IO[str] | None = None) -> None:
        """Print the lines on stderr (or `file`)."""
        for line in self.lines:
            echo(line, err=True, file=file)


class Refused(Failed):
    """The rules or the store refused what was asked (exit 1): `gateway: refused: REASON`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"gateway: refused: {reason}")


class UsageProblem(Failed):
    """The command cannot run as configured or invoked (exit 2): the store, the port or a setting is wrong."""

    exit_code = EXIT_CONFIG


class ConfigProblems(UsageProblem):
    """The configuration has problems (exit 2): each listed on its own line, by key."""

    def __init__(self, error: settings.ConfigError) -> None:
        super().__init__("gateway: the configuration has problems:", *(f"  {problem}" for problem in error.problems))
