"""Every error a transport raises, in one module the service layer imports without importing a transport.

The outside systems' own errors (paramiko's, requests', the file system's) are turned into these where they are
met, in the transport modules; nothing here imports paramiko, requests or watchdog.
"""

from __future__ import annotations

EXCERPT_BYTES = 64 * 1024  # what is kept of a page refused as too large
REFUSES_ALL = frozenset({401, 403, 404, 405})


class TransportError(Exception):
    """The outside system failed us (unreachable, refused, interrupted); the file is left where it was."""


class HostKeyRejected(TransportError):
    """The server's host key is not the one in known_hosts: nothing is sent to it."""


class SftpRefused(TransportError):
    """Authentication failed or the configuration is wrong: retrying will not help."""


class DeliveryFailed(TransportError):
    """The partner did not take a batch: `retryable` says whether sending it again may help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.retryable = retryable

    @property
    def refuses_all(self) -> bool:
        """The partner refused our credentials or the endpoint (401, 403, 404, 405): every batch would meet the
        same answer, whatever it holds."""
        return self.status in REFUSES_ALL


class ApiConfigError(TransportError):
    """The API cannot be used as configured (a secret missing, an adapter not found)."""


class RedirectRefused(TransportError):
    """The partner redirected the request where it may not go: another origin, a fourth time, or a POST to GET."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PageTooLarge(TransportError):
    """A body went past its limit: `head` holds its first `limit + 1` bytes (decompressed), the rest was not read."""

    def __init__(self, url: str, head: bytes, limit: int, received: int, encoding: str | None) -> None:
        super().__init__(f"GET {url}: the page is larger than {limit} bytes (api.max_page_bytes), counted decompressed")
        self.url = url
        self.head = head
        self.limit = limit
        self.received = received  # bytes taken from the wire before the cut (compressed, when it was)
        self.encoding = encoding
