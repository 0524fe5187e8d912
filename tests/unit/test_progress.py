"""The progress line of a long ingest: on a terminal only, and never with --quiet."""

from __future__ import annotations

import io

from gateway.cli import ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_rows_read_and_rows_per_second() -> None:
    """One self-rewriting line, closed with a newline."""
    screen = Terminal()
    progress = ProgressLine(screen, "big.csv", enabled=True)
    progress(20_000)
    progress(40_000)
    progress.close()
    text = screen.getvalue()
    assert text.count("\r") == 2
    assert "big.csv: 40,000 rows read" in text
    assert "rows/s" in text
    assert text.endswith("\n")


def test_nothing_is_shown_when_the_stream_is_not_a_terminal() -> None:
    """Logs collected from a pipe stay clean."""
    pipe = io.StringIO()
    progress = ProgressLine(pipe, "big.csv", enabled=True)
    progress(20_000)
    progress.close()
    assert pipe.getvalue() == ""


def test_quiet_turns_it_off_even_on_a_terminal() -> None:
    """--quiet: no progress line."""
    screen = Terminal()
    progress = ProgressLine(screen, "big.csv", enabled=False)
    progress(20_000)
    progress.close()
    assert screen.getvalue() == ""


def test_a_file_name_with_control_characters_is_shown_escaped() -> None:
    """The name can neither clear the screen nor rewrite the line: only the progress line's own \\r is sent."""
    screen = Terminal()
    progress = ProgressLine(screen, "big\x1b[2J\r.csv", enabled=True)
    progress(20_000)
    progress.close()
    text = screen.getvalue()
    assert "big\\x1b[2J\\x0d.csv: 20,000 rows read" in text
    assert "\x1b" not in text
    assert text.count("\r") == 1
