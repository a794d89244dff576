"""``gateway serve --workers N``: a parent that holds the socket and runs N worker processes.

The parent binds the listening socket once, starts the embedded Redis when none is configured
(so every worker shares it), then runs the workers as ``gateway serve --listen-fd FD`` with the
socket inherited: the kernel spreads connections over them. A worker that dies is replaced.
On SIGTERM or SIGINT the parent passes SIGTERM on; each worker stops accepting, finishes its
requests in flight (up to ``server.shutdown_grace`` seconds) and exits; then Redis stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping

from gateway.config import Settings
from gateway.embedded_redis import EmbeddedRedis

log = logging.getLogger(__name__)


def listening_socket(host: str, port: int) -> socket.socket:
    """The shared listening socket, inheritable by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Runs and replaces workers; stops them gracefully."""

    def __init__(self, argv: list[str], env: Mapping[str, str], fd: int, count: int) -> None:
        self.argv = argv
        self.env = dict(env)
        self.fd = fd
        self.count = count
        self.workers: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start one worker with the socket."""
        worker = subprocess.Popen(  # noqa: S603  (our own command line)
            [*self.argv, "--listen-fd", str(self.fd)], env=self.env, pass_fds=(self.fd,)
        )
        log.info("worker %s started", worker.pid)
        return worker

    async def run(self, stop: asyncio.Event) -> None:
        """Keep ``count`` workers alive until ``stop`` is set."""
        self.workers = [self.spawn() for _ in range(self.count)]
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            for i, worker in enumerate(self.workers):
                if worker.poll() is not None and not stop.is_set():
                    log.error("worker %s exited with %s; starting another", worker.pid,
                              worker.returncode)  # fmt: skip
                    self.workers[i] = self.spawn()

    async def stop(self, grace: float) -> None:
        """SIGTERM to every worker; SIGKILL to those still running after the grace period."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        waits = asyncio.gather(*(asyncio.to_thread(w.wait) for w in self.workers))
        try:
            await asyncio.wait_for(asyncio.shield(waits), grace + 5)
        except TimeoutError:
            log.warning("workers still busy after %.0fs; stopping them", grace + 5)
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


async def supervise(settings: Settings, count: int, argv: list[str], banner: list[str]) -> int:
    """The parent's life: Redis, socket, workers, and a clean stop on a signal."""
    env = dict(os.environ)
    embedded: EmbeddedRedis | None = None
    if settings.redis.embedded:
        embedded = EmbeddedRedis(settings.state_path / "redis")
        await embedded.start()
        env["GATEWAY_REDIS__URL"] = embedded.url
    sock = listening_socket(settings.listen_host, settings.listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(argv, env, sock.fileno(), count)
    for line in banner:
        print(line, flush=True)
    try:
        await supervisor.run(stop)
    finally:
        # Our copy of the socket goes first: once the workers have closed theirs too, new
        # connections are refused at once instead of waiting in a backlog nobody reads.
        sock.close()
        await supervisor.stop(settings.server.shutdown_grace)
        if embedded is not None:
            await embedded.stop()
    return 0


def worker_argv(config_path: str | None) -> list[str]:
    """How the parent starts a worker."""
    argv = [sys.executable, "-m", "gateway", "serve"]
    return [*argv, "--config", config_path] if config_path else argv
