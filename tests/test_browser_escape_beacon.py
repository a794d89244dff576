"""The companion's beacon in Chromium: hosts a page (or a worker) reached outside the rules reach
the gateway's escaped-hosts list for the page's database, host only, from the page's own
proxied host; a page left at once still tells (on pagehide)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway import config
from gateway.escapes.store import EscapeStore, Row
from tests.companion_harness import APP, Runtime, run_runtime


@pytest.fixture
async def runtime(
    tmp_path: Path, make_settings: Callable[..., config.Settings]
) -> AsyncIterator[Runtime]:
    async for running in run_runtime(tmp_path, make_settings):
        yield running


async def listed(redis_url: str, count: int) -> list[Row]:
    """The escaped hosts the gateway counted, once there are ``count`` (10 s at most)."""
    redis = aioredis.Redis.from_url(redis_url)
    store = EscapeStore(redis, time.time)
    rows: list[Row] = []
    for _ in range(100):
        rows = await store.rows()
        if len(rows) >= count:
            break
        await asyncio.sleep(0.1)
    await redis.aclose()
    return sorted(rows, key=lambda r: r.host)


NOTE = "globalThis.__carrelCompanion.toProxy(['ht', 'tps:', '//', {host!r}, '/p?card=1'].join(''))"


async def test_a_page_and_its_worker_tell_the_gateway_the_hosts_they_reached(
    runtime: Runtime, redis_url: str
) -> None:
    runtime.vendor.add(APP, "/w.js", NOTE.format(host="w.elsewhere.example") + "; postMessage(1);")
    runtime.vendor.page("/escape", f"""
        const kept = {NOTE.format(host="cdn.elsewhere.example")};
        const mapped = globalThis.__carrelCompanion.toProxy(U("api", "/v1"));
        new Worker("/w.js").onmessage = () => {{ window.result = {{ kept, mapped }}; }};
    """)  # fmt: skip
    result = await runtime.open("/escape")
    assert result["kept"] == "https://cdn.elsewhere.example/p?card=1"  # left alone, and noted
    assert result["mapped"] == runtime.proxied("api.runtime.test", "/v1")  # covered: not noted
    rows = await listed(redis_url, 2)
    assert [(r.database, r.host, r.week) for r in rows] == [
        ("Runtime", "cdn.elsewhere.example", 1), ("Runtime", "w.elsewhere.example", 1)
    ]  # fmt: skip
    beacons = [u for u in runtime.requested if u.endswith("/__carrel/escaped")]
    assert beacons and set(beacons) == {runtime.proxied(APP, "/__carrel/escaped")}
    assert runtime.vendor.requests(APP, "/__carrel/escaped") == []  # the gateway's, not sent on


async def test_a_page_left_at_once_still_tells_on_pagehide(
    runtime: Runtime, redis_url: str
) -> None:
    runtime.vendor.page(
        "/leave", f"{NOTE.format(host='gone.elsewhere.example')}; window.result = 1;"
    )
    await runtime.open("/leave")
    await runtime.page.goto(runtime.proxied(APP, "/"))  # well before the beacon's 2 s delay
    rows = await listed(redis_url, 1)
    assert [r.host for r in rows] == ["gone.elsewhere.example"]
