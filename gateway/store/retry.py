"""A transaction the database rolled back to untie it from another (a deadlock, a serialization failure) runs again.

Nothing of the rolled-back run was kept, so running the whole transaction again from its start is safe, and is
what PostgreSQL asks of its clients. A platform request's idempotency answer is kept in the same transaction as
its order: a run that was rolled back kept neither, the run that commits keeps both.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from gateway import logs
from gateway.store.errors import StoreContention

RETRIES = 3  # runs after the first, before the contention is reported (a 503 on the platform API)
PAUSE = 0.02  # seconds: up to this much (times the run's number) before a run again, drawn at random

_T = TypeVar("_T")
log = logs.get(__name__)


def retried(
    run: Callable[[], _T],
    *,
    what: str,
    retries: int = RETRIES,
    pause: Callable[[float], None] = time.sleep,
    context: Mapping[str, object] | None = None,
) -> _T:
    """`run()`, run again up to `retries` times while the store reports contention (logged as `store_contention`
    with `what` ran and `context`); the last contention is raised."""
    runs = 1
    while True:
        try:
            return run()
        except StoreContention as exc:
            if runs > retries:
                raise
            log.warning("store_contention", command=what, run=runs, error=str(exc), will_retry=True, **(context or {}))
            # apart, at random: the two transactions that met do not meet again at once
            pause(random.uniform(0, PAUSE * runs))  # noqa: S311 - jitter, not a secret
            runs += 1
