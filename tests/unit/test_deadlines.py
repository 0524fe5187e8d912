"""The deadline of a partner HTTP exchange: one thread per process expires each at its time and shuts the
exchange's sockets; an exchange over in time is left alone."""

from __future__ import annotations

import socket
import time

from gateway.transport.bounds import Deadline


def _expires(deadline: Deadline, within: float = 5.0) -> bool:
    """Whether `deadline` expires within `within` seconds (waited for, polling)."""
    limit = time.monotonic() + within
    while not deadline.expired:
        if time.monotonic() > limit:
            return False
        time.sleep(0.005)
    return True


def test_an_expired_deadline_shuts_the_sockets_of_its_exchange() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, Deadline(0.05) as deadline:
        deadline.watch(ours)
        ours.settimeout(10)
        started = time.monotonic()
        assert ours.recv(1) == b""  # woken by the shutdown, long before its own timeout
        assert time.monotonic() - started < 5
        assert deadline.expired


def test_a_sooner_deadline_begun_after_a_later_one_expires_at_its_own_time() -> None:
    with Deadline(3600) as later:
        with Deadline(0.05) as sooner:  # the watcher sleeps until the later one: it is woken for this one
            assert _expires(sooner)
        assert not later.expired


def test_an_exchange_over_before_its_deadline_is_never_expired() -> None:
    with Deadline(0.02) as over:
        pass
    with Deadline(0.05) as after:  # expired after `over` came due: the watcher went past it by then
        assert _expires(after)
    assert not over.expired


def test_a_socket_shown_after_the_deadline_passed_is_shut_at_once() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, Deadline(0.01) as deadline:
        assert _expires(deadline)
        deadline.watch(ours)
        ours.settimeout(10)
        assert ours.recv(1) == b""
