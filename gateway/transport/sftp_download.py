"""Downloads from a remote SFTP folder into staging files: several files at once over a few SFTP channels of
one connection, each with its reads in flight, small files in pipelined batches. A file that changed while it
was read (more or fewer bytes than listed) is an error; nothing is left in staging by a failed download.
"""

from __future__ import annotations

import contextlib
import posixpath
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_DATA, CMD_HANDLE, CMD_OPEN, CMD_READ, SFTP_FLAG_READ, int64

from gateway.settings import SftpSource
from gateway.transport.errors import TransportError
from gateway.transport.inbox import Entry, HashingWriter, Staged, safe_name, shown_name, stage_hashed
from gateway.transport.sftp_connection import Connection
from gateway.transport.sftp_wire import wire

_REQUEST = 255 << 10  # bytes per SFTP read (paramiko's default: 32 KiB; OpenSSH serves up to 255 KiB)
_DEPTH = 32  # reads in flight per download (8 MiB)
_SMALL = _REQUEST  # files that fit one read are fetched in pipelined batches
_BATCH = 64  # files per batch: every open sent at once, then every read, then every close


class _Requests:
    """SFTP requests sent without waiting for their answers; each answer kept under the caller's key.

    paramiko has no public asynchronous read or open. This uses the two calls its own read-ahead is built on
    (`SFTPClient._async_request`, `SFTPClient._read_response`), from the calling thread only: no read-ahead
    thread, so none of its races (paramiko #2519: a reader that catches up with it turns read-ahead off and the
    rest of the file piles up in memory) and nothing left running when the connection drops.
    """

    def __init__(self, sftp: Any) -> None:
        self.sftp = sftp
        self.waiting: dict[int, object] = {}
        self.answers: dict[object, tuple[int, Any]] = {}

    def _async_response(self, kind: int, msg: Any, number: int) -> None:  # paramiko calls it with each answer
        self.answers[self.waiting.pop(number)] = (kind, msg)

    def send(self, key: object, kind: int, *args: Any) -> None:
        self.waiting[self.sftp._async_request(self, kind, *args)] = key

    def answer(self, key: object) -> tuple[int, Any]:
        while key not in self.answers:
            self.sftp._read_response()
        return self.answers.pop(key)

    def all(self) -> dict[object, tuple[int, Any]]:
        while self.waiting:
            self.sftp._read_response()
        answers, self.answers = self.answers, {}
        return answers

    def read(self, handle: bytes, offset: int, length: int) -> bytes:
        """One read, waited for (other answers arriving meanwhile are kept)."""
        self.send(("read", offset), CMD_READ, handle, int64(offset), length)
        return self.data(self.answer(("read", offset)))

    def data(self, answer: tuple[int, Any]) -> bytes:
        """The bytes of a read's answer; b"" at the end of the file; an error status raised as paramiko does."""
        kind, msg = answer
        if kind == CMD_DATA:
            return bytes(msg.get_binary())
        try:
            self.sftp._convert_status(msg)
        except EOFError:
            return b""
        raise OSError(f"unexpected answer {kind} to a read")


def _stream(requests: _Requests, handle: bytes, size: int, out: HashingWriter) -> int:
    """Copy a remote file of `size` bytes to `out` with up to _DEPTH reads in flight, and one read past the end
    (data there: the file grew). Returns the bytes received; fewer or more than `size` means it changed.

    The reads may be answered in any order, but each answer is taken by its offset and written in turn (the
    next offset's answer is waited for, the others kept): `out` receives the file from its first byte to its
    last, in order, so it hashes the bytes as it writes them."""
    asked = received = 0
    while True:
        while len(requests.waiting) < _DEPTH and asked <= size:
            length = min(_REQUEST, size - asked) if asked < size else 1
            requests.send(asked, CMD_READ, handle, int64(asked), length)
            asked += length
        offset = received
        data = requests.data(requests.answer(offset))
        if offset >= size or not data:  # the end (any data here: it grew), or a file that shrank
            return received + len(data)
        expected = min(_REQUEST, size - offset)
        while 0 < len(data) < expected:  # a short read: ask for the rest, in turn
            more = requests.read(handle, offset + len(data), expected - len(data))
            if not more:
                break
            data += more
        out.write(data)
        received += len(data)
        if len(data) < expected:
            return received


