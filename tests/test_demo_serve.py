"""``make run`` as a newcomer sees it: the banner names the demo card and a console account,
and both let their owner in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from gateway.embedded_redis import free_port
from tests.admin_support import Console
from tests.patron_support import Browser
from tests.support import ROOT, wait_for_port


async def test_demo_banner_names_a_patron_and_a_librarian_who_can_log_in(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_REDIS__URL": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--demo"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = ""
        deadline = time.monotonic() + 30
        while "librarians' console" not in banner and time.monotonic() < deadline:
            banner += proc.stdout.readline()
        card, pin = re.search(r"demo patron: card (\d+), PIN (\d+)", banner).groups()  # type: ignore[union-attr]
        user, password = re.search(r"console: \S+ as (\S+), password (\S+)", banner).groups()  # type: ignore[union-attr]
        wait_for_port(port)  # the banner comes just before the socket listens
        async with aiohttp.ClientSession(
            f"http://127.0.0.1:{port}", cookie_jar=aiohttp.DummyCookieJar()
        ) as client:
            patron = Browser(client)  # type: ignore[arg-type]
            assert (await patron.login(card, pin)).headers["Location"] == "/menu"
            console = Console(Browser(client))  # type: ignore[arg-type]
            assert (await console.login(user, password)).headers["Location"] == "/admin/"
            sessions = await console.call("GET", "/admin/api/sessions")
            assert [s["card"] for s in (await sessions.json())["sessions"]] == [card]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
