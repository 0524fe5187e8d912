"""A file is hashed while it is copied into staging, and ingest takes that digest instead of reading it again.

An inbound file is read twice on its way in: once copied into staging (hashed as the bytes are written), once
parsed. The sha256 the ledger records is still that of the file's bytes, for folder and SFTP sources alike
(over SFTP a big file arrives in many reads, in flight at once, and is hashed in offset order as it is written).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from gateway import bootstrap
from gateway.bootstrap import App
from gateway.formats.rows import Kind
from gateway.service import ingest
from gateway.settings import FolderSource, SftpSource
from gateway.transport.folder import FolderInbox
from gateway.transport.inbox import Entry, Inbox, Staged, stage_hashed
from gateway.transport.sftp_download import _REQUEST
from tests.conftest import FIXTURES, AppFactory
from tests.integration.conftest import Remote

P = "p"
BIG = 3 << 20  # 3 MiB: many SFTP reads (255 KiB each) and several 1 MiB copy blocks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stock_csv(count: int) -> bytes:
    return ("sku,quantity,as_of\n" + "".join(f"S{i:05d},{i % 7},2026-01-01T00:00:00Z\n" for i in range(count))).encode()


def folder_app(make_app: AppFactory, tmp_path: Path) -> tuple[App, FolderSource]:
    (tmp_path / "drop").mkdir()
    app = make_app(
        p={"stock_mode": "simple", "sources": [{"name": "in", "type": "folder", "kind": "stock", "path": "drop"}]}
    )
    [source] = app.settings.partner(P).sources
    assert isinstance(source, FolderSource)
    return app, source


def sftp_app(make_app: AppFactory, remote: Remote, **options: Any) -> tuple[App, SftpSource]:
    app = make_app(p={"stock_mode": "simple", "sources": [remote.source(name="in", **options)]})
    [source] = app.settings.partner(P).sources
    assert isinstance(source, SftpSource)
    return app, source


def entries_by_name(inbox: Inbox) -> dict[str, Entry]:
    return {entry.name: entry for entry in inbox.entries()}


def assert_staged(staged: Staged | Exception, data: bytes) -> None:
    """The staged file holds the source's bytes, and its digest is theirs, not merely the file's on disk now."""
    assert isinstance(staged, Staged), staged
    assert (staged.sha256, staged.size) == (sha256(data), len(data))
    assert staged.digest == (sha256(data), len(data))
    assert staged.path.read_bytes() == data


@pytest.fixture
def staged_opens(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every opening of a staged file through pathlib (file_digest's and the parser's way), recorded."""
    opened: list[Path] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.suffix == ".staged":
            opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    return opened


def test_a_staged_file_is_hashed_as_it_is_written(tmp_path: Path) -> None:
    """Written in pieces of any size: the digest is that of every byte, in the order written."""
    data = os.urandom(100_000)
    staged = stage_hashed(tmp_path, lambda out: [out.write(data[i : i + 4097]) for i in range(0, len(data), 4097)])
    assert_staged(staged, data)
    assert_staged(stage_hashed(tmp_path, lambda out: None), b"")


def test_a_folder_copy_is_hashed_while_it_is_staged(make_app: AppFactory, tmp_path: Path) -> None:
    """A 3 MiB file of random bytes (three copy blocks and a bit), alone and among others: sha256 of the source."""
    _, source = folder_app(make_app, tmp_path)
    big, small = os.urandom(BIG + 12_345), os.urandom(1_000)
    (tmp_path / "drop" / "big.csv").write_bytes(big)
    (tmp_path / "drop" / "small.csv").write_bytes(small)
    (tmp_path / "drop" / "empty.csv").write_bytes(b"")
    inbox = FolderInbox(source)
    listed = entries_by_name(inbox)
    staging = tmp_path / "staging"
    assert_staged(inbox.fetch(listed["big.csv"], staging), big)
    fetched = dict(inbox.fetch_many([listed["small.csv"], listed["big.csv"], listed["empty.csv"]], staging))
    assert_staged(fetched[listed["small.csv"]], small)
    assert_staged(fetched[listed["big.csv"]], big)
    assert_staged(fetched[listed["empty.csv"]], b"")


