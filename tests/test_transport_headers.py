"""HSTS, Secure cookies and no Server header, on the login host, the console and proxied hosts.

Behind a TLS front the gateway hears plain http and trusts ``server.public_scheme`` for what
patrons use, so a plain-http test server configured with ``public_scheme = "https"`` is the
production setup, not a shortcut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from tests.patron_support import Browser
from tests.vendor_support import Vendor, gateway_settings

Client = Callable[..., Any]
Make = Callable[..., config.Settings]
PROXIED_WWW = "www-vendor-test.proxy.localhost:8080"
HSTS = "Strict-Transport-Security"


async def gateway(aiohttp_client: Client, make_settings: Make, vendor: Vendor,
                  **sections: dict[str, Any]) -> TestClient:  # fmt: skip
    settings = gateway_settings(make_settings, vendor, **sections)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return client


async def test_https_gateway_sends_hsts_on_login_console_and_proxied_pages(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    client = await gateway(aiohttp_client, make_settings, vendor, server={"public_scheme": "https"})
    patron = Browser(client)
    for path in ("/login", "/admin/login", "/no-such-page"):
        response = await patron.get(path)
        assert response.headers.getall(HSTS) == ["max-age=31536000"], path
    redirect = await patron.login()
    assert redirect.status == 302 and redirect.headers[HSTS] == "max-age=31536000"
    page = await patron.get("/own-policy", host=PROXIED_WWW)
    assert page.status == 200 and await page.text() == "policy"
    # The vendor's own "max-age=5; includeSubDomains; preload" is not what the patron gets.
    assert page.headers.getall(HSTS) == ["max-age=31536000"]


async def test_hsts_max_age_and_include_subdomains_come_from_the_settings(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    server = {"public_scheme": "https", "hsts_max_age": 600, "hsts_include_subdomains": True}
    client = await gateway(aiohttp_client, make_settings, vendor, server=server)
    response = await Browser(client).get("/login")
    assert response.headers[HSTS] == "max-age=600; includeSubDomains"


async def test_hsts_max_age_zero_sends_none_not_even_the_vendors(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    server = {"public_scheme": "https", "hsts_max_age": 0}
    patron = Browser(await gateway(aiohttp_client, make_settings, vendor, server=server))
    assert HSTS not in (await patron.get("/login")).headers
    assert (await patron.login()).status == 302
    assert HSTS not in (await patron.get("/own-policy", host=PROXIED_WWW)).headers


async def test_plain_http_gateway_sends_no_hsts(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    patron = Browser(await gateway(aiohttp_client, make_settings, vendor))
    assert HSTS not in (await patron.get("/login")).headers
    assert (await patron.login()).status == 302
    assert HSTS not in (await patron.get("/own-policy", host=PROXIED_WWW)).headers


async def test_console_on_its_own_https_origin_gets_hsts_where_the_login_host_is_http(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    admin = {"origin": "https://admin.library.test"}
    client = await gateway(aiohttp_client, make_settings, vendor, admin=admin)
    console = await Browser(client).get("/admin/login", host="admin.library.test")
    assert console.status == 200 and console.headers[HSTS] == "max-age=31536000"
    assert HSTS not in (await Browser(client).get("/login")).headers


async def test_no_server_header_names_software_on_gateway_or_proxied_pages(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    patron = Browser(await gateway(aiohttp_client, make_settings, vendor))
    for path in ("/login", "/no-such-page", "/admin/login"):
        assert "Server" not in (await patron.get(path)).headers, path
    assert "Server" not in (await patron.login()).headers
    # The vendor is an aiohttp server too, and /own-policy adds "VendorHTTPd/9.9 (Unix)".
    for path in ("/", "/own-policy"):
        page = await patron.get(path, host=PROXIED_WWW)
        assert page.status == 200 and "Server" not in page.headers, path


async def test_every_cookie_the_gateway_sets_over_https_is_secure(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    client = await gateway(aiohttp_client, make_settings, vendor, server={"public_scheme": "https"})
    patron = Browser(client)
    responses = [await patron.get("/login?lang=es"), await patron.login()]
    cookies = [c for r in responses for c in r.headers.getall("Set-Cookie", [])]
    names = {c.split("=", 1)[0] for c in cookies}
    assert {"carrel_lang", "__Host-carrel_form", "__Host-carrel_session"} <= names
    for cookie in cookies:
        assert "; Secure" in cookie or cookie.endswith("Secure"), cookie


async def test_language_cookie_over_plain_http_is_not_secure(
    aiohttp_client: Client, make_settings: Make, vendor: Vendor
) -> None:
    response = await Browser(await gateway(aiohttp_client, make_settings, vendor)).get(
        "/login?lang=es"
    )
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("carrel_lang="))
    assert "Secure" not in cookie  # a browser would not send it back over http
