"""One SSH connection to an SFTP server, with paramiko: host keys checked against known_hosts (an unknown key is
refused), secrets by reference, transient failures retried with backoff, SFTP channels opened on it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any, Self

import paramiko
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential

from gateway import logs
from gateway.secrets import SecretError, read_secret
from gateway.settings import SftpConnection
from gateway.transport.errors import HostKeyRejected, SftpRefused, TransportError
from gateway.transport.sftp_wire import described

log = logs.get(__name__)

# paramiko keeps a channel's unread bytes in one array and deletes from its front on every read, so a read costs
# as much as what is buffered: a huge window (128 MiB) made a 200 MB download quadratic (30x OpenSSH).
_WINDOW = 8 << 20
_PACKET = 256 << 10  # SSH packets we accept (paramiko's default: 32 KiB): fewer packets, less Python per byte


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) and not isinstance(exc, HostKeyRejected | SftpRefused)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("sftp_reconnect", attempt=state.attempt_number, error=str(error))


def _credentials(settings: SftpConnection, environ: Mapping[str, str]) -> dict[str, Any]:
    """paramiko's keyword for the one credential configured: a password, or a private key (with its passphrase)."""
    try:
        password = read_secret(settings.password_env, settings.password_file, "the SFTP password", environ)
        if password is not None:
            return {"password": password}
        passphrase = read_secret(settings.private_key_passphrase_env, None, "the private key's passphrase", environ)
    except SecretError as exc:
        raise SftpRefused(str(exc)) from exc
    assert settings.private_key_file is not None
    try:
        return {"pkey": paramiko.PKey.from_path(settings.private_key_file, passphrase)}
    except (OSError, paramiko.SSHException) as exc:
        raise SftpRefused(f"cannot load the private key {settings.private_key_file}: {exc}") from exc


class Connection:
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
            raise SftpRefused(f"cannot read known_hosts {settings.known_hosts}: {exc.strerror}") from exc
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
                **_credentials(settings, self._environ),
            )
            self._sftp = self._channel(client)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRejected(
                f"{settings.host}:{settings.port} presented a host key that differs from {settings.known_hosts}"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SftpRefused(f"{settings.username}@{settings.host}:{settings.port}: authentication failed") from exc
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