class Downloader(Connection):
    """A connected remote folder whose files are downloaded into staging (temporary name, fsync, rename)."""

    def __init__(self, settings: SftpSource, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, environ)
        self.settings: SftpSource = settings
        self.name = settings.name
        self._local = threading.local()
        self._lock = threading.Lock()

    def _remote(self, name: str, sub_folder: str | None = None) -> str:
        if not safe_name(name):
            raise TransportError(f"{shown_name(name)!r} is not a file of {self.folder}")
        return posixpath.join(self.folder, sub_folder, name) if sub_folder else posixpath.join(self.folder, name)

    def _download(self, sftp: Any, entry: Entry, staging: Path) -> Staged:
        """One file, with up to _DEPTH reads in flight, sent and collected in this thread."""

        def write(out: HashingWriter) -> None:
            with sftp.open(wire(self._remote(entry.name)), "rb") as remote:
                received = _stream(_Requests(sftp), remote.handle, entry.size, out)
            if received != entry.size:
                raise TransportError(f"{entry.shown}: received {received} bytes of {entry.size}; it changed or was cut")

        try:
            return stage_hashed(staging, write)
        except TransportError:
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            host = self.settings.host
            raise TransportError(f"download of {entry.shown} from {host} failed: {self._why(exc)}") from exc

    def _open_all(self, requests: _Requests, entries: Sequence[Entry], outcome: dict[int, Any]) -> dict[int, bytes]:
        """Every file opened at once: its handle, or its error in `outcome`."""
        for number, entry in enumerate(entries):
            requests.send(number, CMD_OPEN, wire(self._remote(entry.name)), SFTP_FLAG_READ, paramiko.SFTPAttributes())
        handles: dict[int, bytes] = {}
        for key, answer in requests.all().items():
            assert isinstance(key, int)
            if answer[0] == CMD_HANDLE:
                handles[key] = answer[1].get_binary()
                continue
            try:
                requests.data(answer)
                problem = "no handle"
            except OSError as exc:
                problem = str(exc)
            outcome[key] = TransportError(f"cannot open {entries[key].shown} on {self.settings.host}: {problem}")
        return handles

    def _read_all(
        self, requests: _Requests, entries: Sequence[Entry], handles: Mapping[int, bytes], outcome: dict[int, Any]
    ) -> dict[int, bytes]:
        """Every file read at once, each with one read past its end (the file must not have grown)."""
        for number, handle in handles.items():
            size = entries[number].size
            if size:
                requests.send((number, 0), CMD_READ, handle, int64(0), size)
            requests.send((number, size), CMD_READ, handle, int64(size), 1)
        pieces = requests.all()
        bodies: dict[int, bytes] = {}
        for number, handle in handles.items():
            entry = entries[number]
            body = requests.data(pieces[(number, 0)]) if entry.size else b""
            while 0 < len(body) < entry.size:  # a short read: ask for the rest
                more = requests.read(handle, len(body), entry.size - len(body))
                if not more:
                    break
                body += more
            beyond = requests.data(pieces[(number, entry.size)])
            if len(body) != entry.size or beyond:
                got = len(body) + len(beyond)
                outcome[number] = TransportError(f"{entry.shown}: received {got} bytes of {entry.size}; it changed")
            else:
                bodies[number] = body
        return bodies

    def _fetch_batch(self, sftp: Any, entries: Sequence[Entry], staging: Path) -> list[Staged | TransportError]:
        """Small files over one channel: every open sent at once, then every read, then every close; each file
        staged once all its bytes are here. A connection lost on the way fails the whole batch."""
        requests = _Requests(sftp)
        outcome: dict[int, Staged | TransportError] = {}
        try:
            handles = self._open_all(requests, entries, outcome)
            bodies = self._read_all(requests, entries, handles, outcome)
            for handle in handles.values():
                requests.send(handle, CMD_CLOSE, handle)
            for number, body in bodies.items():  # written while the closes are answered
                outcome[number] = stage_hashed(staging, lambda out, body=body: out.write(body))  # type: ignore[misc]
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                requests.all()  # the closes: the bytes are staged already
        except (OSError, EOFError, paramiko.SSHException) as exc:
            for staged in outcome.values():
                if isinstance(staged, Staged):
                    staged.path.unlink(missing_ok=True)
            error = TransportError(f"download from {self.settings.host} failed: {self._why(exc)}")
            return [error] * len(entries)
        return [outcome[number] for number in range(len(entries))]

    def fetch(self, entry: Entry, staging: Path) -> Staged:
        """Download one file into staging (temporary name, hashed as written, fsync, rename)."""
        return self._download(self._sftp, entry, staging)

    def _worker_channel(self) -> Any:
        sftp = getattr(self._local, "sftp", None)
        if sftp is None:
            sftp = self._channel(self._client)
            self._local.sftp = sftp
            with self._lock:
                self._channels.append(sftp)
        return sftp

    def fetch_many(self, entries: Sequence[Entry], staging: Path) -> Iterator[tuple[Entry, Staged | TransportError]]:
        """Download several files, yielded in the order given (each a staged file or an error): small ones in pipelined
        batches, large ones each with its reads in flight; over parallel channels when there is enough to share."""
        workers = max(1, min(self.settings.download_workers, len(entries)))
        share = min(_BATCH, max(1, -(-len(entries) // workers)))
        tasks: list[list[Entry]] = []
        for entry in entries:
            small = entry.size <= _SMALL
            if small and tasks and len(tasks[-1]) < share and tasks[-1][-1].size <= _SMALL:
                tasks[-1].append(entry)
            else:
                tasks.append([entry])

        def run(task: list[Entry], sftp: Any = None) -> list[Staged | TransportError]:
            try:
                sftp = sftp or self._worker_channel()
                if len(task) == 1 and task[0].size > _SMALL:
                    try:
                        return [self._download(sftp, task[0], staging)]
                    except TransportError as exc:
                        return [exc]
                return self._fetch_batch(sftp, task, staging)
            except TransportError as exc:
                return [exc] * len(task)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                return [TransportError(f"download from {self.settings.host} failed: {self._why(exc)}")] * len(task)

        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                yield from zip(task, run(task, self._sftp), strict=True)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sftp-{self.name}") as pool:
            for task, results in zip(tasks, pool.map(run, tasks), strict=True):
                yield from zip(task, results, strict=True)
