"""Where a command's log lines go and in what shape: the decision, a pure function of the options given and of
whether the stream is a terminal.

On a terminal a person reads: the console format, at level `warning` (a question's answer is not preceded by its
info events), and without the events whose substance the command prints itself (a refusal: `gateway: refused:
...`, said once). Elsewhere (the worker under systemd, cron, CI, a pipe) JSON lines at level `info`, every event
kept, as operators grep them. `--log-format` and `--log-level` force either. The long-running commands (`run`,
`serve`) keep level `info` and every event even on a terminal: their events are what they have to say.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.logs import LogFormat

# events whose substance the command line prints itself, on stderr: shown once, by the command, to a person
PRINTED_BY_THE_COMMAND = frozenset({"command_refused"})
LONG_RUNNING = frozenset({"run", "serve"})


@dataclass(frozen=True)
class LogChoice:
    """The format, the level and the events left out of a command's log lines."""

    fmt: LogFormat
    level: str
    dropped: frozenset[str]


def choose(log_format: str | None, log_level: str | None, *, isatty: bool, long_running: bool) -> LogChoice:
    """The log lines of a command given `--log-format` and `--log-level` (None when not given), writing to a
    terminal or not (`isatty`), and being `run` or `serve` (`long_running`)."""
    wanted = log_format or ("console" if isatty else "json")
    fmt: LogFormat = "console" if wanted == "console" else "json"
    level = log_level or ("warning" if isatty and not long_running else "info")
    people = fmt == "console" and not long_running
    return LogChoice(fmt, level, PRINTED_BY_THE_COMMAND if people else frozenset())
