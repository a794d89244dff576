"""What a malicious or compromised vendor's responses may do, through the proxy to a real HTTPS
vendor on loopback: the vendor answers with whatever headers the test names (``/respond``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, DummyCookieJar

from gateway import config
from gateway.app import build_app
from tests.patron_support import Browser
from tests.test_proxy import proxied
from tests.vendor_support import (
    API,
    CDN,
    DOWN,
    PASS,
    UK,
    UK2,
    VENDOR_RULES,
    WWW,
    Vendor,
    gateway_settings,
)

RULES = (
    VENDOR_RULES
    + f"""Title Two labels of public suffix
URL https://{UK}/
HJ https://{UK}
HJ https://{UK2}
Option CookiePassThrough
Title Cookies in the browser
URL https://{PASS}/
HJ https://{PASS}
"""
)

SESSION_COOKIE = "libsess"
"""A configured session cookie name without the ``carrel_`` prefix."""


@pytest.fixture
async def patron(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> Browser:
    settings = gateway_settings(
        make_settings, vendor, RULES, sessions={"cookie_name": SESSION_COOKIE}
    )
    browser = Browser(await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar()))
    assert (await browser.login()).status == 302
    return browser


async def vendor_answers(patron: Browser, host: str, *headers: str) -> ClientResponse:
    """The patron asks ``host``; its vendor answers with ``headers`` ("Name: value")."""
    query = urlencode([("h", header) for header in headers])
    response = await patron.get(f"/respond?{query}", host=proxied(host))
    assert response.status == 200
    return response


async def cookies_seen(patron: Browser, host: str) -> str:
    """The Cookie header the vendor at ``host`` gets for the patron."""
    response = await patron.get("/cookie", host=proxied(host))
    return str(json.loads(await response.text())["cookie"])


GATEWAYS_OWN = [
    f"{SESSION_COOKIE}=attacker; Path=/",
    "carrel_session=attacker; Path=/",
    "carrel_form=attacker; Path=/",
    "CARREL_lang=xx; Path=/",
    "__Host-carrel_session=attacker; Path=/; Secure",
    "__secure-carrel_form=attacker; Path=/; Secure",
    "=carrel_session=attacker; Path=/",
]
"""Set-Cookie values that would set, shadow or stand for one of the gateway's cookies."""
BESIDE_THE_GATEWAYS = ["__host-anything=1; Path=/; Secure", "__SECURE-anything=1; Path=/; Secure"]
"""A vendor's own prefixed cookies: in the browser they would sit beside the gateway's."""


async def test_vendor_cannot_set_gateway_cookies_in_the_browser(patron: Browser) -> None:
    session = patron.cookies[SESSION_COOKIE]
    response = await vendor_answers(
        patron,
        PASS,
        *(f"Set-Cookie: {c}" for c in GATEWAYS_OWN + BESIDE_THE_GATEWAYS),
        "Set-Cookie: own=1; Path=/",
    )
    assert response.headers.getall("Set-Cookie") == ["own=1; Path=/; Domain=proxy.localhost"]
    assert patron.cookies[SESSION_COOKIE] == session
    assert (await patron.get("/menu")).status == 200  # still the patron's own session


async def test_vendor_cannot_store_gateway_cookies_in_the_server_side_jar(
    patron: Browser,
) -> None:
    await vendor_answers(
        patron,
        WWW,
        *(f"Set-Cookie: {c}; Domain=vendor.test" for c in GATEWAYS_OWN),
        "Set-Cookie: own=1; Path=/; Domain=vendor.test",
    )
    assert await cookies_seen(patron, API) == "own=1"


async def test_a_vendors_own_secure_prefixed_cookie_stays_in_the_jar(patron: Browser) -> None:
    """Sign-in libraries name their cookies so (``__Secure-next-auth.session-token``); the jar
    is only ever sent to the vendor, so keeping it there shadows nothing of the gateway's."""
    await vendor_answers(
        patron, WWW, "Set-Cookie: __Secure-token=1; Domain=vendor.test; Path=/; Secure"
    )
    assert await cookies_seen(patron, API) == "__Secure-token=1"
    assert "__Secure-token" not in patron.cookies


async def test_pass_through_vendor_never_gets_the_gateways_cookies(patron: Browser) -> None:
    patron.cookies["__Host-carrel_session"] = "the-patrons"
    patron.cookies["__Secure-staff"] = "the-librarians"
    patron.cookies["own"] = "1"
    assert await cookies_seen(patron, PASS) == "own=1"


async def test_domain_cookie_for_a_public_suffix_is_not_shared_with_other_sites(
    patron: Browser,
) -> None:
    await vendor_answers(
        patron, UK, "Set-Cookie: wide=1; Domain=co.uk; Path=/", "Set-Cookie: own=1; Path=/"
    )
    assert await cookies_seen(patron, UK2) == ""
    assert await cookies_seen(patron, UK) == "own=1"


async def test_pass_through_cookie_for_a_public_suffix_or_another_site_is_dropped(
    patron: Browser,
) -> None:
    response = await vendor_answers(
        patron,
        PASS,
        "Set-Cookie: tld=1; Domain=test; Path=/",
        "Set-Cookie: foreign=1; Domain=evil.example; Path=/",
        "Set-Cookie: own=1; Domain=pass.test; Path=/",
    )
    assert response.headers.getall("Set-Cookie") == ["own=1; Path=/; Domain=proxy.localhost"]


async def test_vendor_headers_that_act_beyond_its_host_are_dropped(patron: Browser) -> None:
    response = await vendor_answers(
        patron,
        WWW,
        'Clear-Site-Data: "cookies", "storage"',
        "Set-Login: logged-in",
        "Supports-Loading-Mode: credentialed-prerender",
        "Origin-Agent-Cluster: ?0",
        "Service-Worker-Allowed: /",
        'Alt-Svc: h3=":443"',
        "Access-Control-Allow-Origin: null",
        "Refresh: 0; url=https://evil.example/login",
        "X-Kept: yes",
    )
    names = {name.lower() for name in response.headers}
    assert "x-kept" in names
    dropped = {
        "clear-site-data", "set-login", "supports-loading-mode", "origin-agent-cluster",
        "service-worker-allowed", "alt-svc", "access-control-allow-origin", "refresh",
    }  # fmt: skip
    assert not names & dropped


async def test_refresh_to_a_proxied_or_relative_url_is_kept(patron: Browser) -> None:
    to_api = await vendor_answers(patron, WWW, f"Refresh: 5;https://{API}/next")
    assert to_api.headers["Refresh"] == f"5; url=http://{proxied(API)}/next"
    relative = await vendor_answers(patron, WWW, "Refresh: 1; url=/next")
    assert relative.headers["Refresh"] == "1; url=/next"


async def test_csp_wildcard_becomes_the_proxied_hosts_the_rules_name_under_it(
    patron: Browser,
) -> None:
    response = await vendor_answers(
        patron, WWW, "Content-Security-Policy: script-src 'self' *.vendor.test; img-src *.nope.test"
    )
    policy = response.headers["Content-Security-Policy"]
    hosts = " ".join(f"http://{proxied(h)}" for h in (WWW, API, CDN, DOWN))
    assert policy == f"script-src 'self' *.vendor.test {hosts}; img-src *.nope.test"
