"""A real HTTPS vendor on loopback for the cross-origin tests: two databases, three hosts.

``www.vendor.test`` and ``api.vendor.test`` are one database (the vendor's page and its API),
``www.other.test`` another (a sibling, possibly hostile). The API answers CORS as a real one
would, per path: ``/star/...`` with ``*``, ``/own/...`` only for the vendor's own page (with
credentials), ``/none/...`` with no CORS headers at all; and it records what reached it, so a
test sees which cookies, origin and patron header the gateway sent.
"""

from __future__ import annotations

import json
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import WSMsgType, web

from gateway import config
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from tests.patron_support import CARD, PIN

WWW, API, OTHER = "www.vendor.test", "api.vendor.test", "www.other.test"
HOSTS = (WWW, API, OTHER)
RULES = f"""AddUserHeader X-Patron
Title Vendor
URL https://{WWW}/
HJ https://{WWW}
HJ https://{API}
Title Other
URL https://{OTHER}/
HJ https://{OTHER}
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    + _chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    + _chunk(b"IEND", b"")
)
"""A 1x1 red PNG."""


@dataclass
class Seen:
    """What reached the vendor: one dict per request (host, method, path and headers)."""

    requests: list[dict[str, str]] = field(default_factory=list)

    def to(self, path: str, method: str = "") -> list[dict[str, str]]:
        """The requests for ``path`` (with ``method``, when given)."""
        return [r for r in self.requests if r["path"] == path and method in ("", r["method"])]


def _grant(kind: str, origin: str) -> dict[str, str]:
    """The API's CORS answer for ``kind`` to a request from ``origin``."""
    if kind == "star":
        return {"Access-Control-Allow-Origin": "*"}
    if kind == "own" and origin == f"https://{WWW}":
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
    return {}


PREFLIGHT = {
    "star": {"Access-Control-Allow-Methods": "*", "Access-Control-Allow-Headers": "*, Authorization",
             "Access-Control-Max-Age": "0"},
    "own": {"Access-Control-Allow-Methods": "POST, PUT",
            "Access-Control-Allow-Headers": "Content-Type, Authorization"},
}  # fmt: skip

BODIES: dict[str, tuple[str, bytes]] = {
    "data": ("application/json", b""),  # filled in: what arrived
    "image.png": ("image/png", PNG),
    "classic.js": ("text/javascript", b"window.classicRan = true;"),
    "module.js": ("text/javascript", b"window.moduleRan = true;"),
    "dep.js": ("text/javascript", b"export const dep = 'dep loaded';"),
}


def vendor_app(seen: Seen, pages: dict[str, str]) -> web.Application:
    """The three hosts: ``pages`` (path -> HTML) on the two page hosts, the API on its own."""

    def record(request: web.Request, body: str = "") -> dict[str, str]:
        entry = {
            "host": request.host.partition(":")[0], "method": request.method,
            "path": request.path, "origin": request.headers.get("Origin", ""),
            "cookie": request.headers.get("Cookie", ""),
            "patron": request.headers.get("X-Patron", ""),
            "authorization": request.headers.get("Authorization", ""),
            "acrm": request.headers.get("Access-Control-Request-Method", ""), "body": body,
        }  # fmt: skip
        seen.requests.append(entry)
        return entry

    async def api(request: web.Request) -> web.StreamResponse:
        kind, name = request.match_info["kind"], request.match_info["name"]
        body = (await request.read()).decode() if request.can_read_body else ""
        entry = record(request, body)
        grant = _grant(kind, entry["origin"])
        if request.method == "OPTIONS":
            return web.Response(
                status=204, headers={**grant, **PREFLIGHT.get(kind, {})} if grant else {}
            )
        kind_of, data = BODIES.get(name, ("text/plain", b"?"))
        if name == "data":
            data = json.dumps(entry).encode()
        return web.Response(body=data, content_type=kind_of, headers=grant)

    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="set")
        response.set_cookie("vsid", "vendor-secret", domain="vendor.test", path="/")
        return response

    async def socket(request: web.Request) -> web.WebSocketResponse:
        entry = record(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps(entry))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo: " + message.data)
        return ws

    async def page(request: web.Request) -> web.Response:
        record(request)
        return web.Response(text=pages.get(request.path, "<title>vendor</title>"),
                            content_type="text/html")  # fmt: skip

    app = web.Application()
    api_site = web.Application()
    api_site.router.add_route("*", "/{kind}/{name}", api)
    api_site.router.add_get("/set-cookie", set_cookie)
    api_site.router.add_get("/ws", socket)
    app.add_domain(API, api_site)
    for host in (WWW, OTHER):
        site = web.Application()
        site.router.add_get("/{tail:.*}", page)
        app.add_domain(host, site)
    return app


@dataclass
class Vendor:
    port: int
    ca: trustme.CA
    ca_file: Path
    seen: Seen


@asynccontextmanager
async def run_vendor(tmp_path: Path, pages: dict[str, str] | None = None) -> AsyncIterator[Vendor]:
    """The vendor on a free loopback port with its own CA's certificate."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS).configure_cert(context)
    ca_file = tmp_path / "cors-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    seen = Seen()
    runner = web.AppRunner(vendor_app(seen, pages or {}), shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield Vendor(port, ca, ca_file, seen)
    finally:
        await runner.cleanup()


def settings_for(
    make_settings: Callable[..., config.Settings], vendor: Vendor, **sections: dict[str, Any]
) -> config.Settings:
    """Settings for a gateway in front of ``vendor``, the rules on disk, the test patron."""
    upstream = {"resolve": {h: f"127.0.0.1:{vendor.port}" for h in HOSTS},
                "ca_file": str(vendor.ca_file)}  # fmt: skip
    settings = make_settings(upstream=upstream, **sections)
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "vendor.txt").write_text(RULES)
    local_directory(settings).add(CARD, PIN)
    return settings


def label(host: str) -> str:
    """The proxied label of ``host`` (https, default port)."""
    return host.replace("-", "--").replace(".", "-")
