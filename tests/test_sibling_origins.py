"""A vendor page is a sibling origin of the login host: what it may not do to the gateway.

Each test reads as the attack: what the vendor's page (or a page elsewhere) makes the patron's
browser send, and what the gateway answers. Real gateway, real Redis, a real HTTPS vendor on
loopback. The browser-only parts (cookie-jar overflow, service workers) are in
tests/test_browser_sibling.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import SETTINGS
from gateway.auth import commands
from tests.patron_support import (
    CARD,
    LOGIN,
    OTHER_CARD,
    OTHER_PIN,
    PIN,
    TOKEN,
    VENDOR,
    Browser,
    ScopedBrowser,
)
from tests.vendor_support import VENDOR_RULES, Vendor, gateway_settings

SW_RULES = VENDOR_RULES.replace("Title Vendor\n", "Option ServiceWorkers\nTitle Vendor\n")


@pytest.fixture
async def plain(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:
    """A gateway patrons reach over plain http (development)."""
    settings = gateway_settings(make_settings, vendor)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return client


@pytest.fixture
async def tls(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:
    """A gateway patrons reach over https (behind a TLS front, as in production)."""
    settings = gateway_settings(make_settings, vendor, SW_RULES, server={"public_scheme": "https"})
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return client


# -- the session cookie over TLS --------------------------------------------------------------


async def test_over_tls_the_session_cookie_is_host_only_and_prefixed(tls: TestClient) -> None:
    browser = ScopedBrowser(tls)
    response = await browser.login()
    assert response.status == 302
    header = next(h for h in response.headers.getall("Set-Cookie") if "carrel_session" in h)
    assert header.startswith("__Host-carrel_session=")
    assert "Domain" not in header and "Secure" in header and "HttpOnly" in header
    assert browser.cookies(VENDOR) == []  # a proxied host gets nothing from the login host


async def test_over_tls_a_proxied_host_gets_its_own_cookie_by_handover(tls: TestClient) -> None:
    browser = ScopedBrowser(tls)
    await browser.login()
    first = await browser.get(f"https://{VENDOR}/page2?x=1")
    assert first.status == 302
    assert first.headers["Location"].startswith(f"https://{LOGIN}:8080/handover?n=")
    opening = await browser.follow(f"https://{VENDOR}/page2?x=1")
    html = await opening.text()
    assert opening.status == 200 and "Opening the database" in html
    assert [n for n, _ in browser.cookies(VENDOR)] == ["__Host-carrel_session"]
    # The page warms up the database's other hosts, each through its own round, so that the
    # vendor's first fetch() to its API host finds a session there.
    warm = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(urlsplit(u).hostname or "" for u in warm) == [
        "api-vendor-test.proxy.localhost",
        "cdn-vendor-test.proxy.localhost",
    ]
    for url in warm:
        assert (await browser.follow(url)).status == 204
    api = "api-vendor-test.proxy.localhost"
    assert [n for n, _ in browser.cookies(api)] == ["__Host-carrel_session"]
    assert re.search(r'href="/page2\?x=1"', html)
    again = await browser.get(f"https://{VENDOR}/")  # no more rounds once the host has it
    assert again.status == 200 and "api-vendor-test" in await again.text()
    assert (await browser.get(f"https://{api}/json")).status == 200


async def test_over_tls_an_image_from_a_host_without_a_session_goes_straight_on(
    tls: TestClient,
) -> None:
    """A subresource's hand-over ends in a redirect to it, never in the warm-up page: the
    browser would block HTML for an image (ORB). A host added to a database mid-session (an
    escaped host) first loads this way."""
    browser = ScopedBrowser(tls)
    await browser.login()
    url, image = f"https://{VENDOR}/logo.png", {"Sec-Fetch-Dest": "image"}
    for _ in range(3):  # the host, the login host, the host's code
        response = await browser.get(url, **image)
        assert response.status == 302, await response.text()
        url = response.headers["Location"]
        if url.startswith("/"):
            break
        assert "Opening the database" not in await response.text()
    assert url == "/logo.png"
    assert [n for n, _ in browser.cookies(VENDOR)] == ["__Host-carrel_session"]


async def test_over_tls_a_session_that_must_change_its_pin_is_handed_to_no_proxied_host(
    tls: TestClient,
) -> None:
    out = io.StringIO()
    assert commands.reset_pin(tls.app[SETTINGS], OTHER_CARD, out) == 0
    desk_pin = out.getvalue().split(": ")[1][:4]
    browser = ScopedBrowser(tls)
    assert (await browser.login(card=OTHER_CARD, pin=desk_pin)).status == 302
    landed = await browser.follow(f"https://{VENDOR}/page2?x=1")
    assert landed.status == 200 and "temporary PIN" in await landed.text()
    assert "__Host-carrel_session" not in dict(browser.cookies(VENDOR))  # no session there
    assert 'name="url" value="https://www.vendor.test/page2?x=1"' in await landed.text()


async def test_a_handover_code_does_not_plant_its_session_in_another_browser(
    tls: TestClient,
) -> None:
    attacker = ScopedBrowser(tls)
    await attacker.login(OTHER_CARD, OTHER_PIN)
    asked = await attacker.get(f"https://{VENDOR}/")
    to_login = await attacker.get(asked.headers["Location"])
    code_url = to_login.headers["Location"]
    assert "/__carrel/handover?code=" in code_url  # the attacker stops here and sends the link

    victim = ScopedBrowser(tls)
    await victim.login()
    landed = await victim.get(code_url)
    assert landed.status == 302
    assert not any(n == "__Host-carrel_session" for n, _ in victim.cookies(VENDOR))
    assert urlsplit(landed.headers["Location"]).path == "/handover"  # round with its own session
    page = await victim.follow(landed.headers["Location"])
    assert page.status == 200
    victim_value = dict(victim.cookies(VENDOR))["__Host-carrel_session"]
    assert victim_value == dict(victim.cookies(LOGIN))["__Host-carrel_session"]  # the victim's


async def test_a_handover_code_works_once(tls: TestClient) -> None:
    browser = ScopedBrowser(tls)
    await browser.login()
    asked = await browser.get(f"https://{VENDOR}/")
    code_url = (await browser.get(asked.headers["Location"])).headers["Location"]
    nonce = dict(browser.cookies(VENDOR))["__Host-carrel_handover"]
    assert "__Host-carrel_session" in (await browser.get(code_url)).headers["Set-Cookie"]
    replay = ScopedBrowser(tls)  # the same code and nonce in a second browser
    replay.jar[(VENDOR, "__Host-carrel_handover")] = nonce
    second = await replay.get(code_url)
    assert (
        "Set-Cookie" not in second.headers or "carrel_session" not in second.headers["Set-Cookie"]
    )


async def test_over_tls_a_parent_domain_session_cookie_is_ignored(tls: TestClient) -> None:
    browser = ScopedBrowser(tls)
    await browser.login()
    raw = dict(browser.cookies(LOGIN))["__Host-carrel_session"]
    planted = ScopedBrowser(tls)  # a sibling set the right value, but for the parent domain
    planted.jar[(".proxy.localhost", "carrel_session")] = raw
    response = await planted.get(f"https://{VENDOR}/")
    assert response.status == 302 and "/handover?" in response.headers["Location"]


# -- two values for one cookie ----------------------------------------------------------------


@pytest.mark.parametrize("host", [LOGIN, "www-vendor-test.proxy.localhost"])
async def test_two_session_cookies_are_refused_and_removed(plain: TestClient, host: str) -> None:
    browser = Browser(plain)
    await browser.login()
    mine = browser.cookies["carrel_session"]
    response = await plain.get(
        "/menu" if host == LOGIN else "/", allow_redirects=False,
        headers={"Host": host, "Cookie": f"carrel_session=planted; carrel_session={mine}"},
    )  # fmt: skip
    assert response.status == 400
    assert "two different copies" in await response.text()
    cleared = response.headers.getall("Set-Cookie")
    assert any("Domain=proxy.localhost" in c and "Max-Age=0" in c for c in cleared), cleared
    assert any("Domain" not in c and "Max-Age=0" in c for c in cleared), cleared


async def test_two_form_cookies_are_refused(plain: TestClient) -> None:
    """A sibling planted a parent-domain form cookie beside the login host's own."""
    browser = Browser(plain)
    token = await _login_form(browser)
    mine = browser.cookies["carrel_form"]
    response = await plain.post(
        "/login", data={"card": CARD, "pin": PIN, "csrf_token": token, "url": ""},
        headers={"Host": LOGIN, "Cookie": f"carrel_form=planted-by-a-sibling-0123; carrel_form={mine}"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status == 400
    assert "carrel_session" not in response.headers.get("Set-Cookie", "")


# -- patron forms refuse other origins; tokens have one purpose -------------------------------


async def _login_form(browser: Browser) -> str:
    match = TOKEN.search(await (await browser.get("/login")).text())
    assert match
    return match[1]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-site"},  # a vendor page's form, posted to the login host
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://www-vendor-test.proxy.localhost:8080"},
    ],
)
async def test_a_login_posted_from_a_sibling_is_refused(
    plain: TestClient, headers: dict[str, str]
) -> None:
    browser = Browser(plain)
    token = await _login_form(browser)
    response = await plain.post(
        "/login", data={"csrf_token": token, "card": OTHER_CARD, "pin": OTHER_PIN, "url": ""},
        headers=browser.headers(**headers), allow_redirects=False,
    )  # fmt: skip
    assert response.status == 400
    assert "carrel_session" not in response.headers.get("Set-Cookie", "")


