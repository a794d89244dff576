"""Real third-party applications through the gateway in Chromium: the PDF.js viewer and
OpenSeadragon, served by loopback vendors (tests/apps_support.py) from npm's packages.

Their pages build the URLs that matter at run time, so only the companion script can keep those
requests on the proxy. Each application is opened twice: with the companion (it works, the
vendor saw the requests, and nothing left the proxy domain) and with ``[companion] enabled =
false`` (the same page breaks because its requests went for the vendor's real hosts). Chromium
resolves only names under the proxy domain, so an escaped request fails instead of reaching the
vendor around the gateway; the second test of each pair shows the first is not passing for free.

A third check opens both applications in a Chromium that reaches the vendors directly: they
work there, so a failure through the gateway is the gateway's or the companion's.

One Chromium for the module (a context per test), one vendor server; a gateway per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from aiohttp import web

from gateway import config
from gateway.app import build_app
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from gateway.hostmap import Origin, encode
from tests.apps_support import (
    APPS_RULES,
    CDN_A,
    DZI_PATH,
    FILES_A,
    HOSTS,
    PAGE_ONE_RGB,
    PDF_PATH,
    TILE_RGB,
    TILES_B,
    VIEWER_A,
    WWW_B,
    AppsVendor,
    run_apps_vendor,
)
from tests.browser_support import chromium, log_in
from tests.companion_harness import CHROMIUM_RESOLVER, PROXY_DOMAIN
from tests.patron_support import CARD, PIN

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOT_RESOLVED = "net::ERR_NAME_NOT_RESOLVED"
SETTLE_MS = 20000
PAGES = 480
"""build_pdf's default page count, which the viewer reports."""

PDF_SETTLED = "document.title.startsWith('rendered') || document.title.startsWith('failed')"
BOX_PIXELS = """([r, g, b]) => {
  const canvas = document.getElementById("page1");
  if (!canvas.width) return 0;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 12) count++;
  }
  return count;
}"""
"""How many pixels of the rendered page are the colour of page 1's box."""
TILES_SETTLED = """([r, g, b]) => {
  if (viewerState.failed) return viewerState.failed;
  const canvas = viewer.drawer && viewer.drawer.canvas;
  if (!canvas || !canvas.width) return false;
  try {
    const [pr, pg, pb] = canvas.getContext("2d")
      .getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
    return Math.abs(pr - r) + Math.abs(pg - g) + Math.abs(pb - b) < 12 && "drawn";
  } catch (error) {
    return "unreadable: " + error;  // a tainted canvas: the tiles came without CORS
  }
}"""
"""Until the viewer fails or its centre pixel is the tiles' colour."""
COMPANION_RAN = "Boolean(globalThis.__carrelCompanion)"


def proxied(host: str) -> str:
    """The proxy host that stands for ``https://host``."""
    return f"{encode(Origin.of('https', host))}.{PROXY_DOMAIN}"


@dataclass
class Traffic:
    """Every request Chromium made in a context (pages and their workers), and the failed."""

    requested: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def escaped(self) -> set[str]:
        """Hosts of network requests outside the proxy domain."""
        return {host for url in self.requested if (host := _outside(url))}

    def escapes(self) -> list[tuple[str, str]]:
        """The escaped requests with how each failed, for a failing test's message."""
        return [(url, failure) for url, failure in self.failed if _outside(url)]

    def escape_failures(self) -> set[str]:
        """How the escaped requests failed."""
        return {failure for url, failure in self.failed if _outside(url)}


