"""Who may call the platform API: bearer tokens scoped to partners, kept hashed, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.secrets import SecretError, read_secret
from gateway.settings import NO_TOKENS, ApiToken, ConfigError, Settings

ALL_PARTNERS = "*"
MIN_TOKEN_LENGTH = 16


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
    def short(value: str) -> str | None:
        return "is too short" if len(value) < MIN_TOKEN_LENGTH else None

    try:
        value = read_secret(token.token_env, token.token_file, "the API token", environ, check=short)
    except SecretError as exc:
        # the messages name the token by its holder, as every [[api.tokens]] problem does; an empty token is short
        problem = {
            "unset": f"the environment variable {token.token_env} is not set",
            "unreadable": f"cannot read {token.token_file}: {exc.detail}",
        }.get(exc.reason, f"the token is shorter than {MIN_TOKEN_LENGTH} characters")
        raise ConfigError([f"api.tokens.{token.name}: {problem}"]) from None
    assert value is not None  # an ApiToken names exactly one of token_env and token_file
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
