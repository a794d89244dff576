"""A real HTTPS vendor on loopback (several host names, trustme certificates) for proxy tests."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
import trustme
from aiohttp import web

from gateway import config
from gateway.auth.commands import local_directory
from gateway.demo.vendor import demo_pdf
from gateway.embedded_redis import free_port
from tests.patron_support import CARD, OTHER_CARD, OTHER_PIN, PIN

WWW, API, CDN, OTHER, DOWN = (
    "www.vendor.test", "api.vendor.test", "cdn.vendor.test", "other.vendor2.test", "down.vendor.test",
)  # fmt: skip
PASS, UK, UK2 = "www.pass.test", "www.vendor.co.uk", "www.library.co.uk"


def proxied(host: str) -> str:
    """The proxy host (and port) the test gateway (gateway_settings) serves ``https://host`` at."""
    return host.replace("-", "--").replace(".", "-") + ".proxy.localhost:8080"


"""A database whose cookies go to the browser, and two under a public suffix of two labels."""
VENDOR_RULES = f"""HTTPMethod PUT
Title Vendor
URL https://{WWW}/
HJ https://{WWW}
HJ https://{API}
HJ https://{CDN}
HTTPMethod -*
Title Other
URL https://{OTHER}/
HJ https://{OTHER}
HJ https://{DOWN}
"""

PAGE = (
    f'<html><head><link rel="stylesheet" href="https://{CDN}/s.css"></head><body>'
    f'<a href="https://{API}/json">api</a> <a href="https://{WWW}/page2">next</a>'
    "</body></html>"
)


