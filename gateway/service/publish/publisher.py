"""The delivery loop: passes over a partner's outbox, each batch claimed, sent and settled in the store.

Delivered on a 2xx; due again later after timeouts, connection errors, 5xx and 429 (see `retry`); dead letter on
any other 4xx or past the attempts or age allowed. The partner's circuit breaker (see `breaker`) is asked before
a pass and told how each batch went.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

from structlog.typing import FilteringBoundLogger

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.domain.messages import MessageKind
from gateway.service import schedules
from gateway.service.publish.breaker import Breaker
from gateway.service.publish.routes import Sender
from gateway.settings import DeliverySettings, Settings
from gateway.store.port import BatchFailure, Claim, Store, UnitOfWork
from gateway.transport.errors import ApiConfigError, DeliveryFailed

if TYPE_CHECKING:
    from gateway.service.publish.attempts import Sent

log = logs.get(__name__)

Clock = Callable[[], Instant]
Sleep = Callable[[float], None]

_SECOND = 1_000_000
MAX_ERROR = 4000  # characters of an error kept with a message


@dataclass
class DeliveryReport:
    """What one delivery pass did for one partner."""

    partner: str
    delivered: int = 0
    batches: int = 0
    failed_batches: int = 0
    dead: int = 0
    breaker_open: bool = False
    errors: list[str] = field(default_factory=list)
    unrouted: list[MessageKind] = field(default_factory=list)
    not_configured: dict[MessageKind, str] = field(default_factory=dict)  # kind -> why its route cannot be used

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing went to dead letter."""
        return not (self.failed_batches or self.dead or self.breaker_open or self.not_configured)

    def summary(self) -> str:
        """One readable line."""
        text = f"{self.partner}: delivered {self.delivered} message(s) in {self.batches} batch(es)"
        if self.failed_batches:
            text += f"; {self.failed_batches} batch(es) failed and are due again later"
        if self.dead:
            text += f"; {self.dead} message(s) went to dead letter"
        if self.breaker_open:
            text += "; circuit breaker open: the partner is left alone until it may be probed"
        return text


def release_claims(store: Store) -> int:
    """Make every claim nobody's (the one worker of a SQLite store starting: a claim left by a worker that died
    is nobody's now), so its batch goes again (under its key) at once rather than after its lease; how many
    messages were released."""
    with store.write() as tx:
        return tx.outbox.release_claims()


