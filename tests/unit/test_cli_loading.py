"""The command line pauses the cyclic collector while it imports a command's modules, and only then."""

from __future__ import annotations

import gc

from gateway.cli.loading import collector_paused, imported, leaving


def test_the_collector_is_paused_in_the_block_and_running_again_after() -> None:
    """Enabled before: disabled inside, enabled after, even when the block raises."""
    assert gc.isenabled()
    try:
        with collector_paused():
            assert not gc.isenabled()
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    """A process that turned the collector off keeps it off."""
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_imported_returns_the_module_with_the_collector_running_after() -> None:
    """The module named, and the collector as it was."""
    assert imported("gateway.cli.ats").__name__ == "gateway.cli.ats"
    assert gc.isenabled()


def test_leaving_leaves_every_object_out_of_the_collectors_walks() -> None:
    """After leaving(), the objects made so far are frozen (gc.get_freeze_count), the collector still running."""
    try:
        leaving()
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
    finally:
        gc.unfreeze()
