"""Redis Sentinel: one primary, one replica, three sentinels, all real; the primary dies."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import DummyCookieJar

from gateway import config
from gateway.app import build_app
from gateway.embedded_redis import find_redis_server, free_port, spawn
from tests.patron_support import Browser, prepare
from tests.support import wait_for_port

PASSWORD = "sentinel-test-password"


def node(data: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    data.mkdir(parents=True, exist_ok=True)
    return spawn([find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                  "--requirepass", PASSWORD, "--masterauth", PASSWORD, "--dir", str(data),
                  "--save", "", "--appendonly", "no", *extra])  # fmt: skip


def sentinel(data: Path, port: int, primary: int) -> subprocess.Popen[bytes]:
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "sentinel.conf"  # sentinels rewrite their file: one each
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {data}\n"
        f"sentinel monitor mymaster 127.0.0.1 {primary} 2\n"
        f"sentinel auth-pass mymaster {PASSWORD}\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n"
    )
    return spawn([find_redis_server(), str(conf), "--sentinel"])


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], list[int]]]:
    primary_port, replica_port = free_port(), free_port()
    sentinel_ports = [free_port() for _ in range(3)]
    primary = node(tmp_path / "primary", primary_port)
    procs = [
        primary,
        node(tmp_path / "replica", replica_port, "--replicaof", "127.0.0.1", str(primary_port)),
    ]
    try:
        for port in (primary_port, replica_port):
            wait_for_port(port)
        replica = redis.Redis(port=replica_port, password=PASSWORD)
        deadline = time.monotonic() + 10
        while replica.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.1)
        procs += [
            sentinel(tmp_path / f"s{i}", p, primary_port) for i, p in enumerate(sentinel_ports)
        ]
        for port in sentinel_ports:
            wait_for_port(port)
        deadline = time.monotonic() + 10
        while (
            redis.Redis(port=sentinel_ports[0]).execute_command("SENTINEL", "replicas", "mymaster")
            == []
        ):
            assert time.monotonic() < deadline, "the sentinels did not find the replica"
            time.sleep(0.2)
        yield primary, sentinel_ports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_log_in_kill_the_primary_and_go_on(
    topology: tuple[subprocess.Popen[bytes], list[int]],  # first: it stops after the gateway
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
) -> None:
    primary, sentinel_ports = topology
    settings = make_settings(redis={
        "url": "", "sentinels": [f"127.0.0.1:{p}" for p in sentinel_ports],
        "service_name": "mymaster", "password": PASSWORD, "wait_replicas": 1,
    })  # fmt: skip
    prepare(settings)
    client = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    first = Browser(client)
    assert (await first.login()).status == 302
    assert (await first.get("/menu")).status == 200
    primary.kill()
    primary.wait()
    started = time.monotonic()
    while True:
        try:
            if (await Browser(client).login()).status == 302:
                break
        except AssertionError:  # the login page itself answered 503 while Redis was away
            pass
        assert time.monotonic() - started < 30, "no login within 30 s of the primary dying"
        await asyncio.sleep(0.5)
    assert (await first.get("/menu")).status == 200  # the session from before the failover
    print(f"\nlogin worked again {time.monotonic() - started:.1f} s after the primary died")
