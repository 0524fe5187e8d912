"""Who may call the platform API: bearer tokens scoped to partners, kept hashed, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gateway import logs
from gateway.settings import NO_TOKENS, ApiToken, ConfigError, Settings

ALL_PARTNERS = "*"


@dataclass(frozen=True)
class Grant:
    """One token: its holder's name, the digest of the token, the partners it may act for."""

    name: str
    digest: bytes
    partners: frozenset[str]

    def allows(self, partner: str) -> bool:
        """Whether the token may act for `partner`."""
        return ALL_PARTNERS in self.partners or partner in self.partners


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _read(token: ApiToken, environ: Mapping[str, str]) -> str:
    if token.token_env is not None:
        value = environ.get(token.token_env)
        if value is None:
            raise ConfigError([f"api.tokens.{token.name}: the environment variable {token.token_env} is not set"])
    else:
        assert token.token_file is not None
        try:
            value = token.token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"api.tokens.{token.name}: cannot read {token.token_file}: {exc}"]) from None
    value = value.strip()
    if len(value) < 16:
        raise ConfigError([f"api.tokens.{token.name}: the token is shorter than 16 characters"])
    logs.register_secret(value)
    return value


class Tokens:
    """The platform API's tokens, read once at start (from the environment or files) and kept as digests."""

    def __init__(self, grants: list[Grant]) -> None:
        self.grants = grants

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Tokens:
        """Read every configured token; ConfigError names a missing or weak one, or says there is none."""
        if not settings.api.tokens:
            raise ConfigError([f"api: {NO_TOKENS}"])
        environ = os.environ if environ is None else environ
        grants = [Grant(t.name, _digest(_read(t, environ)), frozenset(t.partners)) for t in settings.api.tokens]
        return cls(grants)

    def grant(self, authorization: str | None) -> Grant | None:
        """The grant of an `Authorization: Bearer ...` header, or None. Every grant is compared (in constant
        time), so the answer takes as long whichever token matches."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        found = None
        for grant in self.grants:
            if hmac.compare_digest(grant.digest, digest):
                found = grant
        return found
