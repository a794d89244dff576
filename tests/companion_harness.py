"""The companion's browser tests: a vendor whose scripts build every URL at run time, a real
gateway in front of it, and Chromium that can resolve nothing but the proxy's names.

A test registers pages and files on the vendor (``RuntimeVendor.add``), opens one through the
gateway and waits for the page to say it is done (``window.result``). The vendor records every
request it gets, so a test checks what reached it *through the gateway* (Chromium cannot reach
the vendor any other way); at the end of every test ``Runtime.close`` fails if any request of
the browser (pages, frames and workers) went to a host outside the proxy domain.

Vendor pages build URLs with ``U(sub, path)`` (``U("api", "/v1")`` is the https URL of
``api.runtime.test``), from pieces the server-side rewriter cannot recognise.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trustme
from aiohttp import web

from gateway import config
from gateway.app import build_app
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from tests.browser_support import chromium, log_in
from tests.patron_support import CARD, PIN

SUFFIX = ".runtime.test"
APP, API, CDN, FILES = (f"{sub}{SUFFIX}" for sub in ("app", "api", "cdn", "files"))
UNCOVERED = "elsewhere.example"
"""A host no rule covers: requests to it must never be made (it does not resolve anyway)."""
OTHER = "www.othervendor.test"
"""Another vendor's host, served by the same loopback vendor: tests give it a database of its
own (``OTHER_DATABASE``) to show what one database's pages must not pass to another's."""
OTHER_DATABASE = f"""
Title Other vendor
URL https://{OTHER}/
HJ https://{OTHER}
"""
HOSTS = (APP, API, CDN, FILES)
RULES = f"""Title Runtime
URL https://{APP}/
HJ https://{APP}
HJ https://{API}
HJ https://{CDN}
HJ https://{FILES}
"""
PROXY_DOMAIN = "proxy.localhost"
# The vendor's own helper: the rewriter sees no URL in it, only pieces.
BUILDER = (
    "<script>window.U = (sub, path) => ['ht', 'tps:', '//', sub, '.runtime', '.test', path]"
    ".join('');</script>"
)
CONTENT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
                 ".json": "application/json", ".html": "text/html", ".png": "image/png",
                 ".svg": "image/svg+xml", ".txt": "text/plain"}  # fmt: skip


@dataclass(frozen=True)
class Seen:
    """One request the vendor got (from the gateway)."""

    host: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RuntimeVendor:
    """Hosts under ``runtime.test`` serving what tests add; anything else is answered with a
    small JSON echo (and CORS for proxied origins), every request recorded."""

    files: dict[tuple[str, str], tuple[bytes, str, dict[str, str]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def add(
        self, host: str, path: str, body: str | bytes, content_type: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Serve ``body`` at ``https://host/path`` (content type from the suffix by default)."""
        kind = content_type or CONTENT_TYPES.get(Path(path).suffix, "text/html")
        data = body.encode() if isinstance(body, str) else body
        self.files[(host, path)] = (data, kind, headers or {})

    def page(self, path: str, script: str, head: str = "", body: str = "") -> None:
        """An HTML page on the app host whose ``script`` runs in ``<body>`` after ``U`` is
        defined; the script sets ``window.result`` when it is done."""
        self.add(APP, path, f"<!doctype html><html><head><meta charset=utf-8>{head}"
                 f"<title>runtime</title></head><body>{BUILDER}{body}"
                 f"<script>{script}</script></body></html>")  # fmt: skip

    def requests(self, host: str, path: str) -> list[Seen]:
        """What reached ``https://host`` at ``path`` (query included when ``path`` has one)."""
        return [s for s in self.seen if s.host == host and (s.path == path or
                s.path.split("?")[0] == path)]  # fmt: skip

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").split(":")[0]
        body = await request.read()
        self.seen.append(Seen(host, request.method, request.path_qs, dict(request.headers), body))
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                await ws.send_str(f"echo:{message.data}")
            return ws
        found = self.files.get((host, request.path))
        origin = request.headers.get("Origin")
        cors = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                "Vary": "Origin"} if origin else {}  # fmt: skip
        if found is None:
            echo = {"host": host, "method": request.method, "path": request.path_qs}
            return web.json_response(echo, headers=cors)
        data, kind, headers = found
        return web.Response(body=data, headers={"Content-Type": kind, **cors, **headers})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@dataclass
