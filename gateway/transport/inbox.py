"""What every inbound file source offers, and the rules for knowing a listed file is complete.

A source lists entries, fetches one into a local staging file, and moves it aside (archive or failed) only
after the item it carried has committed. Errors of the outside system become TransportError (transport/errors.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from gateway.domain.identifiers import has_controls
from gateway.files import stage, write_atomically
from gateway.transport.errors import HostKeyRejected, TransportError

Completion = Literal["marker", "rename", "stable"]
TEMPORARY_SUFFIXES = (".tmp", ".part")
REPORT_SUFFIX = ".error.json"

__all__ = [  # with the names other modules import from here though they now live elsewhere
    "REPORT_SUFFIX",
    "TEMPORARY_SUFFIXES",
    "Completion",
    "Entry",
    "HashingWriter",
    "HostKeyRejected",
    "Inbox",
    "Staged",
    "TransportError",
    "candidates",
    "complete",
    "is_temporary",
    "name_problem",
    "refusal",
    "report_bytes",
    "safe_name",
    "shown_name",
    "stage_hashed",
    "takeable",
    "write_atomically",
]


@dataclass(frozen=True)
class Entry:
    """One listed file: its name inside the source folder, size, modification time (seconds) and link count.

    The name is as the system gave it: bytes that are not UTF-8 are kept as surrogate escapes (os.fsdecode's
    way), so the file can be opened and moved under its own name; `shown` is the same name as plain text.
    """

    name: str
    size: int
    mtime: float
    links: int = 1  # hard links to the file (1 where the server does not say)

    @property
    def shown(self) -> str:
        """The name as text for the ledger, logs and reports: undecodable bytes written as \\xe9."""
        return shown_name(self.name)

    @property
    def identity(self) -> str:
        """Name, size and time: a corrected upload under the same name is a new file."""
        return f"{self.shown}|{self.size}|{self.mtime:.6f}"


@dataclass(frozen=True)
class Staged:
    """A file copied into staging, with the sha256 (hex) and size of exactly the bytes written there.

    They are counted as the bytes go out, so ingest takes them from here instead of reading the file once more
    to hash it: the file is read twice on its way in (copied, parsed), not three times.
    """

    path: Path
    sha256: str
    size: int

    @property
    def digest(self) -> tuple[str, int]:
        """(sha256, size), as ingest takes them."""
        return self.sha256, self.size


class HashingWriter:
    """Writes to a staging file and hashes what it writes, in the order written."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write every byte of `data` (a buffered file raises rather than write part of it), then hash them."""
        self._out.write(data)
        self._sha256.update(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        """The sha256 of everything written so far."""
        return self._sha256.hexdigest()


def stage_hashed(staging: Path, write: Callable[[HashingWriter], object]) -> Staged:
    """files.stage, with the sha256 and size of the bytes `write` wrote, taken as they were written."""
    made: list[HashingWriter] = []  # the one writer, made inside stage() around its temporary file

    def hashing(out: BinaryIO) -> None:
        made.append(HashingWriter(out))
        write(made[0])

    path = stage(staging, hashing)
    return Staged(path, made[0].hexdigest(), made[0].size)


def shown_name(name: str) -> str:
    """A listed name as plain text: each byte that was not UTF-8 as a backslash escape (caf\\xe9-stock.csv)."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no decoding made: escape it as it is
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def is_temporary(name: str) -> bool:
    """Names a writer uses before renaming into place are never picked up: *.tmp, *.part, .*"""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def name_problem(name: str) -> str | None:
    """Why a listed name is never taken (one short phrase), or None: it must stay inside the folder (no '/', no
    Windows '\\', not '.' or '..') and hold no control character (the identifier rule's set)."""
    if not name or name in (".", ".."):
        return "not a file name"
    if "/" in name or "\\" in name:
        return "holds a path separator"
    if has_controls(name):
        return "holds control characters"
    return None


def safe_name(name: str) -> bool:
    """A name that stays inside the folder and holds no control character."""
    return name_problem(name) is None


def candidates(entries: Sequence[Entry], *, pattern: str, marker_suffix: str) -> list[Entry]:
    """Entries that look like files to take: not temporary, not markers or reports, matching the pattern."""
    return [
        entry
        for entry in entries
        if not is_temporary(entry.name)
        and not entry.name.endswith((marker_suffix, REPORT_SUFFIX))
        and fnmatch.fnmatchcase(entry.name, pattern)
    ]


def refusal(entry: Entry) -> tuple[str, str] | None:
    """Why a candidate is never taken as listed, as (log event, reason): its name, or hard links (another name
    reaches the same bytes, perhaps from outside the folder, as a symbolic link would)."""
    problem = name_problem(entry.name)
    if problem is not None:
        return "file_name_refused", f"the name {problem}"
    if entry.links > 1:
        return "file_link_refused", f"{entry.links} hard links reach the file (links are never taken)"
    return None


def takeable(entries: Sequence[Entry], *, pattern: str, marker_suffix: str) -> list[Entry]:
    """Entries that are files to take at all: candidates with a safe name and one link."""
    return [
        entry for entry in candidates(entries, pattern=pattern, marker_suffix=marker_suffix) if refusal(entry) is None
    ]


def complete(
    entries: Sequence[Entry],
    *,
    pattern: str,
    completion: Completion,
    marker_suffix: str,
    earlier: Mapping[str, Entry] | None,
) -> list[Entry]:
    """The entries ready to take, oldest first (by modification time, then name).

    marker: NAME+suffix is present. rename: any matching name that is not temporary. stable: the same size and
    time as at the earlier look. A zero-byte file is taken only when stable, whatever the mode.
    """
    names = {entry.name for entry in entries}
    ready = []
    for entry in takeable(entries, pattern=pattern, marker_suffix=marker_suffix):
        name = entry.name
        if completion == "marker" and name + marker_suffix not in names:
            continue
        before = (earlier or {}).get(name)
        # an empty file at either look may be one a writer has just opened: only a stable one is taken
        must_be_stable = completion == "stable" or entry.size == 0 or (before is not None and before.size == 0)
        if must_be_stable and (before is None or (before.size, before.mtime) != (entry.size, entry.mtime)):
            continue
        ready.append(entry)
    ready.sort(key=lambda e: (e.mtime, e.name))
    return ready


def report_bytes(report: Mapping[str, object]) -> bytes:
    """An error report as brand IT reads it: indented JSON."""
    return (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8")


class Inbox(Protocol):
    """A source of inbound files, open for one poll."""

    name: str

    def entries(self) -> list[Entry]:
        """Every regular file in the source folder (no folders, no links)."""
        ...

    def fetch(self, entry: Entry, staging: Path) -> Staged:
        """Copy the file into the staging folder (temporary name, fsync, rename), hashing the bytes as they are
        written; return the staged path with their sha256 and size."""
        ...

    def fetch_many(self, entries: Sequence[Entry], staging: Path) -> Iterator[tuple[Entry, Staged | TransportError]]:
        """Fetch several files (perhaps at once), yielded in the order given: each a staged file or an error."""
        ...

    def archive(self, entry: Entry, marker_suffix: str, report: Mapping[str, object] | None = None) -> None:
        """Move the file to archive/ (or delete it) and remove its done-marker; a report goes beside it."""
        ...

    def fail(self, entry: Entry, marker_suffix: str, report: Mapping[str, object]) -> None:
        """Move the file to failed/ with NAME.error.json beside it, and remove its done-marker."""
        ...

    def close(self) -> None:
        """Let go of connections."""
        ...
