"""Publish: deliver the outbox to partners, at least once, each request under an Idempotency-Key.

A delivery pass claims due messages in batches (one kind per batch), sends each batch through the partner's
route (its HTTP API, or an export file for order exports) and settles it in the store: delivered on a 2xx, due
again later after timeouts, connection errors, 5xx and 429 (exponential backoff with jitter, capped, and never
sooner than a Retry-After), dead letter on any other 4xx or past the attempts or age allowed. A batch sent
before without a known outcome is sent again with the same key. A per-partner circuit breaker stops a pass
from hammering a partner that keeps failing, and lets one batch probe it after a pause.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from structlog.typing import FilteringBoundLogger
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.stop import stop_base

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.formats.export import message_csv
from gateway.settings import MESSAGE_KINDS, DeliverySettings, PartnerSettings, Settings
from gateway.store.port import Claim, OutboxRecord, Store, Transaction
from gateway.transport.http import ApiConfigError, DeliveryFailed

log = logs.get(__name__)

Clock = Callable[[], Instant]
Sleep = Callable[[float], None]

_SECOND = 1_000_000
MAX_ERROR = 4000  # characters of an error kept with a message


class Sender(Protocol):
    """Where one kind of message goes: sends a claimed batch, returns the HTTP status (None for a file)."""

    def prepare(self) -> None:
        """Make sure the route can be used (its secrets read, its adapter loaded): ApiConfigError otherwise."""
        ...

    def send(self, claim: Claim) -> int | None:
        """Send the batch; raise DeliveryFailed (or TransportError) when it was not taken."""
        ...


class Api(Protocol):
    """What delivery needs of a partner API adapter."""

    def send(self, kind: str, idempotency_key: str, messages: Sequence[OutboxRecord]) -> int:
        """POST one batch."""
        ...


class ApiSender:
    """Sends batches to the partner's API (its adapter made on first use)."""

    def __init__(self, api: Callable[[], Api]) -> None:
        self.api = api

    def prepare(self) -> None:
        """Load the adapter (reads the API's secrets)."""
        self.api()

    def send(self, claim: Claim) -> int | None:
        """POST the batch with its id as the Idempotency-Key."""
        return self.api().send(claim.kind, claim.batch_id, claim.messages)


class Outbound(Protocol):
    """A folder files are delivered into (local or SFTP)."""

    def __enter__(self) -> Outbound: ...

    def __exit__(self, *_: object) -> None: ...

    def write(self, name: str, data: bytes) -> str:
        """Write a whole file under a temporary name, then rename it into place."""
        ...


FILE_PREFIXES = {"order_export": "orders", "order_closed": "closed", "ats": "ats", "channel_ats": "channel-ats"}


def export_name(partner: str, claim: Claim) -> str:
    """The file of a batch: the same name on a re-send, so a re-sent batch replaces its own file."""
    first = min(message.created_at for message in claim.messages)
    stamp = instant.to_datetime(first).strftime("%Y%m%dT%H%M%SZ")
    return f"{FILE_PREFIXES[claim.kind]}-{partner}-{stamp}-{claim.batch_id}.csv"


class FileExportSender:
    """Writes order export batches as CSV files into the partner's export folder."""

    def __init__(self, partner: str, delimiter: str, outbound: Callable[[], Outbound]) -> None:
        self.partner = partner
        self.delimiter = delimiter
        self.outbound = outbound

    def prepare(self) -> None:
        """Nothing to load: the folder is reached per batch."""

    def send(self, claim: Claim) -> int | None:
        """Write the batch's file."""
        data = message_csv(claim.kind, claim.messages, self.delimiter)
        with self.outbound() as folder:
            where = folder.write(export_name(self.partner, claim), data)
        log.info(
            "outbound_file_written", partner=self.partner, kind=claim.kind, file=where, messages=len(claim.messages)
        )
        return None


def routes(partner: PartnerSettings) -> dict[str, str]:
    """Where each kind of message goes: "api", "file" or nowhere (left out)."""
    found: dict[str, str] = {}
    for kind in MESSAGE_KINDS:
        if partner.export is not None and kind in partner.export.kinds:
            found[kind] = "file"
        elif partner.api is not None and kind in partner.api.deliver:
            found[kind] = "api"
    return found


@dataclass
class Breaker:
    """A partner's circuit breaker: open after `threshold` failed batches in a row, for `pause` seconds."""

    threshold: int
    pause: float
    failures: int = 0
    open_until: Instant | None = None

    def allows(self, now: Instant) -> bool:
        """Closed, or open long enough that one batch may probe the partner."""
        return self.open_until is None or now >= self.open_until

    def success(self) -> bool:
        """A batch went through; True when that closed an open breaker."""
        was_open = self.open_until is not None
        self.failures, self.open_until = 0, None
        return was_open

    def failure(self, now: Instant) -> bool:
        """A batch failed; True when that opened (or re-opened) the breaker."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + int(self.pause * _SECOND)
            return True
        return False

    def trip(self, now: Instant) -> None:
        """Open at once (the partner refused our credentials)."""
        self.failures = max(self.failures, self.threshold)
        self.open_until = now + int(self.pause * _SECOND)


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
    unrouted: list[str] = field(default_factory=list)
    not_configured: dict[str, str] = field(default_factory=dict)  # kind -> why its route cannot be used

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


@dataclass
class _Sent:
    """What came of sending one batch: the partner's status, or the error that ended the attempts."""

    log: FilteringBoundLogger
    attempts: int = 0
    status: int | None = None
    error: DeliveryFailed | None = None


