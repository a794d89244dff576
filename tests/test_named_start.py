"""``URL LABEL URL`` and ``URL -Form=post LABEL URL`` + ``FormVariable``: ``/login/LABEL`` on the
login host, through a real gateway in front of a real HTTPS vendor on loopback."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import SETTINGS
from gateway.auth import commands
from tests.patron_support import LOGIN, OTHER_CARD, VENDOR, Browser, ScopedBrowser
from tests.vendor_support import WWW, Vendor, gateway_settings

RULES = f"""Title Vendor
URL -Form=post vendorlogin https://{WWW}/form
FormVariable q=carrels
FormVariable back=https://{WWW}/results?p=2
URL plain https://{WWW}/cookie
HJ https://{WWW}
"""
PROXIED_WWW = "www-vendor-test.proxy.localhost:8080"


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:
    settings = gateway_settings(make_settings, vendor, rules=RULES)
    made: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return made


async def test_a_form_start_logs_in_first_then_posts_the_variables_to_the_vendor(
    client: TestClient,
) -> None:
    patron = Browser(client)
    first = await patron.get("/login/vendorlogin")
    assert first.status == 302
    assert first.headers["Location"].startswith("/login?qurl=")
    login = await patron.login(query=first.headers["Location"].split("?", 1)[1])
    assert login.status == 302 and login.headers["Location"] == "/login/vendorlogin"
    page = await patron.get("/login/vendorlogin")
    assert page.status == 200
    html = await page.text()
    csp = page.headers["Content-Security-Policy"]
    assert "<script>" not in html and "'unsafe-inline'" not in csp  # CSP-safe: a script file
    assert "/static/autosubmit.js" in html and "<noscript>" in html
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    assert action == f"http://{PROXIED_WWW}/form"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    fields = {k: unescape(v) for k, v in fields.items()}
    assert fields == {"q": "carrels", "back": f"https://{WWW}/results?p=2"}
    # The browser submits the form: it reaches the vendor through the proxy.
    answer = await patron.post(urlsplit(action).path, fields, host=PROXIED_WWW)
    assert answer.status == 200
    assert json.loads(await answer.text()) == {"q": "carrels", "back": f"https://{WWW}/results?p=2"}


async def test_a_plain_named_start_goes_to_its_url_and_an_unknown_label_is_a_404(
    client: TestClient,
) -> None:
    patron = Browser(client)
    assert (await patron.login()).status == 302
    plain = await patron.get("/login/PLAIN")
    assert plain.status == 302
    assert plain.headers["Location"] == f"http://{PROXIED_WWW}/cookie"
    menu = await (await patron.get("/menu")).text()
    assert 'href="/login/vendorlogin"' in menu  # a form database opens through its form page
    missing = await patron.get("/login/nosuch")
    assert missing.status == 404
    assert "no URL line is labelled 'nosuch'" in unescape(await missing.text())


async def test_over_tls_the_form_is_posted_from_the_vendors_host_with_its_own_session(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> None:
    settings = gateway_settings(make_settings, vendor, RULES, server={"public_scheme": "https"})
    client = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    browser = ScopedBrowser(client)
    assert (await browser.login()).status == 302
    start = await browser.get(f"https://{LOGIN}/login/vendorlogin")
    assert start.status == 302
    assert start.headers["Location"] == f"https://{VENDOR}:8080/__carrel/form/vendorlogin"
    page = await browser.follow(start.headers["Location"])  # the session handed over first
    assert dict(browser.cookies(VENDOR)).get("__Host-carrel_session")
    html = await page.text()
    assert page.status == 200
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    assert action == f"https://{VENDOR}:8080/form"  # same host: its cookie goes with the post
    fields = {k: unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)">', html)}
    cookie = "; ".join(f"{n}={v}" for n, v in browser.cookies(VENDOR))
    answer = await client.post(
        "/form", data=fields, headers={"Host": VENDOR, "Cookie": cookie}, allow_redirects=False
    )
    assert answer.status == 200
    assert json.loads(await answer.text()) == {"q": "carrels", "back": f"https://{WWW}/results?p=2"}


async def test_a_vendor_host_serves_only_its_own_form_start(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> None:
    rules = RULES + "HJ https://api.vendor.test\n"
    settings = gateway_settings(make_settings, vendor, rules, server={"public_scheme": "https"})
    client = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    browser = ScopedBrowser(client)
    await browser.login()
    api = "api-vendor-test.proxy.localhost"
    await browser.follow(f"https://{api}/__carrel/form/vendorlogin")  # handed over
    assert (await browser.get(f"https://{api}/__carrel/form/vendorlogin")).status == 404
    assert (await browser.get(f"https://{VENDOR}/__carrel/form/nosuch")).status == 302  # no session


async def test_a_desk_reset_patron_chooses_a_pin_first_and_keeps_the_named_start(
    client: TestClient,
) -> None:
    out = io.StringIO()
    assert commands.reset_pin(client.app[SETTINGS], OTHER_CARD, out) == 0
    desk_pin = out.getvalue().split(": ")[1][:4]
    patron = Browser(client)
    assert (await patron.login(card=OTHER_CARD, pin=desk_pin)).status == 302
    start = await patron.get("/login/PLAIN")
    assert start.status == 302 and start.headers["Location"].startswith("/pin/change?qurl=")
    form = await patron.get(start.headers["Location"])
    here = "http://login.proxy.localhost:8080/login/PLAIN"
    assert f'name="url" value="{here}"' in await form.text()  # where the patron goes after
