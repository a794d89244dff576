"""Throttles that hold against one attacker without locking out everyone else: PIN spraying
counted per address block, IPv6 counted per /64, and a cap on connections per address."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import config, serving
from gateway.app import build_app
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.embedded_redis import free_port
from gateway.netblocks import block_key, host_key
from tests.admin_support import add_staff, bearer, start
from tests.patron_support import CARD, LOGIN_HOST, PIN, Browser, prepare
from tests.support import ManualClock, wait_for_port

Make = Callable[..., config.Settings]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FrontedBrowser(Browser):
    """A browser behind the trusted front (127.0.0.1), at the address the front names."""

    def __init__(self, client: TestClient, address: str) -> None:
        super().__init__(client)
        self.address = address

    def headers(self, host: str = LOGIN_HOST, **extra: str) -> dict[str, str]:
        return super().headers(host, **{"X-Forwarded-For": self.address, **extra})


async def fronted(
    aiohttp_client: Callable[..., Any], make: Make, clock: Clock = SYSTEM_CLOCK, **lockout: int
) -> tuple[TestClient, dict[str, str]]:
    """A gateway behind a trusted front on 127.0.0.1, with patrons and staff (API tokens)."""
    settings = make(server={"trusted_proxies": ["127.0.0.1"]}, lockout=lockout)
    prepare(settings)
    tokens = add_staff(settings)
    return await start(aiohttp_client, settings, clock), tokens


@pytest.mark.parametrize(
    ("address", "host", "block"),
    [
        ("203.0.113.7", "203.0.113.7", "203.0.113.0/24"),
        ("::ffff:203.0.113.7", "203.0.113.7", "203.0.113.0/24"),  # IPv4-mapped: the IPv4 host
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("[2001:db8::1]", "2001:db8::/64", "2001:db8::/48"),
        ("fe80::1%eth0", "fe80::/64", "fe80::/48"),
        ("unknown", "unknown", "unknown"),
    ],
)
def test_addresses_count_per_host_and_per_block(address: str, host: str, block: str) -> None:
    assert host_key(address) == host
    assert block_key(address) == block


async def test_pin_sprayed_from_one_block_is_throttled_there_only(
    aiohttp_client: Callable[..., Any], make_settings: Make
) -> None:
    client, tokens = await fronted(aiohttp_client, make_settings, pin_spray_cards=3)
    sprayed = [f"2999999999990{i}" for i in range(3)]
    for i, card in enumerate(sprayed):  # the spray hops addresses inside one /24
        wrong = await FrontedBrowser(client, f"203.0.113.{10 + i}").login(card=card, pin=PIN)
        assert wrong.status == 401
    # The PIN is no longer checked for anyone in that block, the right card included ...
    throttled = await FrontedBrowser(client, "203.0.113.200").login(card=CARD, pin=PIN)
    assert throttled.status == 429
    # ... but the patron whose PIN it is logs in from anywhere else.
    patron = await FrontedBrowser(client, "198.51.100.1").login(card=CARD, pin=PIN)
    assert patron.status == 302
    # Spread over many blocks it is an alarm: one audit entry per PIN and window, not per try.
    for i in range(3):
        away = await FrontedBrowser(client, f"192.0.2.{i}").login(card=f"2999999999991{i}", pin=PIN)
        assert away.status == 401
    audit = await bearer(client, tokens["ada"], "GET", "/admin/api/audit?kind=pin_spray_alarm")
    entries = (await audit.json())["entries"]
    assert len(entries) == 1
    assert entries[0]["detail"] == {"cards": 3, "window": 3600, "scope": "patron"}
    assert PIN not in str(entries)


async def test_a_sprayed_pin_is_checked_again_once_pin_spray_window_is_over(
    aiohttp_client: Callable[..., Any], make_settings: Make
) -> None:
    clock = ManualClock()
    client, _ = await fronted(aiohttp_client, make_settings, clock, pin_spray_cards=3)
    for i in range(3):
        card = f"2999999999990{i}"
        assert (
            await FrontedBrowser(client, f"203.0.113.{i}").login(card=card, pin=PIN)
        ).status == 401
    clock.advance(3599)
    assert (await FrontedBrowser(client, "203.0.113.9").login(card=CARD, pin=PIN)).status == 429
    clock.advance(2)
    assert (await FrontedBrowser(client, "203.0.113.9").login(card=CARD, pin=PIN)).status == 302


async def test_ipv6_failures_lock_the_whole_slash_64(
    aiohttp_client: Callable[..., Any], make_settings: Make
) -> None:
    client, _ = await fronted(aiohttp_client, make_settings, address_failures=3)
    for i, pin in enumerate(("1111", "2222", "3333")):  # a new address in the /64 every time
        attempt = FrontedBrowser(client, f"2001:db8:1:2::{i + 1:x}")
        assert (await attempt.login(card=f"2999999999990{i}", pin=pin)).status == 401
    other_host = FrontedBrowser(client, "2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert (await other_host.login(card=CARD, pin=PIN)).status == 429
    next_door = FrontedBrowser(client, "2001:db8:1:3::1")  # another /64: another host
    assert (await next_door.login(card=CARD, pin=PIN)).status == 302


@contextlib.asynccontextmanager
async def listening(settings: config.Settings) -> AsyncIterator[int]:
    """The gateway as ``gateway serve`` runs it (``serving.start``), on a loopback port."""
    prepare(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = await serving.start(build_app(settings), settings, sock=sock)
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()


async def connect(port: int, source: str = "127.0.0.1") -> Connection:
    """A raw connection from ``source`` that has sent half a request line, as slowloris does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HT")
    await writer.drain()
    return reader, writer


