"""The one composition root: builds the store and the use cases from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.service.commands import Commands
from gateway.service.engine import Engine
from gateway.service.ingest import Clock, Ingestor
from gateway.service.pickup import Pickup
from gateway.settings import FolderSource, Settings, SftpSource
from gateway.store.sql import SqlStore
from gateway.transport import folder, sftp
from gateway.transport.inbox import Inbox

log = logs.get(__name__)


def system_clock() -> Instant:
    """Now, as an instant."""
    return instant.from_datetime(datetime.now(UTC))


@dataclass
class App:
    """Everything a command or the worker needs, built once."""

    settings: Settings
    store: SqlStore
    clock: Clock
    ingestor: Ingestor
    commands: Commands
    pickup: Pickup

    def close(self) -> None:
        """Release the store."""
        self.store.close()


def sync_partners(store: SqlStore, settings: Settings, clock: Clock) -> None:
    """Register every configured partner; a partner whose stock mode changed gets its allocations recomputed."""
    for name, partner in settings.partners.items():
        with store.write() as tx:
            _, changed = tx.sync_partner(name, partner.policy, clock())
            if changed:
                fixed = Engine(tx, name, partner.policy, clock()).recompute()
                log.warning("partner_policy_changed", partner=name, stock_mode=partner.stock_mode.value, skus=fixed)


def open_inbox(source: FolderSource | SftpSource) -> Inbox:
    """The transport of a source, connected."""
    if isinstance(source, FolderSource):
        return folder.FolderInbox(source)
    inbox = sftp.SftpInbox(source)
    inbox.connect()
    return inbox


def build(settings: Settings, clock: Clock = system_clock) -> App:
    """Open the store (migrating it in place), register the partners and wire the use cases."""
    store = SqlStore.open(settings.store.url)
    sync_partners(store, settings, clock)
    return wire(settings, store, clock)


def wire(settings: Settings, store: SqlStore, clock: Clock = system_clock) -> App:
    """The use cases on an open store (its partners registered)."""
    ingestor = Ingestor(store, settings, clock)
    return App(
        settings=settings,
        store=store,
        clock=clock,
        ingestor=ingestor,
        commands=Commands(store, settings, clock),
        pickup=Pickup(store, settings, ingestor, clock, open_inbox),
    )
