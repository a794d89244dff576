"""``gateway serve --workers 2`` stopped under load: every request answered or refused cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway import config
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from tests.patron_support import CARD, PIN
from tests.support import serve_on_loopback, wait_for_port
from tests.test_two_instances import login

SLOW = 0.4


@pytest.fixture
async def slow_vendor() -> AsyncIterator[int]:
    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW)  # requests are in flight when the stop comes
        return web.Response(text="<p>done</p>" * 200, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async for port in serve_on_loopback(app):
        yield port


async def test_sigterm_under_load_loses_no_request(
    tmp_path: Path, redis_url: str, slow_vendor: int
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "v.txt").write_text(
        "Title V\nURL http://www.vendor.test/\nHJ http://www.vendor.test\n"
    )
    local_directory(config.build({"server": {"state_dir": str(tmp_path / "state")}}, env={})).add(
        CARD, PIN
    )
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_SERVER__SHUTDOWN_GRACE": "10",
        "GATEWAY_RULES__DIR": str(rules),
        "GATEWAY_REDIS__URL": redis_url,
        "GATEWAY_UPSTREAM__RESOLVE": f'{{ "www.vendor.test" = "127.0.0.1:{slow_vendor}" }}',
        "GATEWAY_LOCKOUT__ADDRESS_FAILURES": "1000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    outcomes: Counter[str] = Counter()
    try:
        wait_for_port(port, timeout=20)
        await asyncio.sleep(1.0)  # both workers up
        session_id = await login(port)
        headers = {
            "Host": "www-vendor-test---http.proxy.localhost",
            "Cookie": f"carrel_session={session_id}",
        }
        stop = asyncio.Event()

        async def patron() -> None:
            connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time
            async with aiohttp.ClientSession(connector=connector) as session:
                while not stop.is_set():
                    try:
                        async with session.get(
                            f"http://127.0.0.1:{port}/page", headers=headers
                        ) as r:
                            body = await r.read()
                            outcomes[
                                "answered"
                                if r.status == 200 and body.endswith(b"</p>")
                                else f"status {r.status}"
                            ] += 1
                    except aiohttp.ClientConnectorError:
                        outcomes["refused"] += 1  # nobody listening any more: a clean refusal
                        await asyncio.sleep(0.05)
                    except (aiohttp.ClientError, ConnectionError) as exc:
                        outcomes[f"lost: {type(exc).__name__}"] += 1

        patrons = [asyncio.create_task(patron()) for _ in range(20)]
        await asyncio.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
        stop.set()
        await asyncio.gather(*patrons)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"\noutcomes under SIGTERM: {dict(outcomes)}")
    assert proc.returncode == 0
    assert outcomes["answered"] > 20, outcomes
    assert all(kind in ("answered", "refused") for kind in outcomes), outcomes
