"""Partner sync: the configured partners registered in the store, their allocations recomputed when their stock
mode changes."""

from __future__ import annotations

from collections.abc import Callable

from gateway import logs
from gateway.domain.instant import Instant
from gateway.service.engine import Engine
from gateway.service.oversold import log_oversold
from gateway.settings import Settings
from gateway.store.port import Store

log = logs.get(__name__)


def sync(store: Store, settings: Settings, clock: Callable[[], Instant]) -> None:
    """Register every configured partner; a partner whose stock mode changed gets its allocations recomputed.

    Partners registered as configured need no write (a command does not queue behind a worker's transaction)."""
    with store.read() as tx:
        known = tx.partners.policies()
    for name, partner in settings.partners.items():
        if known.get(name) == (partner.policy.mode.value, partner.policy.pending_allocation):
            continue
        with store.write() as tx:
            partner_id, changed = tx.partners.sync(name, partner.policy, clock())
            if changed:
                tx.locks.partner(partner_id)
                engine = Engine(tx, name, partner.policy, clock(), alone=True, zone=partner.zone)
                fixed = engine.recompute()
                log.warning("partner_policy_changed", partner=name, stock_mode=partner.stock_mode.value, skus=fixed)
                log_oversold(engine.oversold.report(), log.bind(partner=name))
