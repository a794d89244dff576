"""The escaped-host flow end to end in Chromium, over http and https: a proxied vendor page
loads an image from a host no rule covers, the browser reports it (``report-uri`` over http,
the Reporting API over https), the console lists it, an editor presses Add, and after a reload
the image comes through the gateway."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme
from aiohttp import web

from gateway import config
from gateway.app import build_app
from gateway.appkeys import ESCAPES
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from tests.admin_support import PASSWORDS, add_staff
from tests.browser_support import ARTIFACTS, accessible, chromium, log_in
from tests.patron_support import CARD, PIN

WWW, CDN = "www.shop.test", "cdn.shop.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@dataclass
class Vendor:
    """What the vendor was asked: (host, path, referer)."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def app(self, scheme: str, port: int) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            self.seen.append((request.host, request.path, request.headers.get("Referer", "")))
            if request.path == "/pic.png":
                return web.Response(body=PNG, content_type="image/png")
            # A literal URL of a host no rule covers: the rewriter leaves it alone.
            img = f'<img id="pic" alt="cover" src="{scheme}://{CDN}:{port}/pic.png">'
            return web.Response(text=f"<!doctype html><html lang=en><head><title>shop</title>"
                                f"</head><body><main>{img}</main></body></html>",
                                content_type="text/html")  # fmt: skip

        app = web.Application()
        app.router.add_get("/{tail:.*}", answer)
        return app


@dataclass
class Site:
    scheme: str
    port: int
    vendor_port: int
    vendor: Vendor
    app: web.Application

    @property
    def login(self) -> str:
        return f"{self.scheme}://login.proxy.localhost:{self.port}"

    def proxied(self, label: str) -> str:
        return f"{self.scheme}://{label}.proxy.localhost:{self.port}"

    @property
    def cdn_label(self) -> str:
        marker = (
            f"---{self.vendor_port}" if self.scheme == "https" else f"---http-{self.vendor_port}"
        )
        return "cdn-shop-test" + marker


async def _serve(app: web.Application, port: int, context: ssl.SSLContext | None) -> web.AppRunner:
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    return runner


@asynccontextmanager
async def _site(scheme: str, make_settings: Callable[..., config.Settings],
                tmp_path: Path) -> AsyncIterator[Site]:  # fmt: skip
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    contexts: list[ssl.SSLContext | None] = [None, None]
    if scheme == "https":
        for i, names in enumerate([(WWW, CDN), ("*.proxy.localhost", "login.proxy.localhost")]):
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(*names).configure_cert(context)
            contexts[i] = context
    vendor_port, port = free_port(), free_port()
    settings = make_settings(
        server={"listen": f"127.0.0.1:{port}", "public_scheme": scheme},
        upstream={"resolve": {h: f"127.0.0.1:{vendor_port}" for h in (WWW, CDN)},
                  "ca_file": str(ca_file)},
    )  # fmt: skip
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "shop.txt").write_text(
        f"Title Shop\nURL {scheme}://{WWW}/\nHJ {scheme}://{WWW}\n"
    )
    local_directory(settings).add(CARD, PIN)
    add_staff(settings)
    vendor = Vendor()
    app = build_app(settings)
    vendor_runner = await _serve(vendor.app(scheme, vendor_port), vendor_port, contexts[0])
    gateway = await _serve(app, port, contexts[1])
    try:
        yield Site(scheme, port, vendor_port, vendor, app)
    finally:
        await gateway.cleanup()
        await vendor_runner.cleanup()