async def test_a_logout_posted_from_a_sibling_is_refused(plain: TestClient) -> None:
    browser = Browser(plain)
    await browser.login()
    token = TOKEN.search(await (await browser.get("/logout")).text())
    assert token
    response = await plain.post(
        "/logout", data={"csrf_token": token[1]}, allow_redirects=False,
        headers=browser.headers(**{"Sec-Fetch-Site": "same-site"}),
    )  # fmt: skip
    assert response.status == 400
    assert (await browser.get("/menu")).status == 200  # still logged in


async def test_a_pin_change_posted_from_a_sibling_is_refused(plain: TestClient) -> None:
    browser = Browser(plain)
    await browser.login()
    token = TOKEN.search(await (await browser.get("/pin/change")).text())
    assert token
    form = {"csrf_token": token[1], "old_pin": PIN, "new_pin": "3917", "new_pin2": "3917"}
    response = await plain.post(
        "/pin/change", data=form, allow_redirects=False,
        headers=browser.headers(**{"Sec-Fetch-Site": "same-site"}),
    )  # fmt: skip
    assert response.status == 400
    fresh = Browser(plain)
    assert (await fresh.login()).status == 302  # the old PIN still works


async def test_a_console_token_is_not_accepted_by_the_patron_login(plain: TestClient) -> None:
    browser = Browser(plain)
    console = await browser.get("/admin/login")
    token = TOKEN.search(await console.text())
    assert token
    response = await browser.post(
        "/login", {"csrf_token": token[1], "card": CARD, "pin": PIN, "url": ""}
    )
    assert response.status == 400 and "carrel_session" not in browser.cookies


