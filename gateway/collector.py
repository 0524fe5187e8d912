"""The cyclic garbage collector paused for a block: where millions of short-lived acyclic objects are made (a
snapshot's rows) or a command's modules are imported, its generation scans cost time and reclaim nothing that
reference counting does not."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The block runs with the cyclic collector paused; restored as it was (one disabled before stays so),
    whatever happens."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
