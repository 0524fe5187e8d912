"""The redirect rule of partner HTTP exchanges: only the same scheme, host and port is the same origin."""

from __future__ import annotations

import pytest

from gateway.transport.bounds import same_origin, show_origin

BASE = "https://api.acme.example/gateway/v1/stock"


@pytest.mark.parametrize(
    "target",
    [
        "https://api.acme.example/gateway/v1/stock?cursor=2",
        "https://api.acme.example:443/elsewhere",  # the default port, said
        "https://API.Acme.Example/gateway/v1/stock",  # host names are not case-sensitive
    ],
)
def test_the_same_scheme_host_and_port_is_the_same_origin(target: str) -> None:
    """A redirect within the partner's own API is followed, whatever its path and query."""
    assert same_origin(BASE, target)


@pytest.mark.parametrize(
    "target",
    [
        "http://api.acme.example/gateway/v1/stock",  # another scheme (a downgrade)
        "https://api.acme.example:8443/gateway/v1/stock",  # another port
        "https://evil.example/gateway/v1/stock",  # another host
        "https://api.acme.example.evil.example/",  # a host that only starts the same
        "https://api.acme.example:notaport/",  # unreadable
        "//evil.example/x",  # no scheme
    ],
)
def test_another_scheme_host_or_port_is_another_origin(target: str) -> None:
    """A redirect anywhere else is refused."""
    assert not same_origin(BASE, target)


def test_an_origin_is_shown_without_path_query_or_credentials() -> None:
    """What an error says of where a redirect pointed: scheme, host and port only."""
    assert show_origin("https://user:pw@evil.example:8443/p?token=abc") == "https://evil.example:8443"
    assert show_origin("http://[::1]/x") == "http://[::1]:80"
    assert show_origin("https://h:notaport/") == "an unreadable URL"
