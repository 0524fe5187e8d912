"""The console's pages: each parses its request, calls one service function and renders a template.

Reads run on the framework's thread pool in read transactions (never the writer); the one command, a dead letter's
retry, is a POST carrying the session's CSRF token and answered with a redirect to the outbox page (303)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway import bootstrap, logs
from gateway.access import CONSOLE
from gateway.platform_api.console import render
from gateway.platform_api.console.render import SourceStates, page
from gateway.platform_api.console.session import COOKIE, LIFETIME, PATH, Operator, Sessions
from gateway.service import console, dead_letters, outbox_view, reads

log = logs.get(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)

ITEMS_SHOWN = 50
DEAD_SHOWN = 100
MAX_SEARCH = 200
MAX_FORM = 4096  # bytes a console form may take (a token, a CSRF token, a path)


@dataclass
class Console:
    """What the console's pages share: the sessions, and what the worker knows of its sources."""

    sessions: Sessions
    sources: SourceStates


class LoginFirst(Exception):
    """No valid credentials on a page: the browser goes to the login form, then back to `target`."""

    def __init__(self, target: str) -> None:
        self.target = target


class Refused(Exception):
    """A console request refused: a page saying why, with its status."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


async def login_first(_request: Request, exc: LoginFirst) -> Response:
    return RedirectResponse(f"/console/login?{urlencode({'next': exc.target})}", status_code=303)


async def refused(_request: Request, exc: Refused) -> Response:
    return page("refused.html", exc.status, reason=exc.reason, operator=None)


def _console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def _gateway(request: Request) -> bootstrap.App:
    found: bootstrap.App = request.app.state.gateway
    return found


async def _operator(request: Request) -> Operator:
    """Who asks, by bearer header or session cookie; redirected to log in without either, 403 without the console
    scope."""
    authorization = request.headers.get("authorization")
    found = _console(request).sessions.operator(authorization, request.cookies.get(COOKIE))
    if found is None:
        if authorization:
            raise Refused(401, "this bearer token is not valid")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginFirst(target)
    if not found.grant.may(CONSOLE):
        raise Refused(403, f"the token of {found.grant.name} has no console scope")
    return found


Who = Annotated[Operator, Depends(_operator)]


def _partner(request: Request, operator: Operator, partner: str) -> bootstrap.App:
    """The gateway, once `partner` is known and the operator may see it (404, 403)."""
    gateway = _gateway(request)
    if partner not in gateway.settings.partners:
        raise Refused(404, f"partner {partner} is unknown")
    if not operator.grant.allows(partner):
        raise Refused(403, f"the token of {operator.grant.name} may not see partner {partner}")
    return gateway


def _visible(gateway: bootstrap.App, operator: Operator) -> list[str]:
    return [p for p in gateway.settings.partners if operator.grant.allows(p)]


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each); 413 past MAX_FORM bytes."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Refused(413, "this form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _safe_next(target: str | None) -> str:
    """Where a login goes back to: a console path only (never another site)."""
    if target and target.startswith(PATH) and not target.startswith("//") and "\\" not in target:
        return target
    return PATH


# logging in and out


@router.get("/login")
def login_form(next: str | None = None) -> Response:
    """The login form: a token with the console scope."""
    return page("login.html", target=_safe_next(next), problem=None, operator=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """A token given in the form: a session cookie (HttpOnly, SameSite=Strict) and back where the operator was."""
    fields = await _form(request)
    target = _safe_next(fields.get("next"))
    sessions = _console(request).sessions
    grant = sessions.tokens.grant_of(fields.get("token", "").strip())
    if grant is None:
        log.warning("console_login_refused", reason="unknown token")  # never the token itself
        return page("login.html", 401, target=target, problem="This token is not valid.", operator=None)
    if not grant.may(CONSOLE):
        log.warning("console_login_refused", reason="no console scope", holder=grant.name)
        return page("login.html", 403, target=target, problem="This token has no console scope.", operator=None)
    log.info("console_login", holder=grant.name)
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(
        COOKIE,
        sessions.issue(grant),
        max_age=LIFETIME,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


def _checked(operator: Operator, fields: dict[str, str]) -> None:
    """A session's form must carry its CSRF token (a bearer header needs none): 403 otherwise."""
    if operator.csrf is not None and fields.get("csrf") != operator.csrf:
        raise Refused(403, "this form has no valid CSRF token: reload the page and try again")


