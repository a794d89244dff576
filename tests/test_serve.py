"""``gateway serve`` as a newcomer runs it: embedded Redis up, ready, and no orphan afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import config
from gateway.embedded_redis import EmbeddedRedis, free_port
from tests.support import LOGIN_HOST, wait_for_port


def readyz(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/readyz", headers={"Host": f"{LOGIN_HOST}:{port}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(x) for x in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text().split()
    return stat[2] != "Z"


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_RULES__DIR": str(tmp_path / "rules"),
        "GATEWAY_REDIS__URL": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=20)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_serve_with_embedded_redis_is_ready_and_leaves_no_orphan_after_ctrl_c(
    gateway_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = gateway_process
    assert readyz(port) == 200
    redis_pids = children(proc.pid)
    assert redis_pids, "the embedded redis-server should be a child of the gateway"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    assert all(wait_gone(pid) for pid in redis_pids)


def test_killed_gateway_takes_its_redis_server_with_it(
    gateway_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = gateway_process
    assert readyz(port) == 200
    redis_pids = children(proc.pid)
    proc.kill()
    proc.wait()
    assert redis_pids and all(wait_gone(pid) for pid in redis_pids)


async def test_embedded_redis_is_restarted_after_it_dies(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", restart_delay=0.1)
    await server.start()
    try:
        assert server.process is not None
        first = server.process.pid
        server.process.kill()
        deadline = time.monotonic() + 10
        while server.process.pid == first or server.process.poll() is not None:
            assert time.monotonic() < deadline, "embedded redis-server was not restarted"
            await asyncio.sleep(0.05)
        wait_for_port(server.port)
    finally:
        await server.stop()
    assert server.process.poll() is not None


def test_gateway_help_lists_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "serve" in out and "rules" in out
    for sub in (["serve"], ["rules"], ["rules", "check"], ["rules", "explain"]):
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *sub, "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0 and "usage: gateway" in result.stdout


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[server]\nlisen = "127.0.0.1:1"\n', "server.lisen"),
        ('[server]\nlisten = "nonsense"\n', "server.listen"),
    ],
)
def test_bad_config_stops_start_up_with_one_line_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(toml)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0]


def test_serve_https_directly_with_a_wildcard_certificate(tmp_path: Path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("*.proxy.localhost", "proxy.localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in cert.cert_chain_pems[1:]:
        with cert_file.open("ab") as fh:
            fh.write(pem.bytes())
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_RULES__DIR": str(tmp_path / "rules"),
        "GATEWAY_SERVER__PUBLIC_SCHEME": "https",
        "GATEWAY_SERVER__TLS_CERT": str(cert_file),
        "GATEWAY_SERVER__TLS_KEY": str(key_file),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=20)
        context = ssl.create_default_context(cafile=str(ca_file))
        # The certificate must fit the login host's name (SNI), as a browser checks it.
        with (
            socket.create_connection(("127.0.0.1", port), 5) as raw,
            context.wrap_socket(raw, server_hostname="login.proxy.localhost") as tls,
        ):
            tls.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: login.proxy.localhost:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            assert tls.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.wait()


def test_tls_settings_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(config.ConfigError, match=r"server\.tls_key"):
        config.build({"server": {"tls_cert": str(cert), "public_scheme": "https"}}, env={})
    with pytest.raises(config.ConfigError, match=r"server\.public_scheme"):
        config.build({"server": {"tls_cert": str(cert), "tls_key": str(cert)}}, env={})


def test_start_up_fails_fast_and_clearly_when_redis_is_unreachable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{free_port()}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_RULES__DIR": str(tmp_path),
        "GATEWAY_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and time.monotonic() - started < 20
    assert (
        "cannot start: Redis at redis://127.0.0.1:" in result.stderr
        and "does not answer" in result.stderr
    )
