"""Redis Cluster: three real nodes started by the test; the login and proxy flows work."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import DummyCookieJar, web

from gateway import config
from gateway.app import build_app
from gateway.embedded_redis import find_redis_server, free_port, spawn
from tests.patron_support import Browser, prepare
from tests.support import serve_on_loopback, wait_for_port

PASSWORD = "cluster-test-password"
SLOTS = 16384


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) exists and is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[int]]:
    ports = [cluster_port() for _ in range(3)]
    procs = []
    try:
        for i, port in enumerate(ports):
            data = tmp_path / f"node{i}"
            data.mkdir()
            procs.append(spawn([find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                                "--requirepass", PASSWORD, "--dir", str(data), "--save", "",
                                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]))  # fmt: skip
        for port in ports:
            wait_for_port(port)
        nodes = [redis.Redis(port=p, password=PASSWORD) for p in ports]
        for i, node in enumerate(nodes):  # three primaries, a third of the slots each
            node.execute_command(
                "CLUSTER", "ADDSLOTS", *range(i * SLOTS // 3, (i + 1) * SLOTS // 3)
            )
        for port in ports[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        deadline = time.monotonic() + 20
        while not all(n.cluster("info")["cluster_state"] == "ok" for n in nodes):
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.2)
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.fixture
async def vendor_port() -> AsyncIterator[int]:
    async def page(request: web.Request) -> web.Response:
        response = web.Response(
            text='<a href="http://www.vendor.test/next">next</a>', content_type="text/html"
        )
        response.set_cookie("vendor", "kept-in-the-jar")
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async for port in serve_on_loopback(app):
        yield port


async def test_login_and_proxy_flows_on_a_three_node_cluster(
    cluster: list[int],  # first: it stops after the gateway
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor_port: int,
) -> None:
    settings = make_settings(
        redis={"url": f"redis://:{PASSWORD}@127.0.0.1:{cluster[0]}/0", "cluster": True},
        upstream={"resolve": {"www.vendor.test": f"127.0.0.1:{vendor_port}"}},
    )
    prepare(settings)
    Path(settings.rules.dir, "vendor.txt").write_text(
        "Title Vendor\nURL http://www.vendor.test/\nHJ http://www.vendor.test\n"
    )
    client = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    assert (await Browser(client).login(pin="9051")).status == 401  # the lockout script runs
    patron = Browser(client)
    assert (await patron.login()).status == 302
    assert (await patron.get("/menu")).status == 200
    page = await patron.get("/x", host="www-vendor-test---http.proxy.localhost")
    assert page.status == 200
    assert "www-vendor-test---http.proxy.localhost:8080/next" in await page.text()
    assert "vendor" not in patron.cookies  # the vendor's cookie went to the jar in the cluster
    nodes = [redis.Redis(port=p, password=PASSWORD) for p in cluster]
    sessions = [(n, k) for n in nodes for k in n.keys("carrel:session:*")]
    assert any(f.startswith(b"cookie:") for n, k in sessions for f in n.hkeys(k))  # in its hash
    assert (await patron.logout()).status == 200
    assert (await patron.get("/menu")).status == 302
    keys = [k for n in nodes for k in n.keys("carrel:*")]
    assert any(b"{lockout}" in k for k in keys)
    assert not any(b"session:" in k for k in keys)  # logged out: the session and its jar are gone
