"""Health and readiness on the gateway's own host, against a real Redis that we kill and revive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from tests.support import LOGIN_HOST, RedisProcess

HOST = {"Host": LOGIN_HOST}


async def test_healthz_answers_on_the_login_host(
    aiohttp_client: Callable[..., TestClient], make_settings: Callable[..., config.Settings]
) -> None:
    client = await aiohttp_client(build_app(make_settings()))
    response = await client.get("/healthz", headers=HOST)
    assert response.status == 200


async def test_readyz_is_200_while_redis_answers(
    aiohttp_client: Callable[..., TestClient], make_settings: Callable[..., config.Settings]
) -> None:
    client = await aiohttp_client(build_app(make_settings()))
    response = await client.get("/readyz", headers={"Host": f"{LOGIN_HOST}:8080"})
    assert response.status == 200


async def _status_within(client: TestClient, status: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < seconds:
        response = await client.get("/readyz", headers=HOST)
        if response.status == status:
            return loop.time() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz did not turn {status} within {seconds}s")


async def test_readyz_turns_503_when_redis_dies_and_200_when_it_returns(
    aiohttp_client: Callable[..., TestClient],
    make_settings: Callable[..., config.Settings],
    tmp_path: Path,
) -> None:
    own = RedisProcess(tmp_path / "own-redis").start()
    try:
        client = await aiohttp_client(build_app(make_settings(redis={"url": own.url})))
        assert (await client.get("/readyz", headers=HOST)).status == 200
        own.kill()
        assert await _status_within(client, 503, 2.0) < 2.0
        body = await (await client.get("/readyz", headers=HOST)).text()
        assert "redis" in body and "127.0.0.1" not in body
        own.start()
        await _status_within(client, 200, 5.0)
    finally:
        own.kill()


async def test_unknown_host_gets_a_readable_404_page(
    aiohttp_client: Callable[..., TestClient], make_settings: Callable[..., config.Settings]
) -> None:
    client = await aiohttp_client(build_app(make_settings()))
    response = await client.get("/", headers={"Host": "elsewhere.example.org"})
    assert response.status == 404
    assert "text/html" in response.headers["Content-Type"]
    assert "elsewhere.example.org" in await response.text()


async def test_unknown_page_on_login_host_is_a_translated_404(
    aiohttp_client: Callable[..., TestClient], make_settings: Callable[..., config.Settings]
) -> None:
    client = await aiohttp_client(build_app(make_settings()))
    response = await client.get("/nope", headers={**HOST, "Accept-Language": "es-MX,es;q=0.9"})
    assert response.status == 404
    text = await response.text()
    assert 'lang="es"' in text and "Página no encontrada" in text
