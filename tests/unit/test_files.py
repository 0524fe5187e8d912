"""Local files written whole or not at all: temporary name, fsync, rename; nothing left behind on error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from gateway.files import STAGED_SUFFIX, atomic_file, place_copy, stage, write_atomically


def test_a_file_written_atomically_replaces_the_old_one_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The new bytes under the name, and nothing else in the folder."""
    target = tmp_path / "ats.csv"
    target.write_bytes(b"old")
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["ats.csv"]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    """An error half way: the file keeps its old bytes, the hidden .part is gone."""
    target = tmp_path / "ats.csv"
    target.write_bytes(b"old")

    def write_half() -> None:
        with atomic_file(target) as out:
            out.write(b"half")
            assert (tmp_path / ".ats.csv.part").exists()  # written under the hidden name meanwhile
            raise RuntimeError("cut")

    with pytest.raises(RuntimeError, match="cut"):
        write_half()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ats.csv"]


def test_a_staged_file_gets_a_fresh_name_in_a_folder_made_for_it(tmp_path: Path) -> None:
    """Staging makes its folder, and each copy has a name of its own."""
    staging = tmp_path / "var" / "staging"
    first = stage(staging, lambda out: out.write(b"one"))
    second = stage(staging, lambda out: out.write(b"one"))
    assert first != second
    assert (first.read_bytes(), first.parent, first.suffix) == (b"one", staging, STAGED_SUFFIX)
    assert sorted(p.name for p in staging.iterdir()) == sorted([first.name, second.name])


def test_a_staging_copy_that_fails_leaves_nothing_in_staging(tmp_path: Path) -> None:
    """A download cut half way: no staged file, no temporary file."""

    def cut(out: BinaryIO) -> None:
        out.write(b"half")
        raise OSError("connection lost")

    with pytest.raises(OSError, match="connection lost"):
        stage(tmp_path, cut)
    assert list(tmp_path.iterdir()) == []


def test_a_copy_placed_as_a_link_or_bytes_replaces_the_target_whole_and_takes_the_given_time(tmp_path: Path) -> None:
    """place_copy: a hard link of a file no one changes (same inode), else a copy of its bytes; an old file
    under the name replaced; the folder made; the modification time the one given; no temporary file left."""
    source = tmp_path / "a.staged"
    source.write_bytes(b"sku,quantity\nW1,10\n")
    linked, copied = tmp_path / "kept" / "1", tmp_path / "kept" / "2"
    place_copy(source, linked, link=True, mtime_ns=1_000_000_000_000_000_000)
    copied.write_bytes(b"an orphan")
    place_copy(source, copied, mtime_ns=2_000_000_000_000_000_000)
    assert linked.read_bytes() == copied.read_bytes() == source.read_bytes()
    assert linked.stat().st_ino == source.stat().st_ino
    assert copied.stat().st_ino != source.stat().st_ino
    assert (linked.stat().st_mtime_ns, copied.stat().st_mtime_ns) == (10**18, 2 * 10**18)
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["1", "2"]


def test_a_copy_that_cannot_be_linked_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another file system (the link refused): the bytes are copied instead."""
    source = tmp_path / "a.staged"
    source.write_bytes(b"data")

    def refuse(*_: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    place_copy(source, tmp_path / "kept" / "1", link=True)
    assert (tmp_path / "kept" / "1").read_bytes() == b"data"
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["1"]
