"""Secrets named by the configuration: read from an environment variable or a file, registered for redaction."""

from __future__ import annotations

import os
from collections.abc import Mapping

from gateway import logs


class SecretError(ValueError):
    """A secret could not be read (the message names where it was looked for, never the secret)."""


def read_secret(
    env: str | None, file: os.PathLike[str] | None, what: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """The secret in the environment variable `env` or the file `file` (None when neither is named)."""
    environ = os.environ if environ is None else environ
    if env is not None:
        if env not in environ:
            raise SecretError(f"the environment variable {env} ({what}) is not set")
        secret, where = environ[env].strip(), f"the environment variable {env} ({what})"
    elif file is not None:
        try:
            with open(file, encoding="utf-8") as stream:
                secret = stream.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read {what} from {file}: {getattr(exc, 'strerror', None) or exc}") from exc
        where = f"{what} in {file}"
    else:
        return None
    logs.register_secret(secret)
    if not secret:
        raise SecretError(f"{where} is empty")
    return secret
