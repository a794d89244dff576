"""The Redis client: explicit timeouts and bounded retries, so an outage fails fast and closed."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import RedisSettings

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
"""What an unreachable or stalled Redis raises (redis-py wraps socket errors in these);
callers answer them with a 503. Not every OSError: a patron hanging up is not Redis down."""


def connect(url: str, settings: RedisSettings) -> Redis:
    """A pooled client for ``url`` with the configured timeouts and retries."""
    return Redis.from_url(
        url,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=settings.timeout,
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.02), settings.retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
    )
