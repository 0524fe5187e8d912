"""The byte checks of the COPY path (store/sql/snapshot_copy.py): a file is sent to the server in blocks, and what
the server would read differently from the Python reader must be caught wherever the blocks split it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store.sql.snapshot_copy import NotPlain, _Scan


def plain(data: bytes, limit: int, cuts: list[int]) -> bool:
    """Whether the scan takes `data` sent in blocks cut at `cuts`."""
    scan = _Scan(limit)
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    try:
        for start, end in itertools.pairwise(edges):
            scan.block(data[start:end])
        scan.end()
    except NotPlain:
        return False
    return True


def expected(data: bytes, limit: int) -> bool:
    """The rule, line by line: no quote, no backslash, a carriage return only before a line feed, no line (its
    carriage return counted) longer than `limit` bytes."""
    if b'"' in data or b"\\" in data or data.replace(b"\r\n", b"").count(b"\r"):
        return False
    return all(len(line) <= limit for line in data.split(b"\n"))


@given(
    data=st.lists(st.sampled_from([b"a", b"bc", b",", b"\n", b"\r\n", b"\r", b'"', b"\\", b"x" * 9]), max_size=30).map(
        b"".join
    ),
    limit=st.integers(1, 12),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_the_scan_applies_the_rule_wherever_the_blocks_are_cut(data: bytes, limit: int, cuts: list[int]) -> None:
    assert plain(data, limit, cuts) == expected(data, limit)


@pytest.mark.parametrize(
    ("data", "taken"),
    [
        (b"sku,quantity\nA,1\r\nB,2\r\n", True),
        (b"sku,quantity\nA,1\r", False),  # a lone carriage return at the very end
        (b"sku,quantity\nA,1\rB,2\n", False),
        (b'sku,quantity\n"A",1\n', False),
        (b"sku,quantity\n\\.\nB,2\n", False),  # COPY's end-of-data line
        (b"sku,quantity\n" + b"A" * 20 + b",1\n", False),
    ],
)
def test_examples(data: bytes, taken: bool) -> None:
    assert plain(data, 16, []) == taken
    assert plain(data, 16, list(range(len(data)))) == taken  # one byte per block