async def home(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def redirect(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, headers={"Location": f"https://{API}/landing?from={code}"})


async def set_cookie(request: web.Request) -> web.Response:
    response = web.Response(text="cookie set")
    response.headers.add("Set-Cookie", "sid=abc123; Domain=vendor.test; Path=/; Secure; HttpOnly")
    response.headers.add("Set-Cookie", "hostonly=www; Path=/")
    return response


def echo(data: object) -> web.Response:
    """JSON as text/plain: the proxy passes it untouched, so tests see what the vendor saw."""
    return web.Response(text=json.dumps(data), content_type="text/plain")


async def echo_cookie(request: web.Request) -> web.Response:
    return echo({"cookie": request.headers.get("Cookie", ""), "host": request.host})


async def form(request: web.Request) -> web.Response:
    data = await request.post()
    return echo({k: str(v) for k, v in data.items()})


async def api_json(request: web.Request) -> web.Response:
    body = json.dumps({"next": f"https://{WWW}/page2", "items": [f"https://{CDN}/a.pdf"]})
    return web.Response(text=body, content_type="application/json")


async def put_item(request: web.Request) -> web.Response:
    return echo({"method": request.method, "body": (await request.text())})


async def gz(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(PAGE.encode()), content_type="text/html",
                        headers={"Content-Encoding": "gzip"})  # fmt: skip


async def br(request: web.Request) -> web.Response:
    return web.Response(body=brotli.compress(PAGE.encode()), content_type="text/html",
                        headers={"Content-Encoding": "br"})  # fmt: skip


BOMB = 40 * 2**20
"""Zeros a decompression bomb decodes to: more than the gateway decodes from one piece."""


async def bomb(request: web.Request) -> web.StreamResponse:
    """A page whose compressed body explodes: ``/bomb/gzip`` and ``/bomb/br`` with a length;
    ``/bomb/streamed`` in chunks without one, a real page first (its headers go out before
    the bomb is met); ``/bomb/corrupt`` is not gzip at all."""
    kind = request.match_info["kind"]
    zeros = bytes(BOMB)
    body = {
        "gzip": lambda: gzip.compress(zeros, 9),
        "br": lambda: brotli.compress(zeros, quality=1),
        "streamed": lambda: gzip.compress(PAGE.encode() * 20 + zeros, 9),
        "corrupt": lambda: b"this is not gzip" * 100,
    }[kind]()
    response = web.StreamResponse(headers={"Content-Type": "text/html",
                                           "Content-Encoding": "br" if kind == "br" else "gzip"})  # fmt: skip
    if kind == "streamed":
        response.enable_chunked_encoding()
    else:
        response.content_length = len(body)
    await response.prepare(request)
    for i in range(0, len(body), 16384):
        await response.write(body[i : i + 16384])
    await response.write_eof()
    return response


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    text = (f'<a href="https://{WWW}/a">a</a>' * 50).encode()
    for i in range(0, len(text), 7):  # URLs split across chunks
        await response.write(text[i : i + 7])
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def big(request: web.Request) -> web.Response:
    """A page of about 400 KB with a length: more than the gateway holds back to send whole."""
    return web.Response(text=f'<a href="https://{WWW}/a">a</a>\n' * 12000, content_type="text/html")


async def download(request: web.Request) -> web.Response:
    """A 32 MB file: more than the sockets between gateway and patron buffer."""
    return web.Response(body=b"\0" * (32 << 20), content_type="application/octet-stream")


async def short(request: web.Request) -> web.StreamResponse:
    """A page that promises 10,000 bytes and breaks off after a few."""
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    response.content_length = 10000
    await response.prepare(request)
    await response.write(f'<a href="https://{WWW}/a">'.encode())
    assert request.transport is not None
    request.transport.close()
    return response


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(text="too late")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == web.WSMsgType.TEXT:
            await ws.send_str("echo: " + message.data)
    return ws


async def service_worker(request: web.Request) -> web.Response:
    return web.Response(
        text="self.addEventListener('fetch', () => {});", content_type="text/javascript",
        headers={"Service-Worker-Allowed": "/"},
    )  # fmt: skip


async def headers(request: web.Request) -> web.Response:
    return echo(dict(request.headers))


async def respond(request: web.Request) -> web.Response:
    """A vendor that sends whatever headers a test asks for (``?h=Name: value``, repeatable):
    what a malicious or compromised vendor could send."""
    response = web.Response(text="as asked", content_type="text/plain")
    for item in request.query.getall("h", []):
        name, _, value = item.partition(":")
        response.headers.add(name.strip(), value.strip())
    return response


async def own_policy(request: web.Request) -> web.Response:
    """A vendor that pins its own HSTS choice and names its server software."""
    return web.Response(text="policy", headers={
        "Strict-Transport-Security": "max-age=5; includeSubDomains; preload",
        "Server": "VendorHTTPd/9.9 (Unix)",
    })  # fmt: skip


async def policy_page(request: web.Request) -> web.Response:
    """An HTML page under the Content-Security-Policy a test asks for (``?csp=``)."""
    response = web.Response(text=PAGE, content_type="text/html")
    if "csp" in request.query:
        response.headers["Content-Security-Policy"] = request.query["csp"]
    return response


async def worker_script(request: web.Request) -> web.Response:
    return web.Response(text="postMessage('ready');\n", content_type="text/javascript")


def vendor_app(pdf: Path) -> web.Application:
    app = web.Application()

    async def pdf_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(pdf)  # byte ranges, as a real server serves files

    routes = {
        WWW: [("GET", "/", home), ("GET", "/redirect/{code}", redirect), ("GET", "/set-cookie", set_cookie),
              ("POST", "/form", form), ("GET", "/gzip", gz), ("GET", "/brotli", br),
              ("GET", "/chunked", chunked), ("GET", "/big", big), ("GET", "/download", download),
              ("GET", "/short", short),
              ("GET", "/hang", hang), ("GET", "/headers", headers), ("GET", "/bomb/{kind}", bomb),
              ("GET", "/own-policy", own_policy),
              ("PUT", "/item", put_item), ("GET", "/cookie", echo_cookie),
              ("GET", "/respond", respond), ("GET", "/sw.js", service_worker),
              ("GET", "/policy", policy_page), ("GET", "/worker.js", worker_script)],
        API: [("GET", "/json", api_json), ("GET", "/cookie", echo_cookie), ("GET", "/ws", websocket),
              ("GET", "/landing", home)],
        CDN: [("GET", "/file.pdf", pdf_file)],
        OTHER: [("GET", "/", home), ("PUT", "/item", put_item)],
        **{host: [("GET", "/respond", respond), ("GET", "/cookie", echo_cookie),
                  ("GET", "/headers", headers)]
           for host in (PASS, UK, UK2)},
    }  # fmt: skip
    for host, table in routes.items():
        site = web.Application()
        for method, path, handler in table:
            site.router.add_route(method, path, handler)
        app.add_domain(host, site)
    return app


def gateway_settings(
    make_settings: Callable[..., config.Settings], vendor: Vendor, rules: str = "",
    upstream: dict[str, Any] | None = None, **sections: dict[str, Any],
) -> config.Settings:  # fmt: skip
    """Settings for a gateway in front of ``vendor``: ``rules`` (VENDOR_RULES by default) on
    disk, the test patrons in its directory."""
    upstream = {"resolve": vendor.resolve(), "ca_file": str(vendor.ca_file), **(upstream or {})}
    settings = make_settings(upstream=upstream, **sections)
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "vendor.txt").write_text(rules or VENDOR_RULES)
    directory = local_directory(settings)
    directory.add(CARD, PIN)
    directory.add(OTHER_CARD, OTHER_PIN)
    return settings


@dataclass
class Vendor:
    port: int
    ca_file: Path
    down_port: int

    def resolve(self) -> dict[str, str]:
        table = {h: f"127.0.0.1:{self.port}" for h in (WWW, API, CDN, OTHER, PASS, UK, UK2)}
        table[DOWN] = f"127.0.0.1:{self.down_port}"
        return table


async def run_vendor(tmp_path: Path) -> AsyncIterator[Vendor]:
    ca = trustme.CA()
    cert = ca.issue_cert(WWW, API, CDN, OTHER, DOWN, PASS, UK, UK2)
    ca_file = tmp_path / "vendor-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pdf = tmp_path / "file.pdf"
    pdf.write_bytes(demo_pdf("Vendor PDF", pages=200))
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    runner = web.AppRunner(vendor_app(pdf), shutdown_timeout=0.5)  # the /hang handler never ends
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield Vendor(port, ca_file, free_port())
    finally:
        await runner.cleanup()
