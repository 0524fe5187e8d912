"""How the command line imports what a command needs: on first use, with the cyclic garbage collector paused.

Importing the settings' models, SQLAlchemy and the store makes hundreds of thousands of long-lived objects
(classes, functions, schemas) and no garbage; the collector, triggered by the allocations, walks them again and
again for nothing: about a tenth of a command's start. It is paused for the imports alone, never while a command
runs (an ingest or the worker make garbage and need it).

When the command is done, the process ends: at exit the collector would walk every object once more, for nothing
(about a seventh of a question's time). `leaving()` freezes them first: they are still freed and their
finalizers run as at any exit; the collector just does not look at them.
"""

from __future__ import annotations

import gc
import importlib
from types import ModuleType

from gateway import collector

collector_paused = collector.paused  # the name this module's callers and tests know


def imported(name: str) -> ModuleType:
    """Module `name`, imported with the collector paused."""
    with collector_paused():
        return importlib.import_module(name)


def leaving() -> None:
    """The command is done and the process ends: the objects it made are left out of the collector's last walks."""
    gc.freeze()