@dataclass(eq=False)
class Publisher:
    """Delivery passes over the outbox, one partner at a time."""

    store: Store
    settings: Settings
    clock: Clock
    senders: Callable[[str], Mapping[MessageKind, Sender]]
    _: KW_ONLY
    sleep: Sleep = time.sleep
    rng: random.Random = field(default_factory=random.Random)  # jitter, not secrets
    breakers: dict[str, Breaker] = field(default_factory=dict, init=False)
    # set: finish the batch in hand, send no other
    stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def breaker(self, partner: str) -> Breaker:
        """The partner's circuit breaker (closed until it has failed)."""
        found = self.breakers.get(partner)
        if found is None:
            delivery = self.settings.partner(partner).delivery
            found = self.breakers[partner] = Breaker(delivery.breaker_threshold, delivery.breaker_pause)
        return found

    def deliver(self, partner: str) -> DeliveryReport:
        """One pass: send every due batch of the partner until none is due, a batch fails or the breaker opens."""
        report = DeliveryReport(partner)
        breaker = self.breaker(partner)
        now = self.clock()
        with self.store.read() as tx:
            partner_id = tx.partners.id_of(partner)
            # the breaker is kept in the store too: another process (a `gateway deliver`) respects it
            stored = tx.partners.breaker_open_until(partner_id)
            waiting = tx.outbox.pending_kinds(partner_id)
        breaker.adopt(stored)
        if not breaker.allows(now):
            report.breaker_open = True
            log.info("delivery_breaker_open", partner=partner, until=instant.to_iso(breaker.open_until))
            return report
        senders = self.senders(partner)
        report.unrouted = sorted(waiting - set(senders))
        # One request in flight per partner; the next batch is claimed while it travels.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"deliver-{partner}") as pool:
            for kind, sender in senders.items():
                if kind not in waiting:
                    continue
                try:
                    sender.prepare()
                except ApiConfigError as exc:  # this route cannot be used; the others still are
                    report.not_configured[kind] = str(exc)
                    log.error("delivery_not_configured", partner=partner, kind=kind, error=str(exc))
                    continue
                if not self._deliver_kind(partner, partner_id, kind, sender, pool, report):
                    break
        return report

    def _deliver_kind(
        self,
        partner: str,
        partner_id: int,
        kind: MessageKind,
        sender: Sender,
        pool: ThreadPoolExecutor,
        report: DeliveryReport,
    ) -> bool:
        """Send the due batches of one kind; False when the pass should stop."""
        settings = self.settings.partner(partner)
        delivery = settings.delivery
        breaker = self.breaker(partner)

        def claim_in(tx: UnitOfWork) -> Claim | None:
            now = self.clock()
            lease = now + int(delivery.lease_seconds * _SECOND)
            claim = tx.outbox.claim(partner_id, kind, now, delivery.batch_size, lease, uuid.uuid4().hex)
            if claim is None:
                return None
            # the schedule in force now, read in the claim's transaction (see service.schedules)
            return schedules.attach(tx, partner_id, claim, settings.zone, delivery.schedule_points)

        # While a batch travels, one transaction settles the batch before it (delivered) and claims the next.
        # A failed batch is settled at once, and nothing more is sent in this pass.
        with self.store.write() as tx:
            claim = claim_in(tx)
        delivered: tuple[Claim, Sent] | None = None
        while True:
            if claim is None:
                if delivered is None:
                    return True
                with self.store.write() as tx:
                    self._settle_delivered(tx, breaker, *delivered, report)
                    # a message replaced while its batch travelled was released just now: the pass takes it too
                    claim = None if self.stopping.is_set() else claim_in(tx)
                delivered = None
                if claim is None:
                    return True
            sending = pool.submit(self._send, partner, delivery, sender, claim)
            following: Claim | None = None
            try:
                with self.store.write() as tx:
                    if delivered is not None:
                        self._settle_delivered(tx, breaker, *delivered, report)
                    following = claim_in(tx)
                delivered = None
                sent = sending.result()
            except BaseException:
                self._give_back(following)  # an unsettled delivered batch is sent again after its lease
                raise
            if sent.error is not None:
                if not self._failed(partner, delivery, breaker, claim, sent.error, sent.attempts, report, sent.log):
                    self._give_back(following)
                    return False
            else:
                delivered = (claim, sent)
            claim = following
            if self.stopping.is_set() and claim is not None:
                self._give_back(claim)
                claim = None

    def _give_back(self, claim: Claim | None) -> None:
        if claim is not None:
            with self.store.write() as tx:
                tx.outbox.unclaim(claim)

    def _send(self, partner: str, delivery: DeliverySettings, sender: Sender, claim: Claim) -> Sent:
        """Send one batch, retrying within the pass (sleeping with the publisher's `sleep` of the moment)."""
        # tenacity loads with the first delivery: `gateway outbox`, which reads the routes here, does not need it
        from gateway.service.publish.attempts import send_batch  # noqa: PLC0415

        return send_batch(partner, delivery, sender, claim, clock=self.clock, sleep=self.sleep)

    def _keep_breaker(self, partner: str, breaker: Breaker) -> None:
        with self.store.write() as tx:
            tx.partners.set_breaker(tx.partners.id_of(partner), breaker.open_until)

    def _settle_delivered(
        self, tx: UnitOfWork, breaker: Breaker, claim: Claim, sent: Sent, report: DeliveryReport
    ) -> None:
        """Record a batch the partner took."""
        report.delivered += tx.outbox.settle_delivered(claim, sent.status, self.clock(), sent.attempts)
        report.batches += 1
        if breaker.success():
            tx.partners.set_breaker(tx.partners.id_of(claim.messages[0].partner), None)
            sent.log.info("delivery_breaker_closed")

    def _failed(
        self,
        partner: str,
        delivery: DeliverySettings,
        breaker: Breaker,
        claim: Claim,
        exc: DeliveryFailed,
        attempts: int,
        report: DeliveryReport,
        bound: FilteringBoundLogger,
    ) -> bool:
        now = self.clock()
        error = str(exc)[:MAX_ERROR]
        report.errors.append(error)
        failure = BatchFailure(attempts, exc.status, error)
        if not exc.retryable:
            with self.store.write() as tx:
                dead = tx.outbox.settle_dead(claim, failure)
            report.dead += dead
            bound.error(
                "delivery_dead", reason="refused", status=exc.status, attempt=attempts, messages=dead, error=error[:500]
            )
            if exc.refuses_all:
                breaker.trip(now)
                self._keep_breaker(partner, breaker)
                report.breaker_open = True
                bound.error(
                    "delivery_breaker_opened",
                    reason=f"HTTP {exc.status}: every batch would be refused",
                    until=instant.to_iso(breaker.open_until),
                )
                return False
            return True
        from gateway.service.publish import retry  # noqa: PLC0415 - as in _send

        total = max(m.attempts for m in claim.messages) + attempts
        next_at = now + int(retry.next_pass_delay(delivery, total, exc.retry_after, self.rng) * _SECOND)
        queued_before = now - int(delivery.max_age_hours * 3600 * _SECOND)
        with self.store.write() as tx:
            dead = tx.outbox.settle_failed(
                claim, failure, next_attempt_at=next_at, max_attempts=delivery.max_attempts, queued_before=queued_before
            )
        report.failed_batches += 1
        bound.warning(
            "delivery_retry",
            attempt=total,
            status=exc.status,
            next_attempt_at=instant.to_iso(next_at),
            in_pass=False,
            error=error[:500],
        )
        if dead:
            report.dead += dead
            bound.error(
                "delivery_dead",
                reason="attempts or age exhausted",
                status=exc.status,
                attempt=total,
                messages=dead,
                max_attempts=delivery.max_attempts,
                max_age_hours=delivery.max_age_hours,
            )
        if breaker.failure(now):
            self._keep_breaker(partner, breaker)
            report.breaker_open = True
            bound.warning(
                "delivery_breaker_opened", failures=breaker.failures, until=instant.to_iso(breaker.open_until)
            )
        return False
