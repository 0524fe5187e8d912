"""The `gateway` command, one module per command group. Exit codes: 0 success, 1 refused or rejected, 2 usage or
configuration error (carried by the exceptions of `gateway.cli.errors`).

`gateway.cli:main` is the console script; `cli` is the root click group (for CliRunner).
"""

from __future__ import annotations

from gateway.cli.main import cli, main
from gateway.cli.render import ProgressLine

__all__ = ["ProgressLine", "cli", "main"]
