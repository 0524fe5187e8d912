"""The table from kind to applier: every file kind and every feed has one, and files and pages share them."""

from __future__ import annotations

import pytest

from gateway import settings
from gateway.formats.pages import Feed
from gateway.formats.rows import Kind
from gateway.service.appliers import APPLIERS, Applier, applier


@pytest.mark.parametrize("kind", list(Kind))
def test_every_file_kind_has_an_applier_that_reads_files(kind: Kind) -> None:
    """A file of any kind the settings accept is applied by its kind's applier."""
    assert type(applier(kind)).apply_file is not Applier.apply_file


@pytest.mark.parametrize("feed", list(Feed))
def test_every_feed_has_an_applier_that_reads_pages(feed: Feed) -> None:
    """A page of any feed is read and applied by its feed's applier."""
    assert type(applier(feed)).read_page is not Applier.read_page
    assert type(applier(feed)).apply_page is not Applier.apply_page


def test_the_feeds_are_the_ones_the_settings_allow() -> None:
    """pages.Feed names the feeds settings.FEEDS lets a partner poll."""
    assert [f.value for f in Feed] == list(settings.FEEDS)


def test_files_and_pages_of_the_same_things_share_one_applier() -> None:
    """Stock files and stock pages, acknowledgements files and acknowledgements pages: one applier each (one word
    each); confirmations files have their own, which reads confirmation rows."""
    assert applier(Kind.STOCK) is applier(Feed.STOCK)
    assert applier(Kind.ACKNOWLEDGEMENTS) is applier(Feed.ACKNOWLEDGEMENTS)
    assert applier(Kind.CONFIRMATIONS) is not applier(Feed.ACKNOWLEDGEMENTS)
    assert set(APPLIERS) == {k.value for k in Kind} | {f.value for f in Feed}


def test_a_kind_that_never_comes_as_pages_says_so() -> None:
    """Orders come as files only: asking the orders applier for a page is a mistake, named."""
    with pytest.raises(TypeError, match="not applied from feed pages"):
        applier(Kind.ORDERS).apply_page(None, None)  # type: ignore[arg-type]
