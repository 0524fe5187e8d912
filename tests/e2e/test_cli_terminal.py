"""At a terminal, a refusal reads once: `gateway: refused: ...` and no log line repeating it, no JSON. A real
process on a pseudo-terminal (the stdlib's pty), since only a process can tell it is talking to one."""

from __future__ import annotations

import errno
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_config
from tests.support import cli


def on_a_terminal(args: list[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run `python -m gateway ARGS` with stdin, stdout and stderr on a pseudo-terminal: exit code and all it wrote."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(controller, 4096)
            except OSError as exc:  # Linux: EIO once the process has exited and the terminal is closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_a_refusal_at_a_terminal_is_printed_once_and_no_json_line(tmp_path: Path) -> None:
    """An order beyond the stock, asked at a terminal: exit 1, the one-line refusal, once, nothing else."""
    config = str(write_config(tmp_path, {"shop": {"stock_mode": "simple"}}))
    assert (
        cli.run(["--config", config, "stock", "set", "--partner", "shop", "--sku", "A", "--quantity", "1"]).returncode
        == 0
    )
    code, shown = on_a_terminal(
        ["--config", config, "order", "place", "--partner", "shop", "--order-id", "O", "--line", "A:2"]
    )
    assert code == 1
    assert shown.splitlines() == [
        "gateway: refused: order O refused, not enough available to sell: SKU A wants 2, 1 available"
    ]