@pytest.fixture(params=["http", "https"])
async def site(
    request: pytest.FixtureRequest, make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    async with _site(request.param, make_settings, tmp_path) as running:
        yield running


async def _listed(site: Site) -> list[str]:
    """The escaped hosts the gateway has counted, once there are some (30 s at most)."""
    for _ in range(300):
        rows = await site.app[ESCAPES].rows()
        if rows:
            return [r.host for r in rows]
        await asyncio.sleep(0.1)
    return []


async def test_an_escaped_host_is_reported_listed_added_and_then_proxied(site: Site) -> None:
    cdn = f"{CDN}:{site.vendor_port}"
    www = site.proxied("www-shop-test" + ("" if site.scheme == "https" else "---http"))
    requested: list[str] = []
    flags = [
        f"--host-resolver-rules=MAP *.proxy.localhost 127.0.0.1, MAP {CDN} 127.0.0.1, "
        "MAP * ~NOTFOUND",
        "--short-reporting-delay",  # the Reporting API sends within a second, not a minute
        "--ignore-certificate-errors",  # the test's own CA
    ]
    async with chromium(*flags) as browser:
        context = await browser.new_context(ignore_https_errors=True)
        context.on("request", lambda r: requested.append(r.url))
        page = await context.new_page()
        await page.goto(f"{site.login}/login")
        await log_in(page, CARD, PIN)
        await page.wait_for_url(f"{site.login}/menu")
        await page.goto(f"{www}/")
        assert await page.title() == "shop", (page.url, await page.content())
        await page.wait_for_function("document.getElementById('pic').complete")
        # Before: the image left the proxy (the browser asked cdn.shop.test itself).
        assert f"{site.scheme}://{cdn}/pic.png" in requested
        assert await _listed(site) == [cdn]

        console = await context.new_page()
        await console.goto(f"{site.login}/admin/login")
        await console.get_by_label("User name").fill("eli")
        await console.get_by_label("Password").fill(PASSWORDS["eli"])
        await console.get_by_role("button", name="Log in").click()
        await console.wait_for_url(f"{site.login}/admin/sessions")
        await console.get_by_role("link", name="Escaped hosts").click()
        await console.wait_for_url(f"{site.login}/admin/escapes")
        row = console.get_by_role("row").filter(has_text=cdn)
        assert f"{WWW} pages loaded {cdn} 1 time this week" in await row.inner_text()
        await accessible(console, "escaped hosts")
        await console.set_viewport_size({"width": 375, "height": 740})  # a phone
        await accessible(console, "escaped hosts on a phone")
        ARTIFACTS.mkdir(exist_ok=True)
        await console.screenshot(path=str(ARTIFACTS / f"escaped-hosts-{site.scheme}.png"))
        await console.get_by_role("button", name=f"Add {cdn} to Shop").click()
        await console.wait_for_url(f"{site.login}/admin/escapes?done=added")
        assert await console.get_by_role("status").inner_text() == (
            "Added: the line is in the database's file, and the rules with it are live."
        )
        assert await console.get_by_role("row").filter(has_text=cdn).count() == 0

        requested.clear()
        site.vendor.seen.clear()
        await page.reload()
        await page.wait_for_function(
            "document.getElementById('pic').complete && document.getElementById('pic').naturalWidth"
        )
        html = await page.content()
        await context.close()
    assert f"{site.proxied(site.cdn_label)}/pic.png" in html  # rewritten by the gateway now
    # After: the image came through the gateway, as the proxied host.
    pictures = [u for u in requested if u.endswith("/pic.png")]
    # (over https the first one goes round the hand-over that gives the new host the session)
    assert set(pictures) == {f"{site.proxied(site.cdn_label)}/pic.png"}, requested
    assert all(urlsplit(u).hostname.endswith(".proxy.localhost") for u in requested)  # type: ignore[union-attr]
    # The vendor was asked by the gateway: a Referer the browser sent would name the proxied
    # page, the gateway's names the vendor's own page (or none, after a hand-over's hops).
    asked = [(host, referer) for host, path, referer in site.vendor.seen if path == "/pic.png"]
    assert [host for host, _ in asked] == [cdn], site.vendor.seen
    assert all(referer in ("", f"{site.scheme}://{WWW}/") for _, referer in asked), asked
    assert await site.app[ESCAPES].rows() == []
