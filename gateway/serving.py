"""Serving the app: aiohttp's runner behind a site that caps connections per client address.

A slow client (slowloris) opens many connections and sends each request a byte at a time, so
that every connection holds a slot and nobody else gets one. Two limits hold it off: a request's
headers must be complete within ``server.idle_timeout`` of the connection opening or of the
previous response (aiohttp's keep-alive timer, which also runs while headers are unfinished),
and one address holds at most ``server.max_connections_per_address`` connections at once; the
next one is closed as soon as it is accepted, before a byte is read.

The address is the connection's own (the socket peer): the fronts in ``server.trusted_proxies``
carry every patron's connections, so they are not capped, and the front caps its clients. An
IPv6 client counts per /64 (``gateway.netblocks``). The count is per process. Over TLS a
connection is counted once its handshake is done (asyncio gives a handshake 60 seconds).

``run`` is ``web.run_app``'s life of a process (serve until SIGINT or SIGTERM, then give
requests in flight ``server.shutdown_grace`` seconds) with this site in place of aiohttp's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from gateway.appkeys import METRICS
from gateway.config import Settings
from gateway.edge.client import address_in
from gateway.metrics import Metrics
from gateway.netblocks import host_key


class ConnectionCap:
    """Connections open per client host; a new one over the limit is refused."""

    def __init__(self, limit: int, exempt: list[str], metrics: Metrics) -> None:
        """``limit`` 0 counts nothing; addresses in ``exempt`` (networks) are never counted."""
        self.limit = limit
        self.exempt = exempt
        self.metrics = metrics
        self.open: Counter[str] = Counter()

    def admit(self, peer: str) -> str | None:
        """Count a new connection from ``peer``: the key to ``release`` it by ("" when it is
        not counted: no cap, no address, a trusted front), or None when the address is over
        the cap."""
        if not self.limit or not peer or address_in(peer, self.exempt):
            return ""
        key = host_key(peer)
        if self.open[key] >= self.limit:
            self.metrics.inc("carrel_connections_refused_total")
            return None
        self.open[key] += 1
        return key

    def release(self, key: str) -> None:
        """A counted connection closed."""
        if not key:
            return
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]  # no address stays in memory after its last connection


_REFUSED = asyncio.Protocol()  # the handler of a refused connection: does nothing


class CappedConnection(asyncio.Protocol):
    """One accepted connection: counted against its address, then aiohttp's handler's."""

    __slots__ = ("_cap", "_factory", "_handler", "_key")

    def __init__(self, cap: ConnectionCap, factory: Callable[[], asyncio.Protocol]) -> None:
        self._cap = cap
        self._factory = factory
        self._handler = _REFUSED
        self._key: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection and hand it to aiohttp, or close it at once."""
        peer = transport.get_extra_info("peername")
        self._key = self._cap.admit(str(peer[0]) if isinstance(peer, tuple) else "")
        if self._key is None:
            cast(asyncio.Transport, transport).abort()  # no byte read, none sent
            return
        self._handler = self._factory()
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Passed on."""
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        """Passed on."""
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        """Passed on (flow control)."""
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        """Passed on (flow control)."""
        self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount the connection and tell aiohttp."""
        if self._key is not None:
            self._cap.release(self._key)
        self._handler.connection_lost(exc)


class CappedSite(web.BaseSite):
    """A listening address (host and port, or a socket) whose connections are capped."""

    __slots__ = ("_cap", "_host", "_port", "_sock")

    def __init__(
        self,
        runner: web.AppRunner,
        cap: ConnectionCap,
        *,
        host: str | None = None,
        port: int = 0,
        sock: socket.socket | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Listen on ``host``:``port``, or on the bound socket ``sock``."""
        super().__init__(runner, ssl_context=ssl_context)
        self._cap = cap
        self._host, self._port, self._sock = host, port, sock

    @property
    def name(self) -> str:
        """Where the site listens, as a URL."""
        scheme = "https" if self._ssl_context else "http"
        host, port = self._sock.getsockname()[:2] if self._sock else (self._host, self._port)
        return f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        """Listen: each accepted connection goes through the cap to aiohttp's handler."""
        await super().start()
        server = self._runner.server
        assert server is not None
        cap = self._cap
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.Protocol:
            return CappedConnection(cap, server)

        tls, backlog = self._ssl_context, self._backlog
        if self._sock is not None:
            self._server = await loop.create_server(
                factory, sock=self._sock, ssl=tls, backlog=backlog
            )
        else:
            self._server = await loop.create_server(
                factory, self._host, self._port, ssl=tls, backlog=backlog
            )


async def start(
    app: web.Application,
    settings: Settings,
    *,
    host: str | None = None,
    port: int = 0,
    sock: socket.socket | None = None,
    ssl_context: ssl.SSLContext | None = None,
    handle_signals: bool = False,
) -> web.AppRunner:
    """Start the app (its startup and cleanup contexts) and listen; the caller cleans the
    runner up (``await runner.cleanup()``)."""
    runner = web.AppRunner(
        app, handle_signals=handle_signals, access_log=None,
        shutdown_timeout=settings.server.shutdown_grace,
        keepalive_timeout=settings.server.idle_timeout,
    )  # fmt: skip
    await runner.setup()
    try:
        server = settings.server
        cap = ConnectionCap(
            server.max_connections_per_address, server.trusted_proxies, app[METRICS]
        )
        site = CappedSite(runner, cap, host=host, port=port, sock=sock, ssl_context=ssl_context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def run(loop: asyncio.AbstractEventLoop, starting: Callable[[], Awaitable[web.AppRunner]]) -> None:
    """Serve on ``loop`` what ``starting`` starts (``start`` with ``handle_signals=True``) until
    SIGINT or SIGTERM, then stop gracefully, as ``web.run_app`` does."""

    async def serve() -> None:
        runner = await starting()
        try:
            await asyncio.Event().wait()  # until SIGINT or SIGTERM raises GracefulExit
        finally:
            await runner.cleanup()

    asyncio.set_event_loop(loop)
    main = loop.create_task(serve())
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():  # stopped by a signal: serve's cleanup runs now
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
