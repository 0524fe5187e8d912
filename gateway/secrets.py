"""Secrets named by the configuration: read from an environment variable or a file, registered for redaction.

The one reader of every secret (the store's password, partner API tokens and passwords, SFTP passwords and key
passphrases, the platform API's tokens), with one rule: whitespace around the value is dropped (a file's final
line break, a pasted space), and what is left must not be empty. A caller with its own error type catches
SecretError and raises its own; `reason` tells it which problem it met.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Literal

from gateway import logs

Reason = Literal["unset", "unreadable", "empty", "refused"]


class SecretError(ValueError):
    """A secret could not be read (the message names where it was looked for, never the secret).

    `reason`: "unset" (the environment variable is not set), "unreadable" (the file cannot be read; `detail` says
    why), "empty", or "refused" (the caller's check refused it)."""

    def __init__(self, message: str, reason: Reason, detail: str = "") -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.detail = detail


def read_secret(
    env: str | None,
    file: os.PathLike[str] | None,
    what: str,
    environ: Mapping[str, str] | None = None,
    *,
    check: Callable[[str], str | None] | None = None,
) -> str | None:
    """The secret in the environment variable `env` or the file `file` (None when neither is named), whitespace
    around it dropped; SecretError when it is not set, cannot be read or is empty. `check` returns why a secret
    is unfit (a phrase following where it was read: "holds a line break"), or None."""
    environ = os.environ if environ is None else environ
    if env is not None:
        if env not in environ:
            raise SecretError(f"the environment variable {env} ({what}) is not set", "unset")
        secret, where = environ[env].strip(), f"the environment variable {env} ({what})"
    elif file is not None:
        try:
            with open(file, encoding="utf-8") as stream:
                secret = stream.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise SecretError(f"cannot read {what} from {file}: {why}", "unreadable", str(exc)) from exc
        where = f"{what} in {file}"
    else:
        return None
    logs.register_secret(secret)
    if not secret:
        raise SecretError(f"{where} is empty", "empty")
    problem = check(secret) if check is not None else None
    if problem is not None:
        raise SecretError(f"{where} {problem}", "refused")
    return secret
