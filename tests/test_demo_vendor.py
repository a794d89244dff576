"""The offline demo vendor: real TLS on loopback, several hosts, a valid PDF."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.demo.tls import make_certificates, server_context
from gateway.demo.vendor import HOSTS, build_vendor_app, demo_pdf
from gateway.embedded_redis import free_port


class Loopback(AbstractResolver):
    """Resolves every name to 127.0.0.1 (the demo's hosts are not in DNS)."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def test_demo_pdf_is_a_well_formed_pdf() -> None:
    data = demo_pdf("Test", pages=5)
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    xref = int(re.search(rb"startxref\n(\d+)", data).group(1))  # type: ignore[union-attr]
    assert data[xref : xref + 4] == b"xref"
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", data)]
    assert all(re.match(rb"\d+ 0 obj", data[o:]) for o in offsets)
    assert data.count(b"/Type /Page ") == 5


async def test_demo_vendor_serves_its_hosts_over_tls(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path, HOSTS)
    runner = web.AppRunner(build_vendor_app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context(cert, key)).start()
    client_tls = ssl.create_default_context(cafile=str(ca))
    connector = aiohttp.TCPConnector(ssl=client_tls, resolver=Loopback())
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"https://www.demo-journals.test:{port}/") as page:
                assert page.status == 200
                assert "https://cdn.demo-journals.test/style.css" in await page.text()
            login = f"https://auth.demo-journals.test:{port}/login"
            async with session.get(login, allow_redirects=False) as response:
                assert response.status == 302
                assert "Domain=demo-journals.test" in response.headers["Set-Cookie"]
            pdf = f"https://cdn.demo-journals.test:{port}/files/article-1.pdf"
            async with session.get(pdf) as response:
                assert response.content_type == "application/pdf"
                assert (await response.read()).startswith(b"%PDF")
    finally:
        await runner.cleanup()
