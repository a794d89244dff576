"""Hot reload in a running gateway: edits live within 2 s, broken edits keep the old rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import RULES
from gateway.hostmap import Origin

ALPHA = Origin.of("https", "alpha.example.org")
BETA = Origin.of("https", "beta.example.org")


async def until(predicate: Callable[[], bool], seconds: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > seconds:
            raise AssertionError(f"not true within {seconds}s")
        await asyncio.sleep(0.05)
    return loop.time() - start


@pytest.fixture
async def running(
    aiohttp_client: Callable[..., TestClient],
    make_settings: Callable[..., config.Settings],
    tmp_path: Path,
) -> tuple[TestClient, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "alpha.txt").write_text("Title Alpha\nURL https://alpha.example.org/\n")
    client = await aiohttp_client(build_app(make_settings()))
    return client, rules / "alpha.txt"


async def test_an_edit_is_live_within_two_seconds(running: tuple[TestClient, Path]) -> None:
    client, path = running
    store = client.app[RULES]
    assert store.ruleset.allows(ALPHA) and not store.ruleset.allows(BETA)
    path.write_text("Title Alpha\nURL https://alpha.example.org/\nHJ https://beta.example.org\n")
    assert await until(lambda: store.ruleset.allows(BETA) is not None, 2.0) < 2.0


async def test_a_new_file_and_a_removed_file_are_picked_up(
    running: tuple[TestClient, Path],
) -> None:
    client, path = running
    store = client.app[RULES]
    (path.parent / "beta.txt").write_text("Title Beta\nURL https://beta.example.org/\n")
    await until(lambda: store.ruleset.allows(BETA) is not None, 2.0)
    path.unlink()
    await until(lambda: store.ruleset.allows(ALPHA) is None, 2.0)


async def test_a_broken_edit_keeps_the_last_good_rules_and_logs_file_and_line(
    running: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, path = running
    store = client.app[RULES]
    caplog.set_level(logging.ERROR, logger="gateway.rules.loader")
    path.write_text(
        "Title Alpha\nURL https://alpha.example.org/\nHJ https://beta.example.org\nReplace x\n"
    )
    await until(lambda: any("alpha.txt:4: error" in r.getMessage() for r in caplog.records), 2.0)
    assert store.ruleset.allows(ALPHA) is not None
    assert store.ruleset.allows(BETA) is None  # the broken version is not live
    path.write_text("Title Alpha\nURL https://alpha.example.org/\nHJ https://beta.example.org\n")
    await until(lambda: store.ruleset.allows(BETA) is not None, 2.0)


async def test_the_proxied_host_page_follows_the_reloaded_rules(
    running: tuple[TestClient, Path],
) -> None:
    client, path = running
    host = {"Host": "beta-example-org.proxy.localhost"}
    text = await (await client.get("/", headers=host)).text()
    assert "no rule covers https://beta.example.org" in text
    path.write_text("Title Alpha\nURL https://alpha.example.org/\nHJ https://beta.example.org\n")
    await until(lambda: client.app[RULES].ruleset.allows(BETA) is not None, 2.0)
    response = await client.get("/x", headers=host, allow_redirects=False)
    assert response.status == 302  # allowed now: no session yet, so to the login page
    assert response.headers["Location"] == (
        "http://login.proxy.localhost:8080/login?qurl=https%3A%2F%2Fbeta.example.org%2Fx"
    )
