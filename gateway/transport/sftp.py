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
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential

from gateway import logs
from gateway.settings import SftpSource
from gateway.transport.inbox import (
    REPORT_SUFFIX,
    Entry,
    HostKeyRejected,
    TransportError,
    report_bytes,
    safe_name,
)

log = logs.get(__name__)

_BLOCK = 1 << 20
_WINDOW = 1 << 27  # a large window keeps a fast link busy


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) and not isinstance(exc, HostKeyRejected | _Refused)


class _Refused(TransportError):
    """Authentication failed or the configuration is wrong: retrying will not help."""


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("sftp_reconnect", attempt=state.attempt_number, error=str(error))


def _secret(settings: SftpSource, environ: Mapping[str, str]) -> dict[str, Any]:
    if settings.password_env is not None:
        if settings.password_env not in environ:
            raise _Refused(f"the environment variable {settings.password_env} (the SFTP password) is not set")
        return {"password": environ[settings.password_env]}
    if settings.password_file is not None:
        try:
            return {"password": settings.password_file.read_text(encoding="utf-8").rstrip("\r\n")}
        except OSError as exc:
            raise _Refused(f"cannot read the password file {settings.password_file}: {exc.strerror}") from exc
    assert settings.private_key_file is not None
    passphrase = environ.get(settings.private_key_passphrase_env) if settings.private_key_passphrase_env else None
    try:
        return {"pkey": paramiko.PKey.from_path(settings.private_key_file, passphrase)}
    except (OSError, paramiko.SSHException) as exc:
        raise _Refused(f"cannot load the private key {settings.private_key_file}: {exc}") from exc


def _guard_read_ahead(remote: Any) -> None:
    """Keep paramiko's read-ahead thread from dying loudly when the connection is cut under it.

    paramiko sends read-ahead requests from a thread of its own (SFTPFile._prefetch_thread); a cut connection
    would end that thread with an unhandled exception. The reading side sees the same cut and reports it as a
    TransportError, so the thread only has to stop.
    """
    send = remote._prefetch_thread

    def guarded(*args: Any) -> None:
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            send(*args)

    remote._prefetch_thread = guarded


class SftpInbox:
    """One remote folder, connected for one poll."""

    def __init__(self, settings: SftpSource, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.folder = settings.remote_path.rstrip("/") or "/"
        self._environ = os.environ if environ is None else environ
        self._client: Any = None
        self._sftp: Any = None
        self._local = threading.local()
        self._channels: list[Any] = []
        self._lock = threading.Lock()

    # connection

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
            raise TransportError(f"cannot reach {settings.host}:{settings.port}: {exc}") from exc
        self._client = client

    def _channel(self, client: Any) -> Any:
        sftp = paramiko.SFTPClient.from_transport(client.get_transport(), window_size=_WINDOW)
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

    def __enter__(self) -> SftpInbox:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # listing and fetching

    def _remote(self, name: str, sub_folder: str | None = None) -> str:
        if not safe_name(name):
            raise TransportError(f"{name!r} is not a file of {self.folder}")
        return posixpath.join(self.folder, sub_folder, name) if sub_folder else posixpath.join(self.folder, name)

    def entries(self) -> list[Entry]:
        """Regular files in the remote folder, as the server lists them (links and folders left out)."""
        try:
            listing = self._sftp.listdir_attr(self.folder)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot list {self.folder} on {self.settings.host}: {exc}") from exc
        return [
            Entry(item.filename, item.st_size or 0, float(item.st_mtime or 0))
            for item in listing
            if item.st_mode is not None and stat.S_ISREG(item.st_mode) and safe_name(item.filename)
        ]

    def _download(self, sftp: Any, entry: Entry, staging: Path) -> Path:
        staging.mkdir(parents=True, exist_ok=True)
        temporary = staging / f".{uuid.uuid4().hex}.part"
        final = staging / f"{uuid.uuid4().hex}.staged"
        try:
            with sftp.open(self._remote(entry.name), "rb") as remote, temporary.open("wb") as out:
                _guard_read_ahead(remote)
                remote.prefetch(entry.size)
                received = 0
                while block := remote.read(_BLOCK):
                    out.write(block)
                    received += len(block)
                out.flush()
                os.fsync(out.fileno())
            if received != entry.size:
                raise TransportError(f"{entry.name}: received {received} bytes of {entry.size}; it changed or was cut")
            os.replace(temporary, final)
        except TransportError:
            temporary.unlink(missing_ok=True)
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            temporary.unlink(missing_ok=True)
            raise TransportError(f"download of {entry.name} from {self.settings.host} failed: {exc}") from exc
        return final

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
        """Download several files over parallel channels, yielded in the order given (each a path or an error)."""
        workers = min(self.settings.download_workers, len(entries))
        if workers <= 1:
            for entry in entries:
                try:
                    yield entry, self.fetch(entry, staging)
                except TransportError as exc:
                    yield entry, exc
            return

        def one(entry: Entry) -> Path | TransportError:
            try:
                return self._download(self._worker_channel(), entry, staging)
            except TransportError as exc:
                return exc
            except (OSError, EOFError, paramiko.SSHException) as exc:
                return TransportError(f"download of {entry.name} failed: {exc}")

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sftp-{self.name}") as pool:
            yield from zip(entries, pool.map(one, entries), strict=True)

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
                self._sftp.stat(target)
                target = f"{target}.{uuid.uuid4().hex[:8]}"  # the same name came before: keep both
            except FileNotFoundError:
                pass
            self._sftp.posix_rename(self._remote(entry.name), target)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot move {entry.name} to {sub_folder}/ on {self.settings.host}: {exc}") from exc
        return target

    def _remove_marker(self, entry: Entry, marker_suffix: str) -> None:
        try:
            self._sftp.remove(self._remote(entry.name + marker_suffix))
        except FileNotFoundError:
            pass
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot remove the done-marker of {entry.name}: {exc}") from exc

    def _write_report(self, target: str, report: Mapping[str, object]) -> None:
        temporary = posixpath.join(posixpath.dirname(target), f".{posixpath.basename(target)}{REPORT_SUFFIX}.part")
        try:
            with self._sftp.open(temporary, "wb") as out:
                out.write(report_bytes(report))
            self._sftp.posix_rename(temporary, target + REPORT_SUFFIX)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"cannot write the report of {posixpath.basename(target)}: {exc}") from exc

    def archive(self, entry: Entry, marker_suffix: str, report: Mapping[str, object] | None = None) -> None:
        """Move to archive/ (or delete), remove the done-marker; a report of refused rows goes beside it."""
        if self.settings.delete:
            try:
                self._sftp.remove(self._remote(entry.name))
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise TransportError(f"cannot delete {entry.name} on {self.settings.host}: {exc}") from exc
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
