"""The Redis client: explicit timeouts and bounded retries, so an outage fails fast and closed."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import RedisSettings

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
"""What an unreachable or stalled Redis raises (redis-py wraps socket errors in these);
callers answer them with a 503. Not every OSError: a patron hanging up is not Redis down."""


def connect(url: str, settings: RedisSettings) -> Redis:
    """A pooled client for ``url`` (or for the primary the sentinels name), with timeouts and
    bounded retries. Behind Sentinel, every new connection asks the sentinels where the
    primary is, so a failover is followed without a restart."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.timeout,
        "retry": Retry(ExponentialBackoff(cap=0.25, base=0.02), settings.retries),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 15,
    }
    if settings.sentinels:
        addresses = [(h, int(p)) for h, _, p in (s.rpartition(":") for s in settings.sentinels)]
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            addresses,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=settings.timeout,
        )
        client: Redis = sentinel.master_for(
            settings.service_name, password=settings.password or None, **options
        )
        return client
    if settings.cluster:
        cluster: Redis = RedisCluster.from_url(url, **options)  # type: ignore[assignment]
        return cluster
    return Redis.from_url(url, **options)


def describe(url: str, settings: RedisSettings) -> str:
    """Where Redis is, for messages (no password)."""
    if settings.sentinels:
        return f"sentinels {', '.join(settings.sentinels)} ({settings.service_name})"
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"