async def test_a_patron_token_is_not_accepted_by_the_console_login(plain: TestClient) -> None:
    browser = Browser(plain)
    token = await _login_form(browser)
    response = await browser.post(
        "/admin/login", {"csrf_token": token, "user": "x", "password": "y"}
    )
    assert response.status == 400
    assert "admin_login_wrong" not in await response.text()
    assert re.search(r"too long|expired", await response.text())


# -- logout -----------------------------------------------------------------------------------


async def test_logout_by_get_ends_nothing(plain: TestClient) -> None:
    """``<img src="https://login.<proxy_domain>/logout">`` on a vendor page."""
    browser = Browser(plain)
    await browser.login()
    image = await browser.get("/logout")
    assert image.status == 200 and "<button" in await image.text()
    assert (await browser.get("/menu")).status == 200


# -- service workers and what outlives a session ----------------------------------------------


async def test_service_worker_scripts_are_refused_by_default(plain: TestClient) -> None:
    browser = Browser(plain)
    await browser.login()
    response = await browser.get("/sw.js", host=f"{VENDOR}:8080", **{})
    assert response.status == 200  # an ordinary fetch of the file passes
    worker = await plain.get(
        "/sw.js", allow_redirects=False,
        headers=browser.headers(host=f"{VENDOR}:8080", **{"Service-Worker": "script"}),
    )  # fmt: skip
    assert worker.status == 403


async def test_option_service_workers_lets_a_database_register_one(tls: TestClient) -> None:
    browser = ScopedBrowser(tls)
    await browser.login()
    await browser.follow(f"https://{VENDOR}/")
    worker = await browser.get(f"https://{VENDOR}/sw.js", **{"Service-Worker": "script"})
    assert worker.status == 200
    assert "Service-Worker-Allowed" not in worker.headers  # no widening of its scope


async def test_after_logout_each_proxied_host_clears_what_its_pages_kept(tls: TestClient) -> None:
    browser = ScopedBrowser(tls)
    await browser.login()
    await browser.follow(f"https://{VENDOR}/")
    logout_page = await browser.get(f"https://{LOGIN}/logout")
    token = TOKEN.search(await logout_page.text())
    assert token
    cookie = "; ".join(f"{n}={v}" for n, v in browser.cookies(LOGIN))
    out = await tls.post(
        "/logout", data={"csrf_token": token[1]}, headers={"Host": LOGIN, "Cookie": cookie}
    )
    assert out.status == 200
    after = await browser.get(f"https://{VENDOR}/")
    assert after.headers.get("Clear-Site-Data") == '"storage"'
    assert after.status == 302
    assert not any(n == "__Host-carrel_session" for n, _ in browser.cookies(VENDOR))
    later = await browser.get(f"https://{VENDOR}/")
    assert "Clear-Site-Data" not in later.headers  # once per host, not on every request