class _InPassLimit(stop_base):
    """Stops retrying within a pass when the partner asks for a longer wait than a pass may spend."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return isinstance(error, DeliveryFailed) and (error.retry_after or 0.0) > self.limit


def _described(error: BaseException) -> str:
    return logs.scrub(f"{type(error).__name__}: {error}")


def _retryable(error: BaseException) -> bool:
    return isinstance(error, DeliveryFailed) and error.retryable


class Publisher:
    """Delivery passes over the outbox, one partner at a time."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        senders: Callable[[str], Mapping[str, Sender]],
        *,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.senders = senders
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.breakers: dict[str, Breaker] = {}
        self.stopping = threading.Event()  # set: finish the batch in hand, send no other

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
            partner_id = tx.partner_id(partner)
            # the breaker is kept in the store too: another process (a `gateway deliver`) respects it
            stored = tx.breaker_open_until(partner_id)
            waiting = tx.pending_kinds(partner_id)
        if stored is not None and (breaker.open_until is None or stored > breaker.open_until):
            breaker.open_until, breaker.failures = stored, max(breaker.failures, breaker.threshold)
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
        kind: str,
        sender: Sender,
        pool: ThreadPoolExecutor,
        report: DeliveryReport,
    ) -> bool:
        """Send the due batches of one kind; False when the pass should stop."""
        delivery = self.settings.partner(partner).delivery
        breaker = self.breaker(partner)

        def claim_in(tx: Transaction) -> Claim | None:
            now = self.clock()
            lease = now + int(delivery.lease_seconds * _SECOND)
            return tx.claim(partner_id, kind, now, delivery.batch_size, lease, uuid.uuid4().hex)

        # While a batch travels, one transaction settles the batch before it (delivered) and claims the next.
        # A failed batch is settled at once, and nothing more is sent in this pass.
        with self.store.write() as tx:
            claim = claim_in(tx)
        delivered: tuple[Claim, _Sent] | None = None
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
                tx.unclaim(claim)

    def _send(self, partner: str, delivery: DeliverySettings, sender: Sender, claim: Claim) -> _Sent:
        """Send one batch, retrying within the pass; what came of it."""
        bound = log.bind(
            partner=partner,
            kind=claim.kind,
            batch=claim.batch_id,
            batch_size=len(claim.messages),
            run_ids=claim.run_ids[:20],  # the inbound items whose values these are: grep one to follow it here
        )
        sent = _Sent(bound)

        def attempt() -> int | None:
            sent.attempts += 1
            resend = claim.resend or sent.attempts > 1
            try:
                status = sender.send(claim)
            except Exception as exc:
                failed = (
                    exc
                    if isinstance(exc, DeliveryFailed)
                    else DeliveryFailed(logs.scrub(f"{type(exc).__name__}: {exc}"))
                )
                bound.warning(
                    "delivery_attempt",
                    attempt=sent.attempts,
                    resend=resend,
                    outcome="failed",
                    status=failed.status,
                    error=str(exc)[:500],
                )
                if failed is exc:
                    raise
                raise failed from exc
            bound.info("delivery_attempt", attempt=sent.attempts, resend=resend, outcome="delivered", status=status)
            return status

        def before_sleep(state: RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action else 0.0
            error = state.outcome.exception() if state.outcome else None
            bound.warning(
                "delivery_retry",
                attempt=state.attempt_number,
                status=getattr(error, "status", None),
                wait_seconds=round(wait, 3),
                next_attempt_at=instant.to_iso(self.clock() + int(wait * _SECOND)),
                in_pass=True,
            )

        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(delivery.retries) | _InPassLimit(delivery.wait_in_pass_max),
            wait=self._wait(delivery),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            sent.status = retrying(attempt)
        except DeliveryFailed as exc:
            sent.error = exc
        return sent

    def _keep_breaker(self, partner: str, breaker: Breaker) -> None:
        with self.store.write() as tx:
            tx.set_breaker(tx.partner_id(partner), breaker.open_until)

    def _settle_delivered(
        self, tx: Transaction, breaker: Breaker, claim: Claim, sent: _Sent, report: DeliveryReport
    ) -> None:
        """Record a batch the partner took."""
        report.delivered += tx.settle_delivered(claim, sent.status, self.clock(), sent.attempts)
        report.batches += 1
        if breaker.success():
            tx.set_breaker(tx.partner_id(claim.messages[0].partner), None)
            sent.log.info("delivery_breaker_closed")

    def _wait(self, delivery: DeliverySettings) -> Callable[[RetryCallState], float]:
        backoff = wait_random_exponential(multiplier=delivery.backoff_initial, max=delivery.wait_in_pass_max)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, DeliveryFailed) and error.retry_after is not None:
                return error.retry_after  # honoured as asked: never sooner
            return float(backoff(state))

        return wait

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
        if not exc.retryable:
            with self.store.write() as tx:
                dead = tx.settle_dead(claim, attempts=attempts, status=exc.status, error=error, now=now)
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
        total = max(m.attempts for m in claim.messages) + attempts
        delay = min(delivery.backoff_max, delivery.backoff_initial * 2 ** min(total, 40)) * self.rng.uniform(0.5, 1.0)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        next_at = now + int(delay * _SECOND)
        queued_before = now - int(delivery.max_age_hours * 3600 * _SECOND)
        with self.store.write() as tx:
            dead = tx.settle_failed(
                claim,
                attempts=attempts,
                status=exc.status,
                error=error,
                next_attempt_at=next_at,
                max_attempts=delivery.max_attempts,
                queued_before=queued_before,
                now=now,
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
