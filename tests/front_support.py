"""A real reverse proxy on loopback, standing for a library's TLS front or load balancer: it
forwards every request to the gateway from its own address, adding ``X-Forwarded-For`` as
nginx's ``$proxy_add_x_forwarded_for`` does, and hands the answer back unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te"}
)
"""Headers of one connection, not of the message: each side sets its own."""
UPSTREAM: web.AppKey[aiohttp.ClientSession] = web.AppKey("upstream", aiohttp.ClientSession)


def front_app(address: str, gateway_port: int) -> web.Application:
    """A front whose connections to the gateway (on 127.0.0.1) come from ``address``."""

    async def client(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            app[UPSTREAM] = session
            yield

    async def forward(request: web.Request) -> web.Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        before = request.headers.get("X-Forwarded-For", "")
        headers.append(("X-Forwarded-For", f"{before}, {request.remote}" if before
                        else str(request.remote)))  # fmt: skip
        async with request.app[UPSTREAM].request(
            request.method, URL(f"http://127.0.0.1:{gateway_port}{request.raw_path}", encoded=True),
            headers=headers, data=await request.read(), allow_redirects=False,
        ) as answer:  # fmt: skip
            kept = CIMultiDict((k, v) for k, v in answer.headers.items()
                               if k.lower() not in HOP_BY_HOP)  # fmt: skip
            return web.Response(status=answer.status, body=await answer.read(), headers=kept)

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app
