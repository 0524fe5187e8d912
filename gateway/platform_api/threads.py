"""The platform API's commands run on threads of their own, each within `[api] write_wait` of its request's arrival.

The reads run on the event loop's default thread pool. A command waiting for the store's writer (on SQLite, a large
file being applied holds it for as long as it takes) holds one of the command threads, never one a read needs: a
crowd of placements waiting for the writer leaves the reads answering as fast as ever. A command that does not get
the writer within what is left of the wait (its wait for a thread counts) ends with StoreBusy: a 503 at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from anyio.lowlevel import RunVar

from gateway.service.commands import API, Commands

COMMAND_THREADS = 40  # commands in flight at once; the others wait for a thread (within their write_wait)

_T = TypeVar("_T")
_LIMITER: RunVar[anyio.CapacityLimiter] = RunVar("gateway_command_threads")


def _limiter() -> anyio.CapacityLimiter:
    """The command threads of the running event loop."""
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(COMMAND_THREADS)
        _LIMITER.set(limiter)
        return limiter


async def run_command(commands: Commands, write_wait: float, run: Callable[[Commands], _T]) -> _T:
    """`run(commands)` on a command thread, the commands waiting for the store's writer at most what is left of
    `write_wait` seconds from now (and named, in the orders' histories, as given on the API)."""
    deadline = time.monotonic() + write_wait

    def call() -> _T:
        return run(commands.waiting(max(0.0, deadline - time.monotonic())).given_on(API))

    return await anyio.to_thread.run_sync(call, limiter=_limiter())
