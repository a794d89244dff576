"""Cross-origin requests between proxied hosts in a real browser, where the browser's CORS
checks are the point: Chromium, through the gateway, to a real vendor with two databases.

The vendor's page (``www.vendor.test``) loads from its API host (``api.vendor.test``, the same
database): a classic script and an image with ``crossorigin="anonymous"``, a module script, an
inline module's import, a ``fetch`` with a JSON body and an ``Authorization`` header (so a
preflight first) and a literal ``wss://`` WebSocket. Another database's page
(``www.other.test``) reads what the API shows anyone, without the patron's vendor cookies, and
cannot send what the API's own preflight refuses. Chromium resolves only the proxy's names, and
every request it makes is to one.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway import config
from gateway.app import build_app
from gateway.embedded_redis import free_port
from tests.browser_support import chromium, log_in
from tests.cors_support import API, OTHER, WWW, Vendor, label, run_vendor, settings_for
from tests.patron_support import CARD, PIN

APP = f"""<!doctype html><html><head><title>app</title>
<script crossorigin="anonymous" src="https://{API}/star/classic.js"></script>
<script type="module" src="https://{API}/star/module.js"></script>
<script type="module">import {{ dep }} from "https://{API}/star/dep.js"; window.dep = dep;</script>
</head><body>
<img crossorigin="anonymous" src="https://{API}/star/image.png"
     onload="window.image = 'loaded'" onerror="window.image = 'failed'">
<script>
fetch("https://{API}/star/data", {{
  method: "POST", credentials: "include",
  headers: {{"Content-Type": "application/json", "Authorization": "Bearer t0ken"}},
  body: JSON.stringify({{q: "carrels"}}),
}}).then((r) => r.json()).then((j) => {{ window.fetched = j.body; }},
                                 (e) => {{ window.fetched = "failed: " + e; }});
const socket = new WebSocket("wss://{API}/ws");
socket.onmessage = (event) => {{
  if (event.data.startsWith("echo: ")) {{ window.socket = event.data; socket.close(); }}
  else {{ socket.send("hello"); }}
}};
socket.onerror = () => {{ window.socket = "failed"; }};
</script></body></html>"""
SIBLING = f"""<!doctype html><html><head><title>sibling</title></head><body><script>
Promise.all([
  fetch("https://{API}/star/data", {{credentials: "include"}}).then((r) => r.json()).then(
    (j) => `read: cookie=${{j.cookie}} patron=${{j.patron}}`, (e) => "failed: " + e),
  fetch("https://{API}/own/data", {{method: "POST", credentials: "include",
    headers: {{"Content-Type": "application/json"}}, body: "{{}}"}}).then(
    () => "read", () => "blocked"),
]).then((found) => {{ window.results = found; }});
</script></body></html>"""
DONE = (
    "window.classicRan !== undefined && window.moduleRan !== undefined && window.dep !== undefined"
    " && window.image !== undefined && window.fetched !== undefined && window.socket !== undefined"
)
RESOLVE_ONLY_THE_PROXY = "--host-resolver-rules=MAP *.proxy.localhost 127.0.0.1, MAP * ~NOTFOUND"


@dataclass
class Site:
    url: str
    """The login host's base URL."""
    proxied: Callable[[str], str]
    """A vendor host's proxied base URL."""
    vendor: Vendor


@asynccontextmanager
async def _site(
    scheme: str, make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    async with run_vendor(tmp_path, {"/app": APP, "/sibling": SIBLING}) as vendor:
        port = free_port()
        settings = settings_for(
            make_settings, vendor, server={"listen": f"127.0.0.1:{port}", "public_scheme": scheme}
        )
        context = None
        if scheme == "https":  # the gateway's own wildcard certificate, from the vendor's CA
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            vendor.ca.issue_cert("*.proxy.localhost", "login.proxy.localhost").configure_cert(
                context
            )
        runner = web.AppRunner(build_app(settings), shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        try:
            yield Site(
                url=f"{scheme}://login.proxy.localhost:{port}",
                proxied=lambda host: f"{scheme}://{label(host)}.proxy.localhost:{port}",
                vendor=vendor,
            )
        finally:
            await runner.cleanup()


@pytest.fixture(params=["http", "https"])
async def site(
    request: pytest.FixtureRequest, make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    async with _site(request.param, make_settings, tmp_path) as running:
        yield running


async def _logged_in(browser: Any, site: Site, hosts: list[str]) -> tuple[Any, Any]:
    """A new context (every request's host noted in ``hosts``) where the patron has logged in."""
    context = await browser.new_context(ignore_https_errors=True)
    context.on("request", lambda request: hosts.append(request.url.split("/")[2]))
    page = await context.new_page()
    await page.goto(f"{site.url}/login")
    await log_in(page, CARD, PIN)
    await page.wait_for_url(f"{site.url}/menu")
    return context, page


async def test_cross_origin_loads_between_proxied_hosts_in_chromium(site: Site) -> None:
    hosts: list[str] = []
    seen = site.vendor.seen
    async with chromium("--ignore-certificate-errors", RESOLVE_ONLY_THE_PROXY) as browser:
        context, page = await _logged_in(browser, site, hosts)
        await page.goto(site.proxied(WWW) + "/app")
        await page.wait_for_function(DONE, timeout=15000)
        found = await page.evaluate(
            "[window.classicRan, window.moduleRan, window.dep, window.image, window.fetched,"
            " window.socket]"
        )
        await page.goto(site.proxied(OTHER) + "/sibling")
        await page.wait_for_function("window.results !== undefined", timeout=15000)
        sibling = await page.evaluate("window.results")
        await context.close()
    assert found == [True, True, "dep loaded", "loaded", '{"q":"carrels"}', "echo: hello"]
    [preflight] = seen.to("/star/data", "OPTIONS")  # the browser asked first, as CORS wants
    assert preflight["origin"] == f"https://{WWW}" and preflight["cookie"] == ""
    posted = seen.to("/star/data", "POST")[0]
    assert posted["authorization"] == "Bearer t0ken" and posted["patron"]
    [socket] = seen.to("/ws")
    assert socket["origin"] == f"https://{WWW}" and socket["patron"]
    # Another database's page: what the API shows anyone, and no POST its preflight refused.
    assert sibling == ["read: cookie= patron=", "blocked"]
    assert seen.to("/own/data", "POST") == []
    assert hosts and all(h.partition(":")[0].endswith(".proxy.localhost") for h in hosts), hosts
