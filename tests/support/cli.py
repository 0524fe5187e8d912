"""The `gateway` command run in-process with click's CliRunner, answering like a finished process.

Most command-line tests check exit codes and output, which an in-process run shows just as well at a fraction of
a process start's cost; the tests about processes themselves (signals, the environment, log lines on a real
stderr, no terminal) still start `python -m gateway`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from click.testing import CliRunner

from gateway import cli
from gateway.store.port import StoreError


def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS` as `main()` runs it (a store error: its message and exit 1), without GATEWAY_* variables."""
    unset: dict[str, str | None] = {name: None for name in os.environ if name.startswith("GATEWAY_")}
    result = CliRunner().invoke(cli.cli, list(args), env=unset, prog_name="gateway")
    code, stderr = result.exit_code, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        if not isinstance(result.exception, StoreError):
            raise result.exception  # a crash: a process would print a traceback, the test shows it
        code, stderr = 1, stderr + f"gateway: the store: {result.exception}\n"
    return subprocess.CompletedProcess(["gateway", *args], code, result.stdout, stderr)
