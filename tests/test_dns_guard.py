"""Vendor names are looked up in real DNS (a UDP server on loopback via upstream.nameservers):
a name whose answer is loopback or the cloud metadata address is refused, even with a vendor
listening there; the same vendor through upstream.resolve is reached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from gateway import config
from tests.admin_support import start
from tests.dns_support import dns_server
from tests.patron_support import Browser, prepare
from tests.support import serve_on_loopback

Make = Callable[..., config.Settings]


async def _login_to(browser: Browser, url: str) -> str:
    """Log in with a starting point; the proxied host the gateway sends the patron to."""
    response = await browser.login(query=f"url={url}")
    assert response.status == 302, await response.text()
    return urlsplit(response.headers["Location"]).netloc.split(":")[0]


@pytest.mark.parametrize(("name", "address"), [("evil.test", "127.0.0.1"),
                                               ("meta.test", "169.254.169.254")])  # fmt: skip
async def test_names_that_dns_resolves_to_private_addresses_are_refused(
    aiohttp_client: Any,
    make_settings: Make,
    name: str,
    address: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def vendor_page(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="vendor")

    vendor = web.Application()
    vendor.router.add_get("/{tail:.*}", vendor_page)
    async for vendor_port in serve_on_loopback(vendor):
        async for dns_port, asked in dns_server({name: address}):
            rules = (
                f"Title Rebound\nURL http://{name}:{vendor_port}/\nHJ http://{name}:{vendor_port}\n"
            )
            for resolve, expected in (({}, 502), ({name: f"127.0.0.1:{vendor_port}"}, 200)):
                settings = make_settings(
                    upstream={"nameservers": [f"127.0.0.1:{dns_port}"], "resolve": resolve}
                )
                prepare(settings)
                Path(settings.rules.dir, "rebound.txt").write_text(rules)
                client = await start(aiohttp_client, settings)
                patron = Browser(client)
                host = await _login_to(patron, f"http://{name}:{vendor_port}/page")
                response = await patron.get("/page", host=host)
                assert response.status == expected, await response.text()
            assert f"{name} resolves to {address}, which is not public" in caplog.text
            assert set(asked) == {name}  # the refusal came from a real DNS answer
            assert seen == ["/page"]  # only the upstream.resolve request reached the vendor


def test_nameservers_are_checked() -> None:
    config.build({"upstream": {"nameservers": ["10.0.0.53", "127.0.0.1:5353"]}}, env={})
    with pytest.raises(config.ConfigError, match=r"upstream\.nameservers"):
        config.build({"upstream": {"nameservers": ["dns.example"]}}, env={})
    with pytest.raises(config.ConfigError, match="port"):
        config.build({"upstream": {"nameservers": ["127.0.0.1:0"]}}, env={})
