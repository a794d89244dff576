"""Literal ``ws://`` and ``wss://`` URLs of covered hosts: rewritten in pages, scripts, JSON and
CSP to the proxy's WebSocket scheme, by both scanners; and the rewritten URL, opened through
the gateway, reaches a real WebSocket vendor on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.hostmap import Origin
from gateway.rewrite import urlscan
from gateway.rewrite.body import Mode, UrlRewriter
from gateway.rewrite.target import HostIndex, ProxyTarget
from tests.cors_support import API, WWW, Vendor, label, run_vendor, settings_for
from tests.patron_support import Browser
from tests.rewrite_support import INDEX

J = b"www-jstor-org.proxy.lib.org"
JHTTP = b"www-jstor-org---http.proxy.lib.org"
# (name, mode, vendor's bytes, what the patron gets) with the proxy on https
LITERALS = [
    ("wss in a script", Mode.JAVASCRIPT, b'new WebSocket("wss://www.jstor.org/live")',
     b'new WebSocket("wss://' + J + b'/live")'),
    ("ws: the http origin, by the proxy's wss", Mode.JAVASCRIPT, b"'ws://www.jstor.org/x'",
     b"'wss://" + JHTTP + b"/x'"),
    ("a port the rules name", Mode.JAVASCRIPT, b'"wss://www.jstor.org:8443/s"',
     b'"wss://www-jstor-org---8443.proxy.lib.org/s"'),
    ("a port they do not", Mode.JAVASCRIPT, b'"wss://www.jstor.org:9999/s"',
     b'"wss://www.jstor.org:9999/s"'),
    ("escaped in JSON", Mode.JSON, b'{"socket": "wss:\\/\\/www.jstor.org\\/feed"}',
     b'{"socket": "wss:\\/\\/' + J + b'\\/feed"}'),
    ("percent-encoded", Mode.JSON, b'{"u": "wss%3A%2F%2Fwww.jstor.org%2Ff"}',
     b'{"u": "wss%3A%2F%2F' + J + b'%2Ff"}'),
    ("capitals", Mode.JAVASCRIPT, b"WSS://www.jstor.org/", b"wss://" + J + b"/"),
    ("in a page's attribute", Mode.HTML, b'<div data-socket="wss://www.jstor.org/s">',
     b'<div data-socket="wss://' + J + b'/s">'),
    ("an H host in a page's script: not a URL position", Mode.HTML,
     b"<script>s='wss://h.example.org/'</script>", b"<script>s='wss://h.example.org/'</script>"),
    ("a host no rule covers", Mode.JAVASCRIPT, b'"wss://live.example.com/"',
     b'"wss://live.example.com/"'),
    ("NeverProxy wins", Mode.JAVASCRIPT, b'"wss://static.jstor.org/"', b'"wss://static.jstor.org/"'),
    ("news: is another scheme", Mode.JAVASCRIPT, b'"news://www.jstor.org/"',
     b'"news://www.jstor.org/"'),
]  # fmt: skip
SCANS = [urlscan.scan_py, urlscan.scan]


@pytest.mark.parametrize("scan", SCANS, ids=["python", "c"] if urlscan.ACCELERATED else None)
@pytest.mark.parametrize(("mode", "vendor", "expected"), [r[1:] for r in LITERALS],
                         ids=[r[0] for r in LITERALS])  # fmt: skip
def test_websocket_literals(scan: urlscan.Scan, mode: Mode, vendor: bytes, expected: bytes) -> None:
    page = Origin.of("https", "www.jstor.org")
    whole = UrlRewriter(INDEX, page, mode, scan=scan)
    assert whole.feed(vendor) + whole.flush() == expected
    pieces = UrlRewriter(INDEX, page, mode, scan=scan)  # a byte at a time: the same
    assert (
        b"".join(pieces.feed(vendor[i : i + 1]) for i in range(len(vendor))) + pieces.flush()
        == expected
    )


def test_over_plain_http_the_proxy_gives_ws() -> None:
    index = HostIndex(INDEX.ruleset, ProxyTarget("http", ":8080", "proxy.localhost"))
    rewriter = UrlRewriter(index, Origin.of("https", "www.jstor.org"), Mode.JAVASCRIPT)
    out = rewriter.feed(b'"wss://www.jstor.org/a" "ws://www.jstor.org/b"') + rewriter.flush()
    assert out == (
        b'"ws://www-jstor-org.proxy.localhost:8080/a" '
        b'"ws://www-jstor-org---http.proxy.localhost:8080/b"'
    )


PAGE = f"""<!doctype html><title>live</title>
<script>const socket = new WebSocket("wss://{API}/ws");</script>"""


@pytest.fixture
async def vendor(tmp_path: Path) -> AsyncIterator[Vendor]:
    async with run_vendor(tmp_path, {"/live": PAGE}) as running:
        yield running


@pytest.fixture
async def patron(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> Browser:  # fmt: skip
    client: TestClient = await aiohttp_client(
        build_app(settings_for(make_settings, vendor)), cookie_jar=DummyCookieJar()
    )
    browser = Browser(client)
    assert (await browser.login()).status == 302
    return browser


async def test_a_pages_literal_websocket_url_leads_through_the_gateway_to_the_vendor(
    patron: Browser, vendor: Vendor
) -> None:
    page = await patron.get("/live", host=f"{label(WWW)}.proxy.localhost:8080")
    found = re.search(r'new WebSocket\("([^"]+)"\)', await page.text())
    assert found is not None
    url = found[1]
    assert url == f"ws://{label(API)}.proxy.localhost:8080/ws"
    host, path = url.removeprefix("ws://").split("/", 1)
    origin = f"http://{label(WWW)}.proxy.localhost:8080"
    async with patron.client.ws_connect(
        "/" + path, headers=patron.headers(host, Origin=origin)
    ) as ws:
        seen = json.loads((await ws.receive(timeout=5)).data)
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "echo: hello"
    assert seen["host"] == API and seen["origin"] == f"https://{WWW}" and seen["patron"]
