"""The `gateway` command. Exit codes: 0 success, 1 refused or rejected, 2 usage or configuration error."""

from __future__ import annotations

from gateway.cli.main import ProgressLine, cli, main

__all__ = ["ProgressLine", "cli", "main"]
