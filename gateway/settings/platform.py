"""The platform HTTP API ([api]): where it listens, its limits, and its bearer tokens (by reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from gateway.settings.base import Strict

Scope = Literal["api", "console"]


class ApiToken(Strict):
    """One bearer token of the platform API, scoped to partners and to what it is for (`scopes`). The token itself
    is read from the environment variable or the file named here, never written in the configuration."""

    name: str  # who holds it (in logs; never the token)
    token_env: str | None = None
    token_file: Path | None = None
    partners: list[str] = Field(min_length=1)  # the partners it may act for; "*" for all
    # what it may be used for: "api" (the partner routes under /v1) and "console" (the operator console at
    # /console/, for the partners above); a token of one scope is refused (403) by the other
    scopes: list[Scope] = Field(default_factory=lambda: list[Scope](["api"]), min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError("give exactly one of token_env and token_file")
        return self


NO_TOKENS = "no [[api.tokens]] table: the platform API needs at least one token (it would answer 401 to everything)"


class PlatformApiSettings(Strict):
    """The platform HTTP API (`gateway serve`, or inside `gateway run` when enabled)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8082, ge=0, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1)  # a larger request body: 413, before it is read
    max_connections: int = Field(default=200, ge=1)  # open at once; one more is answered 503 and closed
    header_timeout: float = Field(default=10.0, gt=0)  # seconds a connection has to send a request's head
    # seconds a command waits for SQLite's writer (a large file being applied holds it) before a 503 with
    # Retry-After; reads never wait for it
    write_wait: float = Field(default=5.0, ge=0, le=300)

    @model_validator(mode="after")
    def _named_once(self) -> Self:
        names = [token.name for token in self.tokens]
        if len(names) != len(set(names)):
            raise ValueError("two tokens have the same name")
        if self.enabled and not self.tokens:  # `gateway run` serves it: refused at start, as `gateway serve` is
            raise ValueError(f"enabled, but {NO_TOKENS}")
        return self
