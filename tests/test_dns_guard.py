"""Vendor names are looked up in real DNS (a UDP server on loopback via upstream.nameservers):
a name whose answer is loopback or the cloud metadata address is refused, even with a vendor
listening there; the same vendor through upstream.resolve is reached. An address in the URL
itself (which aiohttp never hands to a resolver) is checked the same way at connect time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from gateway import config
from gateway.appkeys import RULES
from gateway.hostmap import Origin
from gateway.proxy.upstream import BlockedAddress, make_session
from gateway.rules.loader import Loaded
from gateway.rules.model import Database, HostRule, Source
from gateway.rules.ruleset import RuleSet
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


def _recording_vendor(seen: list[str]) -> web.Application:
    async def vendor_page(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="internal service")

    vendor = web.Application()
    vendor.router.add_get("/{tail:.*}", vendor_page)
    return vendor


async def test_a_literal_loopback_address_in_the_rules_is_refused_at_connect_time(
    aiohttp_client: Any, make_settings: Make, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    async for vendor_port in serve_on_loopback(_recording_vendor(seen)):
        settings = make_settings()
        prepare(settings)
        client = await start(aiohttp_client, settings)
        # The parser refuses such a line, so the rule set is built without it: the connect-time
        # check must hold even if a rule somehow named the address.
        origin = Origin.of("http", "127.0.0.1", vendor_port)
        source = Source("internal.txt", 1)
        internal = Database(
            "Internal", f"{origin.url()}/", source, hosts=(HostRule(origin, True, source),)
        )
        client.app[RULES].current = Loaded(RuleSet([internal]), (), 1)
        patron = Browser(client)
        host = await _login_to(patron, f"{origin.url()}/admin")
        response = await patron.get("/admin", host=host)
        assert response.status == 502, await response.text()
        assert "internal service" not in await response.text()
        assert (
            "upstream refused: 127.0.0.1 is a loopback address, which is not public" in caplog.text
        )
        assert seen == []  # the loopback server got no request


@pytest.mark.parametrize(
    ("host", "logged"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1 is an IPv4-mapped address for 127.0.0.1"),
        ("127.1", "127.1 (127.0.0.1) is a loopback address"),
        ("2130706433", "2130706433 (127.0.0.1) is a loopback address"),
        ("0x7f.1", "0x7f.1 (127.0.0.1) is a loopback address"),
    ],
)
async def test_the_upstream_client_refuses_every_spelling_of_a_loopback_literal(
    make_settings: Make, host: str, logged: str
) -> None:
    seen: list[str] = []
    async for vendor_port in serve_on_loopback(_recording_vendor(seen)):
        settings = make_settings(
            upstream={"resolve": {"www.vendor.test": f"127.0.0.1:{vendor_port}"}}
        )
        session = make_session(settings.upstream)
        try:
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await session.get(f"http://{host}:{vendor_port}/secret")
            assert isinstance(refused.value.os_error, BlockedAddress)
            assert str(refused.value.os_error).startswith(logged)
            assert seen == []
            async with session.get(f"http://www.vendor.test:{vendor_port}/page") as allowed:
                assert allowed.status == 200  # upstream.resolve may point at loopback
            assert seen == ["/page"]
        finally:
            await session.close()
