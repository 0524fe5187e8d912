"""A bundle's manifest: a small CSV (`kind,file`) listing the files of one partner that apply together, in order.

A manifest names each member by a path relative to the manifest's own folder and gives its kind (a flat file's
kind: a bundle never holds another bundle). A path that could leave that folder (absolute, a drive, `..`, a
backslash) or names nothing (empty, `.`), a kind that is unknown, a member given twice, or no member at all are
problems with their line numbers: the manifest is refused whole, as a malformed file is. Whether each member
exists is for the caller, who knows where the folder is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Final

from gateway.domain.identifiers import has_controls
from gateway.formats.csvfile import CsvOptions, CsvTable
from gateway.formats.problems import Malformed, Problem, Problems
from gateway.formats.rows import Kind

BUNDLE: Final = "bundle"  # the word of a bundle: the ledger's kind, a source's kind
COLUMNS = ("kind", "file")
MAX_MEMBERS = 100  # a bundle is a few files applied together, not an archive


@dataclass(frozen=True)
class ManifestEntry:
    """One member as the manifest lists it: its line, its kind and its path relative to the manifest's folder."""

    line: int
    kind: Kind
    file: PurePosixPath

    @property
    def name(self) -> str:
        """The path as the manifest gives it (with `/` between folders)."""
        return str(self.file)


def path_problem(text: str) -> str | None:
    """Why `text` is no member path inside the manifest's folder (one short phrase), or None."""
    parts = text.split("/")
    checks = (
        (has_controls(text), "holds control characters"),
        ("\\" in text, "holds a backslash: use / between folders"),
        (text.startswith("/") or text[1:2] == ":", "is absolute: give a path relative to the manifest's folder"),
        (".." in parts, "leaves the manifest's folder (..)"),
        (text.endswith("/") or all(part in ("", ".") for part in parts), "names no file"),
    )
    return next((why for failed, why in checks if failed), None)


def read_manifest(stream: BinaryIO, problems: Problems) -> list[ManifestEntry]:
    """The members a manifest lists, in order; every problem is added to `problems` with its line (the caller
    refuses the manifest when there is any, and uses none of the entries)."""
    try:
        table = CsvTable(stream, CsvOptions(), COLUMNS, (), problems)
    except Malformed as exc:
        problems.add(exc.problem)
        return []
    kinds = {kind.value: kind for kind in Kind}
    entries: list[ManifestEntry] = []
    first: dict[PurePosixPath, int] = {}
    for line, row in table:
        kind_text, file_text = row[table.index["kind"]].strip(), row[table.index["file"]].strip()
        kind = kinds.get(kind_text.lower())
        if kind is None:
            if kind_text.lower() == BUNDLE:
                problems.add(Problem(line, "a bundle may not contain another bundle", "kind"))
            else:
                known = ", ".join(kinds)
                problems.add(Problem(line, f"unknown kind {kind_text!r} (one of: {known})", "kind"))
        why = path_problem(file_text)
        if why is not None:
            problems.add(Problem(line, f"the path {file_text!r} {why}", "file"))
            continue
        path = PurePosixPath(file_text)
        earlier = first.setdefault(path, line)
        if earlier != line:
            problems.add(Problem(line, f"{file_text} is listed again (first at line {earlier})", "file"))
            continue
        if kind is not None:
            entries.append(ManifestEntry(line, kind, path))
    if not problems and not entries:
        problems.add(Problem(None, "the manifest lists no member"))
    if len(entries) > MAX_MEMBERS:
        problems.add(Problem(None, f"the manifest lists {len(entries)} members; a bundle holds at most {MAX_MEMBERS}"))
    return entries
