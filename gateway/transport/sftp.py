"""Remote folders over SFTP, with paramiko. Host keys are checked against known_hosts: an unknown key is refused.

One connection serves one poll; downloads run over a few SFTP channels of it at once, with read-ahead, into
staging files; nothing remote is moved until the item has committed.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Self

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_DATA, CMD_HANDLE, CMD_OPEN, CMD_READ, SFTP_FLAG_READ, int64
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential

from gateway import logs
from gateway.settings import SftpConnection, SftpSource
from gateway.transport.inbox import (
    REPORT_SUFFIX,
    Entry,
    HostKeyRejected,
    TransportError,
    report_bytes,
    safe_name,
    shown_name,
)
from gateway.transport.sftp_wire import described, listing, wire

log = logs.get(__name__)

# paramiko keeps a channel's unread bytes in one array and deletes from its front on every read, so a read costs
# as much as what is buffered: a huge window (128 MiB) made a 200 MB download quadratic (30x OpenSSH).
_WINDOW = 8 << 20
_PACKET = 256 << 10  # SSH packets we accept (paramiko's default: 32 KiB): fewer packets, less Python per byte
_REQUEST = 255 << 10  # bytes per SFTP read (paramiko's default: 32 KiB; OpenSSH serves up to 255 KiB)
_DEPTH = 32  # reads in flight per download (8 MiB)
_SMALL = _REQUEST  # files that fit one read are fetched in pipelined batches
_BATCH = 64  # files per batch: every open sent at once, then every read, then every close


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) and not isinstance(exc, HostKeyRejected | _Refused)


class _Refused(TransportError):
    """Authentication failed or the configuration is wrong: retrying will not help."""


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("sftp_reconnect", attempt=state.attempt_number, error=str(error))


def _secret(settings: SftpConnection, environ: Mapping[str, str]) -> dict[str, Any]:
    if settings.password_env is not None:
        if settings.password_env not in environ:
            raise _Refused(f"the environment variable {settings.password_env} (the SFTP password) is not set")
        logs.register_secret(environ[settings.password_env])
        return {"password": environ[settings.password_env]}
    if settings.password_file is not None:
        try:
            password = settings.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            logs.register_secret(password)
            return {"password": password}
        except OSError as exc:
            raise _Refused(f"cannot read the password file {settings.password_file}: {exc.strerror}") from exc
    assert settings.private_key_file is not None
    passphrase = environ.get(settings.private_key_passphrase_env) if settings.private_key_passphrase_env else None
    try:
        return {"pkey": paramiko.PKey.from_path(settings.private_key_file, passphrase)}
    except (OSError, paramiko.SSHException) as exc:
        raise _Refused(f"cannot load the private key {settings.private_key_file}: {exc}") from exc


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


def _stream(requests: _Requests, handle: bytes, size: int, out: BinaryIO) -> int:
    """Copy a remote file of `size` bytes to `out` with up to _DEPTH reads in flight, and one read past the end
    (data there: the file grew). Returns the bytes received; fewer or more than `size` means it changed."""
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


class _Connection:
    """One SSH connection to an SFTP server and its main SFTP channel; host keys checked, secrets by reference."""

    def __init__(self, settings: SftpConnection, environ: Mapping[str, str] | None = None) -> None:
        self.settings: SftpConnection = settings
        self.folder = settings.remote_path.rstrip("/") or "/"
        self._environ = os.environ if environ is None else environ
        self._client: Any = None
        self._sftp: Any = None
        self._channels: list[Any] = []

    def connect(self) -> None:
        """Connect (retrying transient failures with backoff); an unknown host key is refused at once."""
        self._connect_with_retries()

    @retry(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.5, max=5),
        before_sleep=_log_retry,
        reraise=True,
    )
    def _connect_with_retries(self) -> None:
        settings = self.settings
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(str(settings.known_hosts))
        except OSError as exc:
            raise _Refused(f"cannot read known_hosts {settings.known_hosts}: {exc.strerror}") from exc
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                settings.host,
                port=settings.port,
                username=settings.username,
                timeout=settings.connect_timeout,
                banner_timeout=settings.banner_timeout,
                auth_timeout=settings.auth_timeout,
                channel_timeout=settings.channel_timeout,
                allow_agent=False,
                look_for_keys=False,
                **_secret(settings, self._environ),
            )
            self._sftp = self._channel(client)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRejected(
                f"{settings.host}:{settings.port} presented a host key that differs from {settings.known_hosts}"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise _Refused(f"{settings.username}@{settings.host}:{settings.port}: authentication failed") from exc
        except paramiko.SSHException as exc:
            client.close()
            if "known_hosts" in str(exc):
                raise HostKeyRejected(
                    f"{settings.host}:{settings.port} is not in {settings.known_hosts}: unknown host key refused"
                ) from exc
            raise TransportError(f"SFTP to {settings.host}:{settings.port} failed: {exc}") from exc
        except (OSError, EOFError) as exc:
            client.close()
            why = described(exc, "connect_timeout", settings.connect_timeout)
            raise TransportError(f"cannot reach {settings.host}:{settings.port}: {why}") from exc
        self._client = client

    def _why(self, exc: BaseException) -> str:
        return described(exc, "channel_timeout", self.settings.channel_timeout)

    def _channel(self, client: Any) -> Any:
        sftp = paramiko.SFTPClient.from_transport(client.get_transport(), window_size=_WINDOW, max_packet_size=_PACKET)
        sftp.get_channel().settimeout(self.settings.channel_timeout)
        return sftp

    def close(self) -> None:
        """Close every channel and the connection."""
        for channel in [self._sftp, *self._channels]:
            if channel is not None:
                with contextlib.suppress(OSError, EOFError, paramiko.SSHException):  # a broken channel: done
                    channel.close()
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None
        self._channels.clear()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class SftpInbox(_Connection):
    """One remote folder, connected for one poll."""

    def __init__(self, settings: SftpSource, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, environ)
        self.settings: SftpSource = settings
        self.name = settings.name
        self._local = threading.local()
        self._lock = threading.Lock()

    # listing and fetching

    def _remote(self, name: str, sub_folder: str | None = None) -> str:
        if not safe_name(name):
            raise TransportError(f"{shown_name(name)!r} is not a file of {self.folder}")
        return posixpath.join(self.folder, sub_folder, name) if sub_folder else posixpath.join(self.folder, name)

    def entries(self) -> list[Entry]:
        """Regular files in the remote folder as the server lists them, with their link counts, whatever their
        names (symbolic links and folders left out; the pickup refuses names it never takes)."""
        try:
            listed = listing(self._sftp, self.folder)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot list {self.folder} on {self.settings.host}: {self._why(exc)}") from exc
        return [
            Entry(item.name, item.attributes.st_size or 0, float(item.attributes.st_mtime or 0), item.links)
            for item in listed
            if item.attributes.st_mode is not None and stat.S_ISREG(item.attributes.st_mode)
        ]

    def _staged(self, staging: Path, write: Callable[[BinaryIO], None]) -> Path:
        """A staging file written by `write`, under a temporary name, fsynced, renamed; nothing left on error."""
        staging.mkdir(parents=True, exist_ok=True)
        temporary = staging / f".{uuid.uuid4().hex}.part"
        final = staging / f"{uuid.uuid4().hex}.staged"
        try:
            with temporary.open("wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return final

    def _download(self, sftp: Any, entry: Entry, staging: Path) -> Path:
        """One file, with up to _DEPTH reads in flight, sent and collected in this thread."""

        def write(out: BinaryIO) -> None:
            with sftp.open(wire(self._remote(entry.name)), "rb") as remote:
                received = _stream(_Requests(sftp), remote.handle, entry.size, out)
            if received != entry.size:
                raise TransportError(f"{entry.shown}: received {received} bytes of {entry.size}; it changed or was cut")

        try:
            return self._staged(staging, write)
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

    def _fetch_batch(self, sftp: Any, entries: Sequence[Entry], staging: Path) -> list[Path | TransportError]:
        """Small files over one channel: every open sent at once, then every read, then every close; each file
        staged once all its bytes are here. A connection lost on the way fails the whole batch."""
        requests = _Requests(sftp)
        outcome: dict[int, Path | TransportError] = {}
        try:
            handles = self._open_all(requests, entries, outcome)
            bodies = self._read_all(requests, entries, handles, outcome)
            for handle in handles.values():
                requests.send(handle, CMD_CLOSE, handle)
            for number, body in bodies.items():  # written while the closes are answered
                outcome[number] = self._staged(staging, lambda out, body=body: out.write(body))  # type: ignore[misc]
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                requests.all()  # the closes: the bytes are staged already
        except (OSError, EOFError, paramiko.SSHException) as exc:
            for staged in outcome.values():
                if isinstance(staged, Path):
                    staged.unlink(missing_ok=True)
            error = TransportError(f"download from {self.settings.host} failed: {self._why(exc)}")
            return [error] * len(entries)
        return [outcome[number] for number in range(len(entries))]

    def fetch(self, entry: Entry, staging: Path) -> Path:
        """Download one file into staging (temporary name, fsync, rename)."""
        return self._download(self._sftp, entry, staging)

    def _worker_channel(self) -> Any:
        sftp = getattr(self._local, "sftp", None)
        if sftp is None:
            sftp = self._channel(self._client)
            self._local.sftp = sftp
            with self._lock:
                self._channels.append(sftp)
        return sftp

    def fetch_many(self, entries: Sequence[Entry], staging: Path) -> Iterator[tuple[Entry, Path | TransportError]]:
        """Download several files, yielded in the order given (each a path or an error): small ones in pipelined
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

        def run(task: list[Entry], sftp: Any = None) -> list[Path | TransportError]:
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

    # moving aside

    def _rename(self, entry: Entry, sub_folder: str) -> str:
        target_folder = posixpath.join(self.folder, sub_folder)
        try:
            try:
                self._sftp.stat(target_folder)
            except FileNotFoundError:
                self._sftp.mkdir(target_folder)
            target = self._remote(entry.name, sub_folder)
            try:
                self._sftp.stat(wire(target))
                target = f"{target}.{uuid.uuid4().hex[:8]}"  # the same name came before: keep both
            except FileNotFoundError:
                pass
            self._sftp.posix_rename(wire(self._remote(entry.name)), wire(target))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            where = f"{sub_folder}/ on {self.settings.host}"
            raise TransportError(f"cannot move {entry.shown} to {where}: {self._why(exc)}") from exc
        return target

    def _remove_marker(self, entry: Entry, marker_suffix: str) -> None:
        try:
            self._sftp.remove(wire(self._remote(entry.name + marker_suffix)))
        except FileNotFoundError:
            pass
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot remove the done-marker of {entry.shown}: {self._why(exc)}") from exc

    def _write_report(self, target: str, report: Mapping[str, object]) -> None:
        temporary = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}{REPORT_SUFFIX}.part")
        try:
            with self._sftp.open(wire(temporary), "wb") as out:
                out.write(report_bytes(report))
            self._sftp.posix_rename(wire(temporary), wire(target + REPORT_SUFFIX))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            name = shown_name(posixpath.basename(target))
            raise TransportError(f"cannot write the report of {name}: {self._why(exc)}") from exc

    def archive(self, entry: Entry, marker_suffix: str, report: Mapping[str, object] | None = None) -> None:
        """Move to archive/ (or delete), remove the done-marker; a report of refused rows goes beside it."""
        if self.settings.delete:
            try:
                self._sftp.remove(wire(self._remote(entry.name)))
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise TransportError(f"cannot delete {entry.shown} on {self.settings.host}: {self._why(exc)}") from exc
        else:
            target = self._rename(entry, self.settings.archive)
            if report is not None:
                self._write_report(target, report)
        self._remove_marker(entry, marker_suffix)

    def fail(self, entry: Entry, marker_suffix: str, report: Mapping[str, object]) -> None:
        """Move to failed/ with NAME.error.json beside it, remove the done-marker."""
        target = self._rename(entry, self.settings.failed)
        self._write_report(target, report)
        self._remove_marker(entry, marker_suffix)


class SftpOutbound(_Connection):
    """A remote folder files are delivered into: written under a hidden temporary name, then renamed into place,
    so the partner never picks up half a file."""

    def write(self, name: str, data: bytes) -> str:
        """Write `data` as `name` (replacing a file of that name); return its remote path."""
        if not safe_name(name):
            raise TransportError(f"{name!r} is not a file name")
        target = posixpath.join(self.folder, name)
        temporary = posixpath.join(self.folder, f".{name}.part")
        try:
            with self._sftp.open(temporary, "wb") as out:
                out.write(data)
            self._sftp.posix_rename(temporary, target)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self._sftp.remove(temporary)  # no half file left behind, when the connection still allows
            raise TransportError(f"cannot write {target} on {self.settings.host}: {self._why(exc)}") from exc
        return target
