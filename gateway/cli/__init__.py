"""The `gateway` command, one module per command group. Exit codes: 0 success, 1 refused or rejected, 2 usage or
configuration error (carried by the exceptions of `gateway.cli.errors`).

`gateway.cli:main` is the console script; `cli` is the root click group (for CliRunner). A command's module is
imported when that command runs (gateway.cli.commands), so a question does not load the worker's libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cli.main import cli, main

if TYPE_CHECKING:
    from gateway.cli.render import ProgressLine

__all__ = ["ProgressLine", "cli", "main"]


def __getattr__(name: str) -> object:
    """`ProgressLine`, from gateway.cli.render, imported on first use (it brings the engine's modules)."""
    if name == "ProgressLine":
        from gateway.cli.render import ProgressLine  # noqa: PLC0415 - see the docstring

        return ProgressLine
    raise AttributeError(name)
