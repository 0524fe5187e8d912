"""What a command's log lines look like, decided from the options and whether stderr is a terminal: a person at
a terminal reads console lines at level warning and each refusal once; a pipe, cron or CI gets JSON lines at info
with every event, as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import logs
from gateway.cli.log_output import PRINTED_BY_THE_COMMAND, LogChoice, choose
from tests.conftest import write_config
from tests.support import cli


@pytest.fixture(autouse=True)
def _logs_back_to_quiet() -> Iterator[None]:
    yield
    logs.configure("json", None, "error")


def test_a_terminal_gets_console_lines_at_warning_without_the_events_the_command_prints() -> None:
    """No option, stderr a terminal: console, warning, the refusal left to `gateway: refused: ...`."""
    assert choose(None, None, isatty=True, long_running=False) == LogChoice(
        "console", "warning", PRINTED_BY_THE_COMMAND
    )


def test_a_pipe_gets_json_lines_at_info_with_every_event() -> None:
    """No option, stderr not a terminal (the worker, cron, CI): JSON lines at info, nothing dropped."""
    assert choose(None, None, isatty=False, long_running=False) == LogChoice("json", "info", frozenset())


def test_log_format_forces_either_way() -> None:
    """--log-format json on a terminal keeps every event for machines; --log-format console in a pipe reads
    as on a terminal, the refusal once."""
    assert choose("json", None, isatty=True, long_running=False) == LogChoice("json", "warning", frozenset())
    assert choose("console", None, isatty=False, long_running=False).dropped == PRINTED_BY_THE_COMMAND


def test_log_level_forces_the_level() -> None:
    """--log-level info on a terminal shows the info events."""
    assert choose(None, "info", isatty=True, long_running=False).level == "info"


def test_the_long_running_commands_keep_info_and_every_event_on_a_terminal() -> None:
    """`run` and `serve`: console on a terminal, at info, every event (their events are their output)."""
    assert choose(None, None, isatty=True, long_running=True) == LogChoice("console", "info", frozenset())
    assert choose(None, None, isatty=False, long_running=True) == LogChoice("json", "info", frozenset())


def refused_order(tmp_path: Path, *options: str) -> tuple[str, list[str]]:
    """An order refused for want of stock, through `gateway OPTIONS order place` (stderr not a terminal): its
    stderr, and the events of its JSON lines."""
    config = str(write_config(tmp_path, {"shop": {"stock_mode": "simple"}}))
    assert (
        cli.run(["--config", config, "stock", "set", "--partner", "shop", "--sku", "A", "--quantity", "1"]).returncode
        == 0
    )
    done = cli.run(
        ["--config", config, *options, "order", "place", "--partner", "shop", "--order-id", "O", "--line", "A:2"]
    )
    assert done.returncode == 1
    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.startswith("{")]
    return done.stderr, events


def test_piped_the_refusal_is_a_json_event_and_the_printed_line_as_before(tmp_path: Path) -> None:
    """Operators' greppable command_refused event stays when stderr is not a terminal."""
    stderr, events = refused_order(tmp_path)
    assert events == ["command_refused"]
    assert stderr.count("gateway: refused: order O refused") == 1


def test_console_format_forced_in_a_pipe_prints_the_refusal_once(tmp_path: Path) -> None:
    """--log-format console: the refusal reads once, no log line repeats it."""
    stderr, events = refused_order(tmp_path, "--log-format", "console")
    assert events == []
    assert "command_refused" not in stderr
    assert stderr.count("order O refused") == 1
