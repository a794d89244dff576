"""Helpers for tests: real servers on loopback and the shared corpus."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gateway.embedded_redis import find_redis_server, free_port, server_argv, spawn

REDIS_PASSWORD = "test-password-not-secret"


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """End a server a test started: asked to stop, killed after five seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until 127.0.0.1:port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


class RedisProcess:
    """A real redis-server child on a loopback port, for tests that need to kill and revive it."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        argv = server_argv(find_redis_server(), self.port, REDIS_PASSWORD, self.data_dir)
        self.process = spawn(argv)
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


LOGIN_HOST = "login.proxy.localhost"


def corpus_dir(*parts: str) -> Path:
    """A folder of the shared test corpus; skips without $CARREL_CORPUS, fails if it is missing."""
    root = os.environ.get("CARREL_CORPUS")
    if not root:
        if os.environ.get("CARREL_REQUIRE_CORPUS"):
            pytest.fail("CARREL_CORPUS is required here (CI) but is not set")
        pytest.skip("set CARREL_CORPUS=../shared/corpus to run the corpus tests")
    path = Path(root, *parts)
    if not path.exists():
        pytest.fail(f"CARREL_CORPUS is set but {path} does not exist")
    return path


ROOT = Path(__file__).resolve().parent.parent


def run_gateway(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the ``gateway`` command as a user would, from the project root, with extra env."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=60,
    )


async def serve_on_loopback(app: web.Application, port: int = 0) -> AsyncIterator[int]:
    """Run ``app`` on a free loopback port for as long as the caller iterates; yields the port
    (``port``: one chosen beforehand, as for a gateway whose settings name its own)."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


class ManualClock:
    """A clock the test moves (``advance``), for the gateway's ``build_app(clock=...)``: time
    passes for sessions, reset links and usage windows without the test waiting for it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
