"""The composition root makes each use case on first use, once, whatever the threads asking: a command builds
the one or two it needs, the worker's loops and the API's requests share one of each."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from gateway.service.feeds import FeedPoller
from tests.conftest import AppFactory


def test_a_use_case_is_made_on_first_use_and_then_kept(make_app: AppFactory) -> None:
    """Nothing made by build() but the store; the same publisher (and its ingestor) on every later use."""
    app = make_app(shop={"stock_mode": "simple"})
    assert {"ingestor", "commands", "pickup", "apis", "feed_apis", "feeds", "publisher"}.isdisjoint(vars(app))
    assert app.publisher is app.publisher
    assert app.pickup.ingestor is app.ingestor


def test_threads_asking_at_once_share_one_feed_poller(make_app: AppFactory) -> None:
    """Eight threads' first uses, released together, get the same object."""
    app = make_app(shop={"stock_mode": "simple"})
    start = threading.Barrier(8)

    def first_use() -> FeedPoller:
        start.wait(timeout=10)
        return app.feeds

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: first_use(), range(8)))
    assert all(poller is found[0] for poller in found)
