"""Fixtures of integration tests that need outside systems: a real OpenSSH sshd on 127.0.0.1."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.support import sshd as sshd_support


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd_support.Sshd]:
    """One sshd for the session (stopped at its end); tests use their own remote folders."""
    with sshd_support.running(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@dataclass
class Remote:
    """A fresh folder on the test sshd, a client of it for the test's own uploads, and a source config for it."""

    server: sshd_support.Sshd
    path: Path
    sftp: Any  # paramiko.SFTPClient

    def source(self, **options: Any) -> dict[str, Any]:
        """A `[[partners.P.sources]]` table reading this folder (options override the defaults)."""
        return {
            "type": "sftp",
            "kind": "stock",
            "host": self.server.host,
            "port": self.server.port,
            "username": self.server.user,
            "private_key_file": str(self.server.user_key),
            "known_hosts": str(self.server.known_hosts),
            "remote_path": str(self.path),
            "connect_timeout": 5.0,
            "channel_timeout": 10.0,
        } | options

    def remote(self, name: str) -> str:
        return posixpath.join(str(self.path), name)

    def put(self, name: str, data: bytes | str, mtime: int | None = None) -> None:
        """Upload `data` as `name` (mtime: set the modification time afterwards)."""
        body = data.encode("utf-8") if isinstance(data, str) else data
        with self.sftp.open(self.remote(name), "wb") as out:
            out.set_pipelined(True)
            out.write(body)
        if mtime is not None:
            self.sftp.utime(self.remote(name), (mtime, mtime))

    def rename(self, old: str, new: str) -> None:
        self.sftp.posix_rename(self.remote(old), self.remote(new))

    def names(self, sub_folder: str | None = None) -> list[str]:
        """Sorted names in the folder (or one of its sub-folders), seen on disk: no connection needed."""
        folder = self.path / sub_folder if sub_folder else self.path
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def sshd(sshd_server: sshd_support.Sshd) -> Iterator[Remote]:
    """The session's sshd with a remote folder of this test's own and an SFTP client for uploading to it."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd_server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        sshd_server.host,
        port=sshd_server.port,
        username=sshd_server.user,
        key_filename=str(sshd_server.user_key),
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    try:
        yield Remote(sshd_server, sshd_server.remote_folder(), client.open_sftp())
    finally:
        client.close()