class Runtime:
    """A logged-in Chromium page on the gateway in front of the vendor."""

    vendor: RuntimeVendor
    gateway_port: int
    context: Any
    page: Any
    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions of the page's scripts (the companion's included)."""

    def proxied(self, host: str, path: str = "/") -> str:
        """The URL the browser uses for ``https://host/path``."""
        label = host.replace("-", "--").replace(".", "-")
        return f"http://{label}.{PROXY_DOMAIN}:{self.gateway_port}{path}"

    async def open(self, path: str, wait_ms: float = 10_000) -> Any:
        """Open ``https://app.runtime.test/path`` through the gateway and wait for
        ``window.result``; return it."""
        await self.page.goto(self.proxied(APP, path))
        await self.page.wait_for_function("window.result !== undefined", timeout=wait_ms)
        return await self.page.evaluate("window.result")

    async def arrived(self, host: str, path: str, wait_s: float = 10) -> list[Seen]:
        """The vendor's requests for ``path`` on ``host``, waiting for the first to come."""
        for _ in range(int(wait_s * 20)):
            seen = self.vendor.requests(host, path)
            if seen:
                return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"nothing reached https://{host}{path}")

    def escaped(self) -> list[str]:
        """Browser requests to hosts outside the proxy domain."""
        out = []
        for url in self.requested:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about", "chrome-extension"):
                continue
            host = parts.hostname or ""
            if host != PROXY_DOMAIN and not host.endswith("." + PROXY_DOMAIN):
                out.append(url)
        return out


CHROMIUM_RESOLVER = f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE *.{PROXY_DOMAIN}"
"""Only the proxy's names resolve: a request that escapes the proxy fails in the browser too."""


def _vendor_tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS, UNCOVERED, OTHER).configure_cert(context)
    ca_file = tmp_path / "runtime-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def run_runtime(
    tmp_path: Path,
    make_settings: Callable[..., config.Settings],
    rules: str = RULES,
    browser: Any = None,
    **sections: dict[str, Any],
) -> AsyncIterator[Runtime]:
    """Vendor, gateway and a logged-in Chromium page; fails at the end if a request escaped.
    ``browser``: a Chromium launched with CHROMIUM_RESOLVER to open the page in (a module's
    tests can share one, see ``shared_chromium``); by default one of its own."""
    vendor = RuntimeVendor()
    context_tls, ca_file = _vendor_tls(tmp_path)
    vendor_runner = web.AppRunner(vendor.app(), shutdown_timeout=0.5)
    await vendor_runner.setup()
    vendor_port = free_port()
    await web.TCPSite(vendor_runner, "127.0.0.1", vendor_port, ssl_context=context_tls).start()
    port = free_port()
    resolve = {host: f"127.0.0.1:{vendor_port}" for host in (*HOSTS, UNCOVERED, OTHER)}
    settings = make_settings(
        server={"listen": f"127.0.0.1:{port}"},
        upstream={"resolve": resolve, "ca_file": str(ca_file)},
        **sections,
    )
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "runtime.txt").write_text(rules)
    local_directory(settings).add(CARD, PIN)
    gateway_runner = web.AppRunner(build_app(settings), shutdown_timeout=0.5)
    await gateway_runner.setup()
    await web.TCPSite(gateway_runner, "127.0.0.1", port).start()
    try:
        async with AsyncExitStack() as stack:
            if browser is None:
                browser = await stack.enter_async_context(chromium(CHROMIUM_RESOLVER))
            context = await browser.new_context()
            page = await context.new_page()
            runtime = Runtime(vendor, port, context, page)
            context.on("request", lambda r: runtime.requested.append(r.url))
            page.on("pageerror", lambda e: runtime.errors.append(str(e)))
            vendor.add(APP, "/", "<!doctype html><title>home</title><p>home")
            start = json.dumps(f"https://{APP}/")[1:-1]
            await page.goto(f"http://login.{PROXY_DOMAIN}:{port}/login?url={start}")
            await log_in(page, CARD, PIN)
            await page.wait_for_url(runtime.proxied(APP, "/"))
            yield runtime
            await context.close()
            escaped = runtime.escaped()
            assert not escaped, f"requests left the proxy domain: {escaped}"
    finally:
        await gateway_runner.cleanup()
        await vendor_runner.cleanup()


async def shared_chromium() -> AsyncIterator[Any]:
    """One Chromium for a module's tests (each still gets its own context, vendor and gateway):
    tests/conftest.py's ``shared_browser``, a module-scoped fixture on a module-scoped loop."""
    async with chromium(CHROMIUM_RESOLVER) as browser:
        yield browser
