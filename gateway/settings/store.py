"""Where the stock store lives, and how its URL is read: a relative SQLite path is beside the configuration file,
a password never sits in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, model_validator

from gateway.settings.base import Strict

STORE_URL_ENV = "GATEWAY_STORE_URL"
DEFAULT_STORE_URL = "sqlite:///var/gateway.db"


class StoreSettings(Strict):
    """Where the stock store lives: a SQLite file (one worker) or a PostgreSQL database (several workers).

    A PostgreSQL password never sits in the URL of the file: `password_env` or `password_file` names it (or the
    whole URL comes from GATEWAY_STORE_URL)."""

    url: str = DEFAULT_STORE_URL
    password_env: str | None = None
    password_file: Path | None = None
    # PostgreSQL connections per process: pool_size kept open, up to max_overflow more under load, and how long
    # a thread waits for one before the store counts as busy
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=5, ge=0, le=100)
    pool_timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give at most one of password_env and password_file")
        return self


def holds_password(url: str) -> bool:
    """Whether a store URL carries a password (user:password@host, or a password= query parameter)."""
    parts = urlsplit(url)
    return bool(parts.password) or any(key.lower() == "password" for key, _ in parse_qsl(parts.query))


def resolve_store_url(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the configuration file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        relative = url[len(prefix) :]
        if relative and not relative.startswith(":memory:"):
            return prefix + str((base / relative).resolve())
    return url
