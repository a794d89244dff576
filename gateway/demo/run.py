"""``gateway serve --demo``: the demo vendor beside the gateway, wired in through settings."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from gateway.config import Settings
from gateway.demo.tls import make_certificates, server_context
from gateway.demo.vendor import HOSTS, build_vendor_app
from gateway.embedded_redis import free_port


def demo_settings(settings: Settings) -> tuple[Settings, int, Path]:
    """Settings that resolve the demo hosts to a local port and trust the demo CA."""
    port = free_port()
    ca, _, _ = make_certificates(settings.state_path / "demo-tls", HOSTS)
    resolve = {**settings.upstream.resolve, **{host: f"127.0.0.1:{port}" for host in HOSTS}}
    upstream = dataclasses.replace(
        settings.upstream, resolve=resolve, ca_file=settings.upstream.ca_file or str(ca)
    )
    return dataclasses.replace(settings, upstream=upstream), port, ca.parent


def vendor_ctx(port: int, tls_dir: Path) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs the demo vendor on ``127.0.0.1:port`` while the app runs."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(build_vendor_app(), access_log=None)
        await runner.setup()
        context = server_context(tls_dir / "server.pem", tls_dir / "server.key")
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        yield
        await runner.cleanup()

    return run
