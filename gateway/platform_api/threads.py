"""The platform API's commands run on threads of their own, each within `[api] write_wait` of its request's arrival.

The reads run on the framework's own thread pool. A command waiting for the store's writer (on SQLite, a large file
being applied holds it for as long as it takes) holds one of the command threads, never one a read needs: a crowd
of placements waiting for the writer leaves the reads answering as fast as ever. A command that does not get the
writer within what is left of the wait (its wait for a thread counts) ends with StoreBusy: a 503 at once.

The command threads are a plain executor of the process (threads start when first needed): handing a command to
one costs the event loop a fraction of what anyio's worker threads and capacity limiter do, on the busiest path.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.service.commands import API, Commands

COMMAND_THREADS = 40  # commands in flight at once; the others wait for a thread (within their write_wait)

_T = TypeVar("_T")
_COMMANDS = ThreadPoolExecutor(max_workers=COMMAND_THREADS, thread_name_prefix="api-command")


async def run_command(commands: Commands, write_wait: float, run: Callable[[Commands], _T]) -> _T:
    """`run(commands)` on a command thread (in the caller's context), the commands waiting for the store's writer
    at most what is left of `write_wait` seconds from now (and named, in the orders' histories, as given on the
    API)."""
    deadline = time.monotonic() + write_wait

    def call() -> _T:
        return run(commands.waiting(max(0.0, deadline - time.monotonic())).given_on(API))

    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_COMMANDS, context.run, call)
