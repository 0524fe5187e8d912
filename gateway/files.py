"""Local files written so that a crash leaves the old file or the new one, never half of one.

Every such write goes the same way: under a hidden temporary name in the same folder, flushed and fsynced, then
renamed into place (a rename within one file system is atomic); on any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

STAGED_SUFFIX = ".staged"


@contextlib.contextmanager
def atomic_file(path: Path, *, temporary: Path | None = None, sync_folder: bool = True) -> Iterator[BinaryIO]:
    """A file to write that appears as `path` only whole: written as `temporary` (default `.NAME.part` beside
    it), fsynced and renamed into place when the block ends; removed, `path` untouched, when the block raises.

    `sync_folder` also fsyncs the folder, so the rename itself survives a power cut; a file that can be made
    again (a staging copy: its source is moved aside only once the item has committed) may go without it.
    """
    temporary = path.with_name(f".{path.name}.part") if temporary is None else temporary
    try:
        with temporary.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        if sync_folder:
            _sync_folder(path.parent)  # the rename itself survives a power cut
    except BaseException:
        temporary.unlink(missing_ok=True)  # no half file left behind
        raise


def write_atomically(path: Path, data: bytes) -> None:
    """Write under a temporary name, fsync, then rename into place."""
    with atomic_file(path) as out:
        out.write(data)


def stage(staging: Path, write: Callable[[BinaryIO], None]) -> Path:
    """A new file in the staging folder (made if missing), written by `write` under a temporary name, fsynced,
    renamed to a fresh `<uuid>.staged`; nothing left on error. Its folder is not fsynced: a staging copy lost
    at a power cut is fetched again, as its source has not been moved."""
    staging.mkdir(parents=True, exist_ok=True)
    final = staging / f"{uuid.uuid4().hex}{STAGED_SUFFIX}"
    with atomic_file(final, temporary=staging / f".{uuid.uuid4().hex}.part", sync_folder=False) as out:
        write(out)
    return final


def place_copy(source: Path, target: Path, *, link: bool = False, mtime_ns: int | None = None) -> None:
    """`source`'s bytes as `target` (its folder made if missing), whole or not at all, replacing what was there.

    `link` makes it a hard link instead of a copy, for a file nobody changes after it is written (a staging copy):
    no byte is read or written again; where a link cannot be made (another file system) the bytes are copied.
    `mtime_ns` stamps the result (a kept copy's age is counted by the gateway's clock, not the file system's)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    linked = False
    if link:
        try:
            os.link(source, temporary)
            linked = True
        except OSError:
            temporary.unlink(missing_ok=True)
    if linked:
        try:
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _sync_folder(target.parent)
    else:
        with source.open("rb") as stream, atomic_file(target, temporary=temporary) as out:
            while block := stream.read(1 << 20):
                out.write(block)
    if mtime_ns is not None:
        os.utime(target, ns=(mtime_ns, mtime_ns))


def _sync_folder(folder: Path) -> None:
    """fsync a folder: a rename or a link in it survives a power cut."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
