"""The library's name and contacts on every page ([library]), help text that follows the
configuration, and the gateway's pages on vendor hosts: assets, language switch and the way
forward all on the login host, never the vendor."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from tests.patron_support import LIBRARY, Browser
from tests.vendor_support import DOWN, Vendor, gateway_settings, proxied

LOGIN = "http://login.proxy.localhost:8080"
UNKNOWN = "www-nowhere-test.proxy.localhost:8080"
"""A proxied name whose origin no rule allows."""


async def _client(aiohttp_client: Callable[..., Any], settings: config.Settings) -> TestClient:
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return client


@pytest.fixture
async def branded(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:  # fmt: skip
    return await _client(aiohttp_client, gateway_settings(make_settings, vendor, library=LIBRARY))


@pytest.fixture
async def plain(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:  # fmt: skip
    return await _client(aiohttp_client, gateway_settings(make_settings, vendor))


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize(
    ("lang", "name", "phone_label", "catalogue"),
    [
        ("en", "Springfield Public Library", "Phone", "Library catalogue"),
        ("es", "Biblioteca Pública de Springfield", "Teléfono", "Catálogo de la biblioteca"),
    ],
)
async def test_every_patron_page_names_the_library_and_how_to_reach_a_person(
    branded: TestClient, lang: str, name: str, phone_label: str, catalogue: str
) -> None:
    browser = Browser(branded, lang)
    for path in ("/login", "/help", "/pin/forgot", "/logout", "/nowhere"):
        response = await browser.get(path)
        html = await response.text()
        assert f"· {name}</title>" in html, path
        assert f'<img class="logo" src="{LIBRARY["logo_url"]}" alt="{name}">' in html, path
        assert f'{phone_label}: <a href="tel:+15550100199">+1 (555) 010-0199</a>' in html, path
        assert 'href="mailto:ask@springfield.example"' in html, path
        assert 'href="https://chat.springfield.example/"' in html, path
        assert "742 Evergreen Terrace<br>Springfield" in html, path
        assert f'<a href="https://catalog.springfield.example/">{catalogue}</a>' in html, path
        assert 'href="https://catalog.springfield.example/account"' in html, path
        # The logo's origin is allowed, nothing wider.
        csp = response.headers["Content-Security-Policy"]
        assert "img-src 'self' data: https://cdn.springfield.example;" in csp, path


async def test_without_library_settings_pages_read_sensibly(plain: TestClient) -> None:
    for lang, title, desk in (
        ("en", "Library database access", "Ask at your library's service desk"),
        ("es", "Acceso a las bases de datos de la biblioteca", "Pregunte en el mostrador"),
    ):
        html = await (await Browser(plain, lang).get("/login")).text()
        assert f"· {title}</title>" in html
        assert desk in unescape(html)
        assert "<img" not in html and "tel:" not in html and "mailto:" not in html
        assert all(href for href in hrefs(html)), "no empty links"


async def test_error_pages_say_how_to_reach_a_person(branded: TestClient) -> None:
    browser = Browser(branded)
    login_404 = await browser.get("/nowhere")
    vendor_404 = await browser.get("/", host=UNKNOWN)
    assert (login_404.status, vendor_404.status) == (404, 404)
    for response in (login_404, vendor_404):
        html = await response.text()
        assert "Talk to a person" in html
        assert 'href="tel:+15550100199"' in html
        assert f'href="{LOGIN}/menu"' in html and f'href="{LOGIN}/help"' in html
        assert html.count('id="contact-heading"') == 1, "once, in the page, not again below"


async def test_gateway_pages_on_a_vendor_host_take_everything_from_the_login_host(
    branded: TestClient,
) -> None:
    browser = Browser(branded)
    assert (await browser.login()).status == 302
    down = await browser.get("/", host=proxied(DOWN))
    unknown = await browser.get("/some/page?x=1", host=UNKNOWN)
    assert (down.status, unknown.status) == (502, 404)
    for response in (down, unknown):
        html = await response.text()
        assert f'<link rel="stylesheet" href="{LOGIN}/static/carrel.css">' in html
        relative = [h for h in hrefs(html) if not h.startswith(("http", "mailto:", "tel:", "#"))]
        assert relative == [], "every link leaves the vendor host"
        assert f'href="{LOGIN}/help?lang=es" lang="es"' in html  # the switch skips the vendor
        csp = response.headers["Content-Security-Policy"]
        assert f"style-src 'self' {LOGIN};" in csp
    # The stylesheet those pages name is there.
    sheet = await branded.get("/static/carrel.css", headers={"Host": "login.proxy.localhost"})
    assert sheet.status == 200 and "footer" in await sheet.text()
    # On the login host the switch stays on the page, keeping its query.
    html = await (await browser.get("/login?qurl=x")).text()
    assert 'href="?lang=es&amp;qurl=x" lang="es"' in html


async def test_a_vendor_hosts_error_page_in_spanish(branded: TestClient) -> None:
    html = await (await Browser(branded, "es").get("/", host=UNKNOWN)).text()
    assert "Hable con una persona" in html
    assert f'href="{LOGIN}/help?lang=en" lang="en"' in html
    assert "· Biblioteca Pública de Springfield</title>" in html


@pytest.mark.parametrize(
    ("lockout", "backend", "expected", "absent"),
    [
        ({}, "local", "After 5 wrong PINs within 15 minutes your card is locked for 15 minutes",
         "same PIN you use for My Account"),
        ({"card_failures": 3, "card_window": 600, "card_lock": 3600}, "sip2",
         "After 3 wrong PINs within 10 minutes your card is locked for 60 minutes",
         ""),
    ],
)  # fmt: skip
async def test_help_follows_the_lockout_and_the_directory(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, lockout: dict[str, int], backend: str, expected: str, absent: str,
) -> None:  # fmt: skip
    sections: dict[str, Any] = {"lockout": lockout, "patrons": {"backend": backend}}
    if backend == "sip2":
        sections["sip2"] = {"host": "127.0.0.1"}
    client = await _client(aiohttp_client, gateway_settings(make_settings, vendor, **sections))
    html = await (await Browser(client).get("/help")).text()
    assert expected in html
    if absent:
        assert absent not in html
    else:
        assert "It is the same PIN you use for My Account, the self-check machines" in html
    spanish = await (await Browser(client, "es").get("/help")).text()
    tries = lockout.get("card_failures", 5)
    assert f"Después de {tries} PIN incorrectos" in spanish
    assert ("Es el mismo PIN que usa para Mi cuenta" in spanish) == (backend == "sip2")