@pytest.mark.slow
def test_an_sftp_download_in_many_reads_is_hashed_in_offset_order_while_it_is_staged(
    sshd: Remote, make_app: AppFactory, tmp_path: Path
) -> None:
    """3 MiB of random bytes (a dozen reads in flight at once), alone and among small files fetched in a batch
    over parallel channels: each digest is the sha256 of the remote file's bytes."""
    assert BIG > 4 * _REQUEST
    _, source = sftp_app(make_app, sshd, download_workers=3)
    bodies = {"big.csv": os.urandom(BIG + 12_345), "empty.csv": b""}
    bodies |= {f"small-{i}.csv": os.urandom(1_000 + i) for i in range(5)}
    bodies["big-2.csv"] = os.urandom(_REQUEST * 2 + 1)
    for name, body in bodies.items():
        sshd.put(name, body)
    inbox = bootstrap.open_inbox(source)
    try:
        listed = entries_by_name(inbox)
        staging = tmp_path / "staging"
        assert_staged(inbox.fetch(listed["big.csv"], staging), bodies["big.csv"])
        fetched = list(inbox.fetch_many([listed[name] for name in sorted(bodies)], staging))
    finally:
        inbox.close()
    assert [entry.name for entry, _ in fetched] == sorted(bodies)
    for entry, staged in fetched:
        assert_staged(staged, bodies[entry.name])


def test_ingest_given_the_digest_does_not_read_the_file_to_hash_it(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest a caller hands over is the one recorded; without it (a file given on the command line) the
    file is hashed first, as before."""
    app = make_app(p={"stock_mode": "simple"})
    hashed: list[Path] = []
    real_digest = ingest.file_digest

    def counting_digest(path: Path) -> tuple[str, int]:
        hashed.append(path)
        return real_digest(path)

    monkeypatch.setattr(ingest, "file_digest", counting_digest)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(stock_csv(3))
    second.write_bytes(stock_csv(4))
    given = app.ingestor.ingest(P, Kind.STOCK, first, digest=(sha256(first.read_bytes()), first.stat().st_size))
    assert (given.outcome, given.sha256, given.size) == ("applied", sha256(first.read_bytes()), first.stat().st_size)
    assert hashed == []
    hashed_here = app.ingestor.ingest(P, Kind.STOCK, second)
    assert (hashed_here.outcome, hashed_here.sha256) == ("applied", sha256(second.read_bytes()))
    assert hashed == [second]


def test_a_folder_pickup_reads_each_staged_file_once_and_records_the_sha256_of_the_source(
    make_app: AppFactory, tmp_path: Path, staged_opens: list[Path]
) -> None:
    """The staged copy is opened once, to parse it; the ledger's sha256 is still that of the dropped bytes."""
    app, source = folder_app(make_app, tmp_path)
    dropped = {"a.csv": stock_csv(5), "b.csv": (FIXTURES / "stock" / "good.csv").read_bytes()}
    for name, data in dropped.items():
        (tmp_path / "drop" / name).write_bytes(data)
    picked = app.pickup.poll(P, source)
    assert sorted((item.file, item.outcome) for item in picked) == [("a.csv", "applied"), ("b.csv", "applied")]
    assert len(staged_opens) == len(set(staged_opens)) == 2
    with app.store.read() as tx:
        recorded = {record.source: (record.sha256, record.size) for record in tx.ledger.entries(tx.partners.id_of(P))}
    assert recorded == {f"in:{name}": (sha256(data), len(data)) for name, data in dropped.items()}


@pytest.mark.slow
def test_an_sftp_pickup_reads_each_staged_file_once_and_records_the_sha256_of_the_remote_file(
    sshd: Remote, make_app: AppFactory, staged_opens: list[Path]
) -> None:
    """A snapshot bigger than many SFTP reads: downloaded and hashed at once, parsed once, its sha256 recorded."""
    app, source = sftp_app(make_app, sshd)
    data = stock_csv(80_000)
    assert len(data) > 8 * _REQUEST
    sshd.put("big.csv", data)
    [picked] = app.pickup.poll(P, source)
    assert (picked.file, picked.outcome) == ("big.csv", "applied")
    assert len(staged_opens) == 1
    with app.store.read() as tx:
        [record] = tx.ledger.entries(tx.partners.id_of(P))
    assert (record.sha256, record.size) == (sha256(data), len(data))