async def closed(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the gateway closes the connection within ``within`` seconds."""
    try:
        return await asyncio.wait_for(reader.read(100), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def healthz(port: int, source: str = "127.0.0.1") -> bytes:
    """A whole request from ``source``: the status line of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(
        b"GET /healthz HTTP/1.1\r\nHost: login.proxy.localhost\r\nConnection: close\r\n\r\n"
    )
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return line


async def test_one_address_cannot_hold_more_than_its_connections(make_settings: Make) -> None:
    settings = make_settings(server={"max_connections_per_address": 3})
    async with listening(settings) as port:
        held = [await connect(port) for _ in range(3)]
        over = await connect(port)
        assert await closed(over[0], 2.0)  # the fourth is closed at once
        assert not await closed(held[0][0], 0.2)  # the three it holds stay open
        assert (await healthz(port, source="127.0.0.2")).startswith(b"HTTP/1.1 200")
        held[0][1].close()  # one of its connections ends: the address may open one again
        await asyncio.sleep(0.1)
        assert (await healthz(port)).startswith(b"HTTP/1.1 200")
        for _, writer in [*held[1:], over]:
            writer.close()


async def test_a_trusted_front_is_not_capped(make_settings: Make) -> None:
    settings = make_settings(
        server={"max_connections_per_address": 1, "trusted_proxies": ["127.0.0.1"]}
    )
    async with listening(settings) as port:
        held = await connect(port)
        assert (await healthz(port)).startswith(b"HTTP/1.1 200")
        held[1].close()


async def test_unfinished_request_headers_are_closed_after_the_idle_timeout(
    make_settings: Make,
) -> None:
    settings = make_settings(server={"idle_timeout": 0.5})
    async with listening(settings) as port:
        reader, writer = await connect(port)
        writer.write(b"TP/1.1\r\nHost: login.proxy.localhost\r\n")  # and never the blank line
        assert not await closed(reader, 0.2)
        assert await closed(reader, 3.0)


async def test_gateway_serve_caps_connections_per_address(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_SERVER__MAX_CONNECTIONS_PER_ADDRESS": "2",
        "GATEWAY_RULES__DIR": str(tmp_path / "rules"),
        "GATEWAY_REDIS__URL": redis_url,
    }
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env)
    try:
        await asyncio.to_thread(wait_for_port, port, 20)
        held = [await connect(port) for _ in range(2)]
        over = await connect(port)  # kept: a dropped writer would close it from this side
        assert await closed(over[0], 2.0)
        assert (await healthz(port, source="127.0.0.2")).startswith(b"HTTP/1.1 200")
        for _, writer in [*held, over]:
            writer.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
