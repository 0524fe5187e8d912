"""What every command shares: the top-level options, the settings loaded once, the app built on first use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from gateway import settings
from gateway.cli.errors import ConfigProblems, UsageProblem
from gateway.cli.loading import collector_paused
from gateway.domain import instant
from gateway.settings import PartnerSettings
from gateway.store.errors import StoreError

if TYPE_CHECKING:
    from gateway import bootstrap


class State:
    """What the top-level options chose; the app is built on first use, not for --help."""

    def __init__(self, config: str | None, quiet: bool) -> None:
        self.config = config
        self.quiet = quiet
        self._settings: settings.Settings | None = None

    def settings(self) -> settings.Settings:
        """The configuration, loaded once (its problems end the command, exit 2)."""
        if self._settings is None:
            try:
                path = settings.config_path(self.config, os.environ)
                self._settings = settings.load(path)
            except settings.ConfigError as exc:
                raise ConfigProblems(exc) from exc
        return self._settings

    def partner(self, name: str) -> PartnerSettings:
        """The settings of partner `name` (an unknown partner ends the command, exit 2)."""
        try:
            return self.settings().partner(name)
        except settings.ConfigError as exc:
            raise ConfigProblems(exc) from exc

    @contextmanager
    def app(self, partner: str | None = None) -> Iterator[bootstrap.App]:
        """The app for one command (checking `partner` is configured first), closed when the block ends."""
        with collector_paused():  # the store's libraries load for a command that uses it (see gateway.cli.loading)
            from gateway import bootstrap  # noqa: PLC0415

        config = self.settings()
        if partner is not None:
            self.partner(partner)
        try:
            built = bootstrap.build(config)
        except StoreError as exc:
            raise UsageProblem(f"gateway: cannot open the store: {exc}") from exc
        try:
            yield built
        finally:
            built.close()


def parse_instant(text: str | None, zone_of: str, state: State) -> int | None:
    """`text` as an instant in partner `zone_of`'s time zone (a naive time is the partner's), or None for None."""
    if text is None:
        return None
    try:
        return instant.parse(text, state.settings().partner(zone_of).zone)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def listed_partner(ctx: click.Context, partner: str | None) -> str | None:
    """For a group that lists something without a sub-command (outbox, ledger): None when a sub-command runs,
    else the partner the listing is of (a usage error without --partner)."""
    if ctx.invoked_subcommand is not None:
        return None
    if partner is None:
        raise click.UsageError("Missing option '--partner'.")
    return partner
