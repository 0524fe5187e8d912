"""Who may call the platform API and open its console: bearer tokens scoped to partners and to uses (`api`,
`console`), kept hashed, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.secrets import SecretError, read_secret
from gateway.settings import NO_TOKENS, ApiToken, ConfigError, Settings

ALL_PARTNERS = "*"
API = "api"  # the partner routes under /v1
CONSOLE = "console"  # the operator console under /console/
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Grant:
    """One token: its holder's name, the digest of the token, the partners it may act for and its scopes."""

    name: str
    digest: bytes
    partners: frozenset[str]
    scopes: frozenset[str] = frozenset({API})

    def allows(self, partner: str) -> bool:
        """Whether the token may act for `partner`."""
        return ALL_PARTNERS in self.partners or partner in self.partners

    def may(self, scope: str) -> bool:
        """Whether the token may be used for `scope` (API, CONSOLE)."""
        return scope in self.scopes


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
        grants = [
            Grant(t.name, _digest(_read(t, environ)), frozenset(t.partners), frozenset(t.scopes))
            for t in settings.api.tokens
        ]
        return cls(grants)

    def grant(self, authorization: str | None) -> Grant | None:
        """The grant of an `Authorization: Bearer ...` header, or None. Every grant is compared (in constant
        time), so the answer takes as long whichever token matches."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.grant_of(token.strip())

    def grant_of(self, token: str) -> Grant | None:
        """The grant of a token as given (a login form's), or None; in constant time, as `grant`."""
        if not token:
            return None
        digest = _digest(token)
        found = None
        for grant in self.grants:
            if hmac.compare_digest(grant.digest, digest):
                found = grant
        return found

    def named(self, name: str) -> Grant | None:
        """The grant of the holder `name` (a console session names its holder), or None."""
        return next((grant for grant in self.grants if grant.name == name), None)
