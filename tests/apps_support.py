"""Real third-party JavaScript applications as loopback vendors, for tests/test_browser_apps.py.

Vendor A is a report viewer built on PDF.js (``pdfjs-dist``); vendor B an image viewer built on
OpenSeadragon (``openseadragon``); both are installed from npm into tests/apps/node_modules by
the Makefile (``make apps``, which ``make test`` runs). Each page script builds the URLs that matter at run time, from pieces in which
the gateway's rewriter sees no URL, as a vendor's configuration code does:

- A's page loads pdf.js by a relative path, then points its worker at ``cdn.vendor-a.test`` and
  opens a PDF on ``files.vendor-a.test`` with range requests (``disableAutoFetch``,
  ``disableStream``): the PDF is large enough for pdf.js to fetch it in pieces.
- B's page loads OpenSeadragon by a relative path and opens a Deep Zoom image whose descriptor
  and tiles are on a second host, ``tiles.vendor-b.test``.

The PDF, the descriptor and the tiles are generated here: no third-party data in the repository.
Every request the vendors answer is recorded; only the gateway can reach them (Chromium resolves
nothing outside the proxy domain), so a recorded request is one that came through the gateway.
"""

from __future__ import annotations

import os
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from gateway.demo.vendor import demo_pdf
from gateway.embedded_redis import free_port
from tests.support import ROOT

VIEWER_A, CDN_A, FILES_A = "viewer.vendor-a.test", "cdn.vendor-a.test", "files.vendor-a.test"
WWW_B, TILES_B = "www.vendor-b.test", "tiles.vendor-b.test"
HOSTS = (VIEWER_A, CDN_A, FILES_A, WWW_B, TILES_B)
APPS_RULES = f"""Title Vendor A reports
URL https://{VIEWER_A}/
HJ https://{VIEWER_A}
HJ https://{CDN_A}
HJ https://{FILES_A}
Title Vendor B images
URL https://{WWW_B}/
HJ https://{WWW_B}
HJ https://{TILES_B}
"""

NODE_MODULES = ROOT / "tests" / "apps" / "node_modules"
PDFJS = NODE_MODULES / "pdfjs-dist" / "build"
OSD = NODE_MODULES / "openseadragon" / "build" / "openseadragon"

PDF_PATH = "/docs/annual-report.pdf"
PAGE_ONE_RGB = (204, 26, 51)
"""The colour of the box on page 1 of the generated PDF (every other page has another)."""
CHUNK = 65536
"""pdf.js's range size; it fetches a PDF in ranges only when it is over twice this."""

DZI_PATH = "/dzi/plate.dzi"
IMAGE_SIZE, TILE_SIZE = (2048, 1536), 256
TILE_RGB = (30, 144, 90)
"""The one colour of every tile, so a drawn tile shows in any pixel of the image."""

PDF_VIEWER = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Annual report</title></head>
<body><canvas id="page1"></canvas>
<script type="module">
import * as pdfjsLib from "/pdfjs/pdf.mjs";
// The vendor's hosts, put together as its configuration code does: no URL in this page.
const scheme = ["ht", "tps:"].join("");
const host = (name) => [scheme, "", [name, "vendor-a", "test"].join(".")].join("/");
pdfjsLib.GlobalWorkerOptions.workerSrc = host("cdn") + "/pdfjs/pdf.worker.mjs";
try {{
  const pdf = await pdfjsLib.getDocument({{
    url: host("files") + "{PDF_PATH}", disableAutoFetch: true, disableStream: true,
    rangeChunkSize: {CHUNK},
  }}).promise;
  const page = await pdf.getPage(1);
  const viewport = page.getViewport({{scale: 1}});
  const canvas = document.getElementById("page1");
  canvas.width = viewport.width;
  canvas.height = viewport.height;
  await page.render({{canvasContext: canvas.getContext("2d"), viewport}}).promise;
  document.title = "rendered " + pdf.numPages;
}} catch (error) {{
  document.title = "failed: " + error;
}}
</script></body></html>
"""

IMAGE_VIEWER = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plate viewer</title></head>
<body><div id="viewer" style="width: 600px; height: 400px; background: #000"></div>
<script src="/osd/openseadragon.min.js"></script>
<script>
// The image server's address, put together at run time: no URL in this page.
const tiles = [["ht", "tps:"].join(""), "", ["tiles", "vendor-b", "test"].join(".")].join("/");
window.viewerState = {{failed: "", tileFailures: 0}};
const viewer = OpenSeadragon({{
  id: "viewer", prefixUrl: "/osd/images/", tileSources: tiles + "{DZI_PATH}",
  crossOriginPolicy: "Anonymous", drawer: "canvas", showNavigationControl: false,
  animationTime: 0, immediateRender: true,
}});
viewer.addHandler("open-failed", (e) => {{ viewerState.failed = "open failed: " + e.message; }});
viewer.addHandler("tile-load-failed", () => {{ viewerState.tileFailures += 1; }});
window.viewer = viewer;
</script></body></html>
"""


def build_pdf(pages: int = 480) -> bytes:
    """A valid PDF of ``pages`` pages, each with a line of text and a filled box, page 1's in
    PAGE_ONE_RGB; large enough (over 2 * CHUNK) that pdf.js reads it by ranges."""

    def box(n: int) -> str:
        rgb = PAGE_ONE_RGB if n == 0 else (20, 20 + n % 200, 200)
        return " ".join(f"{c / 255:.3f}" for c in rgb) + " rg 72 360 468 300 re f"

    out = demo_pdf("Annual report", pages, box)
    assert len(out) > 2 * CHUNK, "pdf.js would read so small a PDF whole, not by ranges"
    return out


