"""Trusted fronts: their X-Forwarded-For is believed, nobody else's."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import DummyCookieJar

from gateway import config
from gateway.app import build_app
from gateway.edge.client import forwarded_address, networks
from tests.patron_support import Browser, prepare

FRONT = networks(("10.0.0.0/8",))


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("10.1.1.1", "203.0.113.7", "203.0.113.7"),  # the front says who it serves
        ("10.1.1.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the rightmost untrusted hop
        ("10.1.1.1", "203.0.113.7, 10.2.2.2", "203.0.113.7"),  # a second trusted hop is skipped
        ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # not a front: its header is ignored
        ("10.1.1.1", "", "10.1.1.1"),
        ("10.1.1.1", "not-an-address", "10.1.1.1"),
        ("10.1.1.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_forwarded_address(peer: str, header: str, expected: str) -> None:
    assert forwarded_address(peer, header, FRONT) == expected


def test_bad_trusted_proxy_entry_names_the_key() -> None:
    with pytest.raises(config.ConfigError, match=r"server\.trusted_proxies"):
        config.build({"server": {"trusted_proxies": ["nonsense"]}}, env={})
    assert config.build({"server": {"trusted_proxies": ["10.0.0.0/8", "::1"]}}, env={})
    assert ipaddress.ip_network("::1") in networks(("::1",))


async def test_lockouts_count_per_forwarded_address_only_behind_a_trusted_front(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings]
) -> None:
    settings = make_settings(
        server={"trusted_proxies": ["127.0.0.1"]}, lockout={"address_failures": 3}
    )
    prepare(settings)
    client = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())

    async def attempt(forwarded: str, pin: str) -> int:
        browser = Browser(client)
        page = await client.get(
            "/login", headers={**browser.headers(), "X-Forwarded-For": forwarded}
        )
        browser._remember(page)
        token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
        response = await client.post(
            "/login",
            data={"csrf_token": token, "card": "21234000000002", "pin": pin, "url": ""},
            headers={**browser.headers(), "X-Forwarded-For": forwarded},
            allow_redirects=False,
        )
        return response.status

    for _ in range(3):
        assert await attempt("203.0.113.7", "9051") == 401
    assert await attempt("203.0.113.7", "9052") == 429  # that patron's address is throttled
    assert (
        await attempt("198.51.100.1", "5830") == 302
    )  # another patron behind the same front is not