@router.post("/logout")
async def logout(request: Request, operator: Who) -> Response:
    """The session cookie dropped."""
    _checked(operator, await _form(request))
    answer = RedirectResponse("/console/login", status_code=303)
    answer.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
    return answer


# the pages


@router.get("/")
def overview(request: Request, operator: Who) -> Response:
    """Every partner the operator may see: its sources, last hour, outbox and last day."""
    gateway = _gateway(request)
    partners = _visible(gateway, operator)
    now = gateway.clock()
    found = console.overview(gateway.store, partners, now)
    states = _console(request).sources()
    shown = [
        (
            view,
            render.source_lines(view.partner, gateway.settings.partners[view.partner], states),
            render.chart(view.activity),
            render.seconds_since(view.outbox.oldest, now),
        )
        for view in found
    ]
    return page("overview.html", operator=operator, partners=partners, shown=shown, now=now)


@router.get("/partners/{partner}/items")
def items(
    request: Request,
    operator: Who,
    partner: str,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH)] = None,
) -> Response:
    """The partner's latest items, or those whose file name, sha256 or run_id matches `q`."""
    gateway = _partner(request, operator, partner)
    search = (q or "").strip() or None
    found = console.items(gateway.store, partner, search, ITEMS_SHOWN)
    return page(
        "items.html", operator=operator, partners=_visible(gateway, operator), partner=partner, q=search, items=found
    )


@router.get("/partners/{partner}/outbox")
def outbox(
    request: Request, operator: Who, partner: str, revived: int | None = None, left_dead: int | None = None
) -> Response:
    """The partner's outbox by kind and state with the oldest age, and its dead letters, each with a retry."""
    gateway = _partner(request, operator, partner)
    now = gateway.clock()
    config = gateway.settings.partner(partner)
    found = outbox_view.listing(gateway.store, partner, config, dead=True, limit=DEAD_SHOWN, now=now)
    ages = {(c.kind, c.state): render.seconds_since(c.oldest, now) for c in found.summary.counts}
    return page(
        "outbox.html",
        operator=operator,
        partners=_visible(gateway, operator),
        partner=partner,
        listing=found,
        ages=ages,
        revived=revived,
        left_dead=left_dead,
    )


@router.post("/partners/{partner}/dead-letters/{message_id}/retry")
async def retry(request: Request, operator: Who, partner: str, message_id: int) -> Response:
    """A dead letter queued again (the CSRF token checked first); back to the outbox page saying what it did."""
    _checked(operator, await _form(request))
    gateway = _partner(request, operator, partner)
    done = await run_in_threadpool(dead_letters.retry, gateway.store, partner, [message_id], gateway.clock())
    query = urlencode({"revived": done.revived, "left_dead": done.superseded})
    return RedirectResponse(f"/console/partners/{quote(partner, safe='')}/outbox?{query}", status_code=303)


@router.get("/partners/{partner}/ats")
def ats(
    request: Request, operator: Who, partner: str, sku: Annotated[str | None, Query(max_length=128)] = None
) -> Response:
    """A SKU's ATS and why it is what it is: the snapshot it stands on and every allocating line."""
    gateway = _partner(request, operator, partner)
    wanted = (sku or "").strip() or None
    found = None
    if wanted is not None:
        found = reads.explain(gateway.store, partner, gateway.settings.partner(partner).policy, wanted)
    return page(
        "ats.html", operator=operator, partners=_visible(gateway, operator), partner=partner, sku=wanted, found=found
    )
