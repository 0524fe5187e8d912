"""The operator console: server-rendered HTML pages under `/console/` of the platform API's port.

Per partner: its sources with their last poll and error, its latest items (searchable), its outbox and dead
letters (each with a retry), a SKU's ATS explained, and its last day hour by hour. A token with the `console`
scope opens it, as a bearer header or through the login form (a session cookie)."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.access import Tokens
from gateway.platform_api.console import pages
from gateway.platform_api.console.render import SourceStates
from gateway.platform_api.console.session import Sessions


def install(api: FastAPI, tokens: Tokens, sources: SourceStates | None = None) -> None:
    """The console's routes on `api`; `sources` tells what the worker knows of its sources (none for `gateway
    serve`, which polls nothing)."""
    api.state.console = pages.Console(Sessions(tokens), sources or (lambda: []))
    api.add_exception_handler(pages.LoginFirst, pages.login_first)  # type: ignore[arg-type]
    api.add_exception_handler(pages.Refused, pages.refused)  # type: ignore[arg-type]
    api.include_router(pages.router)
