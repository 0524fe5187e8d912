"""The retry policy of a batch: which failures another attempt may cure, how long to wait between attempts
within a pass (exponential backoff with jitter, capped, never sooner than a Retry-After), when to give up for
this pass, and when a batch that failed is due again in a later one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.stop import stop_base

from gateway.settings import DeliverySettings
from gateway.transport.errors import DeliveryFailed


class InPassLimit(stop_base):
    """Stops retrying within a pass when the partner asks for a longer wait than a pass may spend."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return isinstance(error, DeliveryFailed) and (error.retry_after or 0.0) > self.limit


def retryable(error: BaseException) -> bool:
    """A timeout, a connection error, a 5xx or a 429: sending the batch again may help."""
    return isinstance(error, DeliveryFailed) and error.retryable


def in_pass_wait(delivery: DeliverySettings) -> Callable[[RetryCallState], float]:
    """The wait before the next attempt within a pass: the partner's Retry-After, else jittered backoff."""
    backoff = wait_random_exponential(multiplier=delivery.backoff_initial, max=delivery.wait_in_pass_max)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, DeliveryFailed) and error.retry_after is not None:
            return error.retry_after  # honoured as asked: never sooner
        return float(backoff(state))

    return wait


def in_pass(
    delivery: DeliverySettings, sleep: Callable[[float], None], before_sleep: Callable[[RetryCallState], None]
) -> Retrying:
    """The attempts at one batch within a pass; the last failure is raised as it is."""
    return Retrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(delivery.retries) | InPassLimit(delivery.wait_in_pass_max),
        wait=in_pass_wait(delivery),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def next_pass_delay(delivery: DeliverySettings, attempts: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds until a batch that failed its pass is due again, after `attempts` attempts in all: doubling,
    capped, with jitter, and never sooner than the partner's Retry-After."""
    delay: float = min(delivery.backoff_max, delivery.backoff_initial * 2 ** min(attempts, 40)) * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
