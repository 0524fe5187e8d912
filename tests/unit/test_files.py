"""Local files written whole or not at all: temporary name, fsync, rename; nothing left behind on error."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pytest

from gateway.files import STAGED_SUFFIX, atomic_file, stage, write_atomically


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
