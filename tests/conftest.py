"""Shared fixtures: a real redis-server for the run, settings, and the gateway app against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis

from gateway import config
from tests.companion_harness import shared_chromium
from tests.ldap_support import Slapd, start_slapd
from tests.smtp_support import smtp  # noqa: F401 - a fixture for every test module
from tests.support import ManualClock, RedisProcess
from tests.vendor_support import Vendor, run_vendor


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One real redis-server for the whole run."""
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One real, seeded slapd for the run (tests/ldap_support.py), started when first asked
    for."""
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves (gateway.clock): sessions, lockouts and flows end by it."""
    return ManualClock()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The shared server's URL, flushed so every test starts empty."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> Any:
    """The gateway a module's own ``start_gateway`` fixture starts with its defaults (the
    sign-in modules: one provider, its rules)."""
    return await start_gateway()


@pytest.fixture
def make_settings(tmp_path: Path, redis_url: str) -> Callable[..., config.Settings]:
    """Build validated settings for a test: ``make_settings(server={"listen": ...})``."""

    def make(**sections: Any) -> config.Settings:
        data: dict[str, dict[str, Any]] = {
            "server": {"state_dir": str(tmp_path / "state")},
            "redis": {"url": redis_url},
            "rules": {"dir": str(tmp_path / "rules"), "reload_interval": 0.1},
        }
        for section, values in sections.items():
            if isinstance(values, list):  # a list section: [[oidc]]
                data[section] = values
            else:
                data.setdefault(section, {}).update(values)
        return config.build(data, env={})

    return make


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_browser() -> AsyncIterator[Any]:
    """One Chromium for a module's tests (starting it dominates them), resolving only the
    proxy's names; the module runs its tests on one loop for it:
    ``pytestmark = pytest.mark.asyncio(loop_scope="module")``."""
    async for browser in shared_chromium():
        yield browser


@pytest.fixture
async def vendor(tmp_path: Path) -> AsyncIterator[Vendor]:
    """The real HTTPS vendor of tests/vendor_support.py, on loopback."""
    async for running in run_vendor(tmp_path):
        yield running
