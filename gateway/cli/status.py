"""`gateway status`: one screen of the worker's health (asked of its endpoint) and each partner's last hour and
outbox (read from the store)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click

from gateway import settings, views
from gateway.cli.state import State
from gateway.cli.terminal import echo
from gateway.domain.outcomes import Outcome
from gateway.service import outbox_view


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--health-url", help="The running worker's endpoint (default: from [worker] in the configuration).")
@click.pass_obj
def status(state: State, as_json: bool, health_url: str | None) -> None:
    """One screen: each source's last successful poll and error, the last hour's items, the outbox, dead letters."""
    config = state.settings()
    url = health_url or _health_url(config)
    worker_view: dict[str, Any] | None = None
    worker_error: str | None = None
    if url is None:
        worker_error = "the worker has no health endpoint ([worker] health_port)"
    else:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=3) as answer:  # noqa: S310 - a local http URL
                worker_view = json.loads(answer.read())
        except urllib.error.HTTPError as exc:  # 503: not ready, and the body says why
            worker_view = json.loads(exc.read() or b"{}")
        except (OSError, ValueError) as exc:
            worker_error = f"no worker answers at {url}: {exc}"
    with state.app() as app:
        now = app.clock()
        partners = outbox_view.partner_status(app.store, config.partners, now)
    summary = {
        "worker": {
            "reachable": worker_view is not None,
            "ready": bool(worker_view and worker_view.get("ready")),
            "error": worker_error,
            "problems": (worker_view or {}).get("problems", []),
        },
        "sources": (worker_view or {}).get("sources", []),
        "partners": [views.partner_status(p, now) for p in partners],
    }
    if as_json:
        echo(json.dumps(summary))
        return
    _print_status(summary)


def _health_url(config: settings.Settings) -> str | None:
    if config.worker.health_port in (None, 0):
        return None
    host = config.worker.health_host
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{config.worker.health_port}"  # noqa: S104


def _print_status(summary: dict[str, Any]) -> None:
    worker_state = summary["worker"]
    if not worker_state["reachable"]:
        echo(f"worker: not reachable ({worker_state['error']})")
    else:
        echo(f"worker: {'ready' if worker_state['ready'] else 'NOT READY'}")
        for problem in worker_state["problems"]:
            echo(f"  ! {problem}")
    if summary["sources"]:
        echo("")
        echo(f"{'partner':<14} {'source':<28} {'last successful poll':<28} last error")
    for source in summary["sources"]:
        error = source["last_error"] or ""
        echo(f"{source['partner']:<14} {source['source']:<28} {source['last_ok'] or 'never':<28} {error[:60]}")
    echo("")
    echo(f"{'partner':<14} {'applied (1h)':>12} {'refused (1h)':>12} {'outbox':>8} {'oldest (s)':>10} {'dead':>6}")
    for partner in summary["partners"]:
        applied = sum(x["items"] for x in partner["last_hour"] if x["outcome"] == Outcome.APPLIED)
        refused = sum(
            x["items"] for x in partner["last_hour"] if x["outcome"] in (Outcome.REJECTED, Outcome.QUARANTINED)
        )
        refused += sum(x["rows_refused"] for x in partner["last_hour"] if x["outcome"] == Outcome.APPLIED)
        oldest = partner["oldest_undelivered_seconds"]
        echo(
            f"{partner['partner']:<14} {applied:>12} {refused:>12} {partner['outbox_depth']:>8} "
            f"{'-' if oldest is None else oldest:>10} {partner['dead_letters']:>6}"
        )
