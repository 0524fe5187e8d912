"""The attempts at one claimed batch within a pass: send, log each attempt, retry by the policy, and say what
came of it (the partner's status, or the error that ended the attempts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger
from tenacity import RetryCallState

from gateway import logs
from gateway.domain import instant
from gateway.domain.instant import Instant
from gateway.service.publish import retry
from gateway.service.publish.routes import Sender
from gateway.settings import DeliverySettings
from gateway.store.port import Claim
from gateway.transport.errors import DeliveryFailed

log = logs.get(__name__)

_SECOND = 1_000_000


@dataclass
class Sent:
    """What came of sending one batch: the partner's status, or the error that ended the attempts."""

    log: FilteringBoundLogger
    attempts: int = 0
    status: int | None = None
    error: DeliveryFailed | None = None


def described(error: BaseException) -> str:
    """The error as one line, its type named, secrets scrubbed."""
    return logs.scrub(f"{type(error).__name__}: {error}")


def send_batch(
    partner: str,
    delivery: DeliverySettings,
    sender: Sender,
    claim: Claim,
    *,
    clock: Callable[[], Instant],
    sleep: Callable[[float], None],
) -> Sent:
    """Send one batch, retrying within the pass; what came of it."""
    bound = log.bind(
        partner=partner,
        kind=claim.kind,
        batch=claim.batch_id,
        batch_size=len(claim.messages),
        run_ids=claim.run_ids[:20],  # the inbound items whose values these are: grep one to follow it here
    )
    sent = Sent(bound)

    def attempt() -> int | None:
        sent.attempts += 1
        resend = claim.resend or sent.attempts > 1
        try:
            status = sender.send(claim)
        except Exception as exc:
            failed = exc if isinstance(exc, DeliveryFailed) else DeliveryFailed(described(exc))
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
            next_attempt_at=instant.to_iso(clock() + int(wait * _SECOND)),
            in_pass=True,
        )

    try:
        sent.status = retry.in_pass(delivery, sleep, before_sleep)(attempt)
    except DeliveryFailed as exc:
        sent.error = exc
    return sent