def _outside(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    network = parts.scheme in ("http", "https", "ws", "wss")
    return host if network and not host.endswith("." + PROXY_DOMAIN) else ""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium(CHROMIUM_RESOLVER) as running:  # only the proxy's names resolve
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def apps(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AppsVendor]:
    async with run_apps_vendor(tmp_path_factory.mktemp("apps")) as vendor:
        yield vendor


@asynccontextmanager
async def gateway(
    make_settings: Callable[..., config.Settings], vendor: AppsVendor, companion: bool
) -> AsyncIterator[str]:
    """A gateway over plain http in front of both vendors, the companion on or off; yields the
    login host's URL. The vendor's record starts empty."""
    port = free_port()
    settings = make_settings(
        server={"listen": f"127.0.0.1:{port}", "public_scheme": "http"},
        upstream={"resolve": vendor.resolve(), "ca_file": str(vendor.ca_file)},
        companion={"enabled": companion},
    )
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "apps.txt").write_text(APPS_RULES)
    local_directory(settings).add(CARD, PIN)
    runner = web.AppRunner(build_app(settings), shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    vendor.seen.clear()
    try:
        yield f"http://login.{PROXY_DOMAIN}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def opened(browser: Any, login_url: str, host: str) -> AsyncIterator[tuple[Any, Traffic]]:
    """A patron logs in and lands on ``https://host/`` through the gateway; yields the page and
    the context's traffic."""
    context = await browser.new_context()
    traffic = Traffic()
    context.on("request", lambda r: traffic.requested.append(r.url))
    context.on("requestfailed", lambda r: traffic.failed.append((r.url, r.failure or "")))
    try:
        page = await context.new_page()
        await page.goto(f"{login_url}/login?url=https://{host}/")
        await log_in(page, CARD, PIN)
        await page.wait_for_url(lambda url: urlsplit(url).hostname == proxied(host))
        yield page, traffic
    finally:
        await context.close()


@dataclass
class Outcome:
    """How a viewer settled through the gateway."""

    settled: str
    """The PDF viewer's title; the image viewer's "drawn", or why not."""
    companion: bool
    """Whether the companion ran in the page."""
    traffic: Traffic
    box: int = 0
    """How many pixels of page 1's box the PDF viewer drew."""


async def _pdf_viewer(
    browser: Any, make_settings: Callable[..., config.Settings], apps: AppsVendor, companion: bool
) -> Outcome:
    """Open vendor A's viewer and wait until it renders or fails."""
    async with gateway(make_settings, apps, companion) as login_url, opened(
        browser, login_url, VIEWER_A
    ) as (page, traffic):  # fmt: skip
        await page.wait_for_function(PDF_SETTLED, timeout=SETTLE_MS)
        box = await page.evaluate(BOX_PIXELS, list(PAGE_ONE_RGB))
        return Outcome(await page.title(), await page.evaluate(COMPANION_RAN), traffic, box)


async def _image_viewer(
    browser: Any, make_settings: Callable[..., config.Settings], apps: AppsVendor, companion: bool
) -> Outcome:
    """Open vendor B's viewer and wait until its tiles show or it fails."""
    async with gateway(make_settings, apps, companion) as login_url, opened(
        browser, login_url, WWW_B
    ) as (page, traffic):  # fmt: skip
        settled = await page.wait_for_function(TILES_SETTLED, arg=list(TILE_RGB), timeout=SETTLE_MS)
        return Outcome(await settled.json_value(), await page.evaluate(COMPANION_RAN), traffic)


async def test_pdfjs_renders_a_pdf_whose_file_and_worker_urls_are_built_at_run_time(
    browser: Any, apps: AppsVendor, make_settings: Callable[..., config.Settings]
) -> None:
    seen = await _pdf_viewer(browser, make_settings, apps, companion=True)
    assert seen.companion
    assert seen.settled == f"rendered {PAGES}", (seen.settled, seen.traffic.escapes())
    assert seen.box > 100000, seen.box  # page 1's 468 x 300 box is on the canvas
    assert apps.requests(CDN_A, "/pdfjs/pdf.worker.mjs"), "the worker came from the cdn host"
    ranges = [request.range for request in apps.requests(FILES_A, PDF_PATH) if request.range]
    assert len(ranges) >= 2 and all(r.startswith("bytes=") for r in ranges), ranges
    assert not seen.traffic.escaped(), seen.traffic.escapes()


async def test_without_the_companion_pdfjs_goes_for_the_vendors_real_hosts_and_fails(
    browser: Any, apps: AppsVendor, make_settings: Callable[..., config.Settings]
) -> None:
    seen = await _pdf_viewer(browser, make_settings, apps, companion=False)
    assert not seen.companion
    assert seen.settled.startswith("failed"), seen.settled
    assert seen.box == 0
    escaped = seen.traffic.escaped()
    assert CDN_A in escaped and escaped <= {CDN_A, FILES_A}, escaped  # the worker's run-time URL
    assert seen.traffic.escape_failures() == {NOT_RESOLVED}, seen.traffic.failed
    assert not apps.requests(CDN_A) and not apps.requests(FILES_A)
    assert apps.requests(VIEWER_A, "/pdfjs/pdf.mjs"), "the page itself came through the gateway"


async def test_openseadragon_draws_deep_zoom_tiles_from_a_second_vendor_host(
    browser: Any, apps: AppsVendor, make_settings: Callable[..., config.Settings]
) -> None:
    seen = await _image_viewer(browser, make_settings, apps, companion=True)
    assert seen.companion
    assert seen.settled == "drawn", (seen.settled, seen.traffic.escapes())
    assert apps.requests(TILES_B, DZI_PATH), "the descriptor came from the tiles host"
    assert apps.requests(TILES_B, "/dzi/plate_files/"), "and so did the tiles"
    assert not seen.traffic.escaped(), seen.traffic.escapes()


async def test_without_the_companion_openseadragon_goes_for_the_tiles_real_host_and_fails(
    browser: Any, apps: AppsVendor, make_settings: Callable[..., config.Settings]
) -> None:
    seen = await _image_viewer(browser, make_settings, apps, companion=False)
    assert not seen.companion
    assert seen.settled.startswith("open failed"), seen.settled
    assert seen.traffic.escaped() == {TILES_B}, seen.traffic.escaped()
    assert seen.traffic.escape_failures() == {NOT_RESOLVED}, seen.traffic.failed
    assert not apps.requests(TILES_B)
    assert apps.requests(WWW_B, "/osd/openseadragon.min.js"), "the viewer came through the gateway"


async def test_the_applications_work_when_chromium_reaches_the_vendors_directly(
    apps: AppsVendor,
) -> None:
    """No gateway: the vendors' hosts resolve to the vendor server itself (its test CA is not
    Chromium's, hence the certificate flag). What the tests above expect is what the
    applications do."""
    apps.seen.clear()
    direct = ", ".join(f"MAP {host} 127.0.0.1:{apps.port}" for host in HOSTS)
    async with chromium(f"--host-resolver-rules={direct}, MAP * ~NOTFOUND",
                        "--ignore-certificate-errors") as own:  # fmt: skip
        context = await own.new_context()
        page = await context.new_page()
        await page.goto(f"https://{VIEWER_A}/")
        await page.wait_for_function(PDF_SETTLED, timeout=SETTLE_MS)
        title, box = await page.title(), await page.evaluate(BOX_PIXELS, list(PAGE_ONE_RGB))
        await page.goto(f"https://{WWW_B}/")
        settled = await page.wait_for_function(TILES_SETTLED, arg=list(TILE_RGB), timeout=SETTLE_MS)
        drawn = await settled.json_value()
        await context.close()
    assert (title, drawn) == (f"rendered {PAGES}", "drawn")
    assert box > 100000, box
    assert len([seen for seen in apps.requests(FILES_A, PDF_PATH) if seen.range]) >= 2
    assert apps.requests(TILES_B, "/dzi/plate_files/")
