"""``/healthz`` (the process serves) and ``/readyz`` (it can do its job: Redis answers)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from gateway.appkeys import REDIS
from gateway.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

READY_TIMEOUT = 1.0
"""Seconds ``/readyz`` waits for Redis; well inside the 2 s in which an outage must show."""


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves requests."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """200 when Redis answers a PING in time, else 503 with the reason."""
    redis = request.config_dict[REDIS]
    try:
        await asyncio.wait_for(redis.ping(), READY_TIMEOUT)
    except (TimeoutError, *REDIS_ERRORS) as exc:
        log.warning("readyz: redis does not answer: %s", exc or type(exc).__name__)
        return web.Response(status=503, text="not ready: redis does not answer\n")
    return web.Response(text="ready\n")


def add_routes(app: web.Application) -> None:
    """Register the health routes on the gateway's own host."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
