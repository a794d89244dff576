"""Prometheus metrics: off unless protected; totals over every process, through Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.embedded_redis import free_port
from gateway.metrics import METRICS, Metrics, render
from tests.patron_support import LOGIN_HOST, Browser, prepare

TOKEN = "scrape-me-please-0123456789"


async def start(aiohttp_client: Callable[..., Any], settings: config.Settings) -> TestClient:
    prepare(settings)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return client


async def test_metrics_are_off_unless_protected(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    assert (await client.get("/metrics", headers={"Host": LOGIN_HOST})).status == 404


async def test_token_protects_and_counts_add_up(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings]
) -> None:
    down = free_port()
    settings = make_settings(
        metrics={"token": TOKEN},
        upstream={"resolve": {"www.jstor.org": f"127.0.0.1:{down}"}},
    )
    client = await start(aiohttp_client, settings)
    assert (await client.get("/metrics", headers={"Host": LOGIN_HOST})).status == 403
    browser = Browser(client)
    await browser.login()
    await Browser(client).login(pin="9051")
    assert (await browser.get("/x", host="www-jstor-org.proxy.localhost")).status == 502
    response = await client.get(
        "/metrics", headers={"Host": LOGIN_HOST, "Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 200
    text = await response.text()
    for name, (kind, _) in METRICS.items():
        assert f"# TYPE {name} {kind}" in text
    assert 'carrel_logins_total{result="ok"} 1' in text
    assert 'carrel_logins_total{result="wrong"} 1' in text
    assert 'carrel_requests_total{database="JSTOR",status="502"} 1' in text
    assert "carrel_active_sessions 1" in text
    assert "carrel_upstream_seconds_count" not in text  # no vendor answered


async def test_an_allowed_address_needs_no_token(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings(metrics={"allow": ["127.0.0.1/32"]}))
    assert (await client.get("/metrics", headers={"Host": LOGIN_HOST})).status == 200


def test_histogram_buckets_are_cumulative_and_ordered() -> None:
    metrics = Metrics()
    for seconds in (0.03, 0.2, 3.0):
        metrics.observe("carrel_upstream_seconds", seconds)
    text = render(dict(metrics._counts), 0)
    lines = [
        line for line in text.splitlines() if line.startswith("carrel_upstream_seconds_bucket")
    ]
    assert lines[0] == 'carrel_upstream_seconds_bucket{le="0.05"} 1'
    assert lines[-1] == 'carrel_upstream_seconds_bucket{le="+Inf"} 3'
    assert "carrel_upstream_seconds_count 3" in text


def test_the_example_configuration_documents_metrics() -> None:
    assert (
        "[metrics]" in (Path(__file__).resolve().parent.parent / "gateway.example.toml").read_text()
    )
