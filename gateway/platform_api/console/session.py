"""Who is at the console: a bearer header, or a session cookie set by the login form; and the CSRF token of a
session's forms.

The cookie never holds the token: it holds the holder's name, an expiry and an HMAC over both and the token's
digest, under a key drawn when the app is made. A session so ends when it expires, when the worker restarts or
reloads its configuration (a new key), and when the holder's token changes (another digest). The CSRF token of a
session is an HMAC of its cookie: nothing to store, and it changes with the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from gateway.access import Grant, Tokens

COOKIE = "gateway_console"
PATH = "/console/"
LIFETIME = 12 * 3600  # seconds a login lasts


@dataclass(frozen=True)
class Operator:
    """Someone at the console: the grant of the token, and the CSRF token of the session (None for a bearer
    header: a browser never sends one by itself, so a forged form cannot carry it)."""

    grant: Grant
    csrf: str | None


def _name(grant: Grant) -> str:
    return base64.urlsafe_b64encode(grant.name.encode("utf-8")).decode("ascii").rstrip("=")


class Sessions:
    """Issues and checks session cookies for the grants of `tokens`."""

    def __init__(self, tokens: Tokens, key: bytes | None = None) -> None:
        self.tokens = tokens
        self.key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, body: str, grant: Grant) -> str:
        return hmac.new(self.key, body.encode("ascii") + grant.digest, hashlib.sha256).hexdigest()

    def issue(self, grant: Grant, now: float | None = None) -> str:
        """A cookie value for `grant`, valid for LIFETIME seconds."""
        expires = int((time.time() if now is None else now) + LIFETIME)
        body = f"{expires}.{_name(grant)}"
        return f"{body}.{self._mac(body, grant)}"

    def check(self, value: str, now: float | None = None) -> Grant | None:
        """The grant of a cookie value this app issued and that has not expired, or None."""
        expires, _, rest = value.partition(".")
        encoded, _, mac = rest.partition(".")
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
        except ValueError:
            return None
        grant = self.tokens.named(name)
        if grant is None or not hmac.compare_digest(self._mac(f"{expires}.{encoded}", grant), mac):
            return None
        return grant

    def csrf(self, value: str) -> str:
        """The CSRF token of the session whose cookie is `value`."""
        return hmac.new(self.key, b"csrf:" + value.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def operator(self, authorization: str | None, cookie: str | None) -> Operator | None:
        """Who a request comes from: its bearer header, else its session cookie; None when neither is valid."""
        if authorization:
            grant = self.tokens.grant(authorization)
            return None if grant is None else Operator(grant, None)
        if cookie:
            grant = self.check(cookie)
            return None if grant is None else Operator(grant, self.csrf(cookie))
        return None