@cache
def solid_png(width: int, height: int, rgb: tuple[int, int, int] = TILE_RGB) -> bytes:
    """A PNG of one colour, built by hand (zlib and the PNG chunk format, no imaging library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\0" + bytes(rgb) * width  # filter type 0, then RGB pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join((
        b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header),
        chunk(b"IDAT", zlib.compress(row * height)), chunk(b"IEND", b""),
    ))  # fmt: skip


def dzi_descriptor() -> str:
    """The Deep Zoom descriptor of the generated image."""
    width, height = IMAGE_SIZE
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
        f'TileSize="{TILE_SIZE}" Overlap="0" Format="png"><Size Width="{width}" Height="{height}"/>'
        "</Image>\n"
    )


def tile_size(level: int, column: int, row: int) -> tuple[int, int] | None:
    """The pixel size of one Deep Zoom tile (edge tiles are smaller), or None past the edge."""
    top = (max(IMAGE_SIZE) - 1).bit_length()  # Deep Zoom's top level: ceil(log2(longest side))
    if not 0 <= level <= top:
        return None
    scale = 2 ** (top - level)
    level_w, level_h = (-(-side // scale) for side in IMAGE_SIZE)
    width, height = level_w - column * TILE_SIZE, level_h - row * TILE_SIZE
    if width <= 0 or height <= 0:
        return None
    return min(width, TILE_SIZE), min(height, TILE_SIZE)


@dataclass(frozen=True)
class Seen:
    """One request a vendor answered."""

    host: str
    path: str
    range: str
    """The Range header, or ""."""


@dataclass
class AppsVendor:
    port: int
    ca_file: Path
    seen: list[Seen] = field(default_factory=list)

    def resolve(self) -> dict[str, str]:
        """The gateway's ``upstream.resolve``: every vendor host on this loopback port."""
        return {host: f"127.0.0.1:{self.port}" for host in HOSTS}

    def requests(self, host: str, prefix: str = "/") -> list[Seen]:
        """What ``host`` was asked for under ``prefix``."""
        return [s for s in self.seen if s.host == host and s.path.startswith(prefix)]


CORS = {
    "Access-Control-Allow-Origin": "*",
    # pdf.js reads these to decide on range requests, as a real file host allows.
    "Access-Control-Expose-Headers": "Accept-Ranges, Content-Range, Content-Length, Content-Encoding",
}
JS = "text/javascript"  # .mjs too: module scripts need a JavaScript type


def _files(
    root: Path, cors: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The files under ``root``, by the route's {name} (no way out of ``root``)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = (root / name).resolve()
        if not path.is_file() or not path.is_relative_to(root.resolve()):
            raise web.HTTPNotFound()
        response = web.FileResponse(path, headers=CORS if cors else None)
        if path.suffix in (".js", ".mjs"):
            response.content_type = JS
        return response

    return handler


def apps_app(pdf: Path, seen: list[Seen]) -> web.Application:
    """The five vendor hosts on one server, by Host."""

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.append(
            Seen(request.host.split(":")[0], request.path, request.headers.get("Range", ""))
        )
        return await handler(request)

    def page(text: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=text, content_type="text/html")

        return handler

    async def pdf_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(pdf, headers=CORS)  # byte ranges, as a real file server does

    async def descriptor(request: web.Request) -> web.Response:
        return web.Response(text=dzi_descriptor(), content_type="application/xml", headers=CORS)

    async def tile(request: web.Request) -> web.Response:
        level, column, row = (int(request.match_info[k]) for k in ("level", "column", "row"))
        size = tile_size(level, column, row)
        if size is None:
            raise web.HTTPNotFound()
        return web.Response(body=solid_png(*size), content_type="image/png", headers=CORS)

    routes = {
        VIEWER_A: [("/", page(PDF_VIEWER)), ("/pdfjs/{name}", _files(PDFJS))],
        CDN_A: [("/pdfjs/{name}", _files(PDFJS, cors=True))],
        FILES_A: [(PDF_PATH, pdf_file)],
        WWW_B: [("/", page(IMAGE_VIEWER)), ("/osd/{name:.+}", _files(OSD))],
        TILES_B: [
            (DZI_PATH, descriptor),
            ("/dzi/plate_files/{level:\\d+}/{column:\\d+}_{row:\\d+}.png", tile),
        ],
    }
    app = web.Application(middlewares=[record])
    for host, table in routes.items():
        site = web.Application()
        for path, handler in table:
            site.router.add_get(path, handler)
        app.add_domain(host, site)
    return app


def applications_installed() -> None:
    """Skip without the applications from npm (fail where CARREL_REQUIRE_NODE is set: CI)."""
    missing = [p for p in (PDFJS / "pdf.mjs", OSD / "openseadragon.min.js") if not p.is_file()]
    if missing:
        message = f"{missing[0]} is missing: make apps (npm ci in tests/apps; needs nodejs npm)"
        if os.environ.get("CARREL_REQUIRE_NODE"):
            pytest.fail(message)
        pytest.skip(message)


@asynccontextmanager
async def run_apps_vendor(tmp_path: Path) -> AsyncIterator[AppsVendor]:
    """Both vendors over TLS on one loopback port (a trustme certificate for all five hosts)."""
    applications_installed()
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*HOSTS).configure_cert(context)
    ca_file = tmp_path / "apps-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pdf = tmp_path / "annual-report.pdf"
    pdf.write_bytes(build_pdf())
    vendor = AppsVendor(free_port(), ca_file)
    runner = web.AppRunner(apps_app(pdf, vendor.seen), shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", vendor.port, ssl_context=context).start()
    try:
        yield vendor
    finally:
        await runner.cleanup()
