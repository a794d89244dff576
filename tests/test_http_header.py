"""``HTTPHeader``: which request headers reach the vendor and which response headers reach the
patron, database by database, through a real gateway in front of a real HTTPS vendor."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from tests.patron_support import Browser
from tests.vendor_support import PASS, WWW, Vendor, gateway_settings, proxied

RULES = f"""HTTPHeader -request -block Referer
HTTPHeader -request -block X-Requested-With
HTTPHeader -request -unblock X-Requested-With
HTTPHeader -response -block X-Vendor-Secret
Title Vendor
URL https://{WWW}/
HJ https://{WWW}
HTTPHeader -*
Title Pass
URL https://{PASS}/
HJ https://{PASS}
"""


@pytest.fixture
async def patron(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> Browser:
    settings = gateway_settings(make_settings, vendor, rules=RULES)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    browser = Browser(client)
    assert (await browser.login()).status == 302
    return browser


async def seen_by(patron: Browser, host: str) -> dict[str, str]:
    headers = patron.headers(
        proxied(host), Referer=f"http://{proxied(host)}/from", **{"X-Requested-With": "fetch"}
    )
    response = await patron.client.get("/headers", headers=headers)
    assert response.status == 200
    seen: dict[str, str] = json.loads(await response.text())
    return seen


async def test_a_blocked_request_header_does_not_reach_that_databases_vendor(
    patron: Browser,
) -> None:
    seen = await seen_by(patron, WWW)
    assert "Referer" not in seen
    assert seen["X-Requested-With"] == "fetch"  # blocked, then unblocked
    other = await seen_by(patron, PASS)  # HTTPHeader -* ended the blocks before this stanza
    assert other["Referer"] == f"https://{PASS}/from"


async def test_a_blocked_response_header_does_not_reach_the_patron(patron: Browser) -> None:
    query = "/respond?h=X-Vendor-Secret:%201&h=X-Kept:%202"
    blocked = await patron.client.get(query, headers=patron.headers(proxied(WWW)))
    assert blocked.status == 200
    assert "X-Vendor-Secret" not in blocked.headers and blocked.headers["X-Kept"] == "2"
    passed = await patron.client.get(query, headers=patron.headers(proxied(PASS)))
    assert passed.headers["X-Vendor-Secret"] == "1"
