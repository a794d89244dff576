"""A reference for proxy_bench.py: the least an aiohttp proxy does, with nothing of Carrel.

It passes one vendor's responses on (the whole body, read and sent with its length), with no
session, no rules, no rewriting, no logs. On the required stack (aiohttp server and client,
uvloop), that is the ceiling for the gateway's requests per second on the same machine.

    .venv/bin/python bench/bare_proxy.py PORT UPSTREAM_URL HOST   (one process; start several)
"""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

CLIENT = web.AppKey("client", aiohttp.ClientSession)


def make_app(upstream: str, host: str) -> web.Application:
    """An app that forwards every GET to ``upstream`` with ``Host: host``."""

    async def forward(request: web.Request) -> web.Response:
        async with request.app[CLIENT].get(upstream + request.path_qs, headers={"Host": host}) as r:
            body = await r.read()
        return web.Response(body=body, status=r.status, content_type=r.content_type)

    async def client(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = aiohttp.ClientSession(
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        yield
        await app[CLIENT].close()

    app = web.Application()
    app.cleanup_ctx.append(client)
    app.router.add_get("/{path:.*}", forward)
    return app


def main() -> None:
    port, upstream, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # several processes, one port
    sock.bind(("127.0.0.1", port))
    uvloop.install()
    web.run_app(make_app(upstream, host), sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
