"""`gateway check-config`: validate the configuration, every problem listed by key."""

from __future__ import annotations

import click
from sqlalchemy import make_url

from gateway.cli.state import State
from gateway.cli.terminal import echo


@click.command("check-config")
@click.pass_obj
def check_config(state: State) -> None:
    """Validate the configuration; list every problem by key (exit 2) or say it is fine."""
    config = state.settings()
    names = ", ".join(f"{n} ({p.stock_mode.value})" for n, p in sorted(config.partners.items())) or "none"
    url = make_url(config.store.url)
    shown = url.difference_update_query([k for k in url.query if k.lower() == "password"]).render_as_string(
        hide_password=True
    )
    echo(f"configuration is valid: store {shown}; partners: {names}")
