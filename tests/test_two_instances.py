"""Two gateway processes, one Redis: a patron may land on either, and both agree at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway import config
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from tests.patron_support import CARD, PIN
from tests.support import run_gateway, serve_on_loopback, wait_for_port

RULES = "Title Vendor\nURL http://www.vendor.test/\nHJ http://www.vendor.test\n"


@pytest.fixture
async def vendor_port() -> AsyncIterator[int]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=f"<a href='http://{request.host}/next'>next</a>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async for port in serve_on_loopback(app):
        yield port


@pytest.fixture
def instances(tmp_path: Path, redis_url: str, vendor_port: int) -> Iterator[tuple[int, int, Path]]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "vendor.txt").write_text(RULES)
    env_base = {
        **os.environ,
        "GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_RULES__DIR": str(rules),
        "GATEWAY_RULES__RELOAD_INTERVAL": "0.2",
        "GATEWAY_REDIS__URL": redis_url,
        "GATEWAY_SERVER__PUBLIC_PORT": "8080",
        "GATEWAY_UPSTREAM__RESOLVE": f'{{ "www.vendor.test" = "127.0.0.1:{vendor_port}", "www.other.test" = "127.0.0.1:{vendor_port}" }}',
    }
    settings = config.build({"server": {"state_dir": str(tmp_path / "state")}}, env={})
    local_directory(settings).add(CARD, PIN)
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env={**env_base, "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            wait_for_port(port, timeout=20)
        yield ports[0], ports[1], rules
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


async def login(port: int) -> str:
    login_host = {"Host": "login.proxy.localhost"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(f"http://127.0.0.1:{port}/login", headers=login_host) as page:
            form_cookie = page.cookies["carrel_form"].value
            token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
        async with session.post(
            f"http://127.0.0.1:{port}/login",
            data={"csrf_token": token, "card": CARD, "pin": PIN, "url": ""},
            headers={**login_host, "Cookie": f"carrel_form={form_cookie}"},
            allow_redirects=False,
        ) as response:
            assert response.status == 302
            return response.cookies["carrel_session"].value


async def logout(port: int, session_id: str) -> aiohttp.ClientResponse:
    """The logout page's button, pressed with the session and the page's form cookie."""
    login_host = {"Host": "login.proxy.localhost"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        cookie = f"carrel_session={session_id}"
        async with session.get(
            f"http://127.0.0.1:{port}/logout", headers={**login_host, "Cookie": cookie}
        ) as page:
            form_cookie = page.cookies["carrel_form"].value
            token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
        async with session.post(
            f"http://127.0.0.1:{port}/logout",
            data={"csrf_token": token},
            headers={**login_host, "Cookie": f"{cookie}; carrel_form={form_cookie}"},
            allow_redirects=False,
        ) as response:
            await response.read()
            return response


async def get(port: int, host: str, path: str, session_id: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        response = await session.get(
            f"http://127.0.0.1:{port}{path}",
            allow_redirects=False,
            headers={"Host": host, "Cookie": f"carrel_session={session_id}"},
        )
        await response.read()
        return response


async def test_log_in_on_one_browse_on_the_other_end_on_the_other(
    instances: tuple[int, int, Path],
) -> None:
    a, b, _ = instances
    session_id = await login(a)
    vendor = "www-vendor-test---http.proxy.localhost"
    page = await get(b, vendor, "/article", session_id)
    assert page.status == 200
    assert (await logout(b, session_id)).status == 200
    again = await get(a, vendor, "/article", session_id)
    assert again.status == 302 and "/login?qurl=" in again.headers["Location"]


async def test_a_rule_edit_through_one_is_used_by_the_other_within_two_seconds(
    instances: tuple[int, int, Path],
) -> None:
    a, b, rules = instances
    session_id = await login(a)
    other = "www-other-test---http.proxy.localhost"
    assert (await get(b, other, "/", session_id)).status == 404
    (rules / "vendor.txt").write_text(RULES + "HJ http://www.other.test\n")
    started = time.monotonic()
    for port in (b, a):  # each instance polls on its own: both must have it within 2 s
        while (await get(port, other, "/", session_id)).status != 200:
            assert time.monotonic() - started < 2.0, f"instance on {port} did not pick up the rule"
            await asyncio.sleep(0.1)


async def test_instances_with_their_own_rules_directories_share_an_edit(
    tmp_path: Path, redis_url: str, vendor_port: int
) -> None:
    """Two machines do not share a disk: an edit on one reaches the other through Redis."""
    dirs = [tmp_path / "rules-a", tmp_path / "rules-b"]
    for directory in dirs:
        directory.mkdir()
        (directory / "vendor.txt").write_text(RULES)
    state = tmp_path / "state"
    local_directory(config.build({"server": {"state_dir": str(state)}}, env={})).add(CARD, PIN)
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env={
                **os.environ,
                "GATEWAY_SERVER__STATE_DIR": str(state),
                "GATEWAY_RULES__DIR": str(directory),
                "GATEWAY_RULES__RELOAD_INTERVAL": "0.2",
                "GATEWAY_REDIS__URL": redis_url,
                "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
                "GATEWAY_SERVER__PUBLIC_PORT": "8080",
                "GATEWAY_UPSTREAM__RESOLVE": f'{{ "www.other.test" = "127.0.0.1:{vendor_port}" }}',
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for directory, port in zip(dirs, ports, strict=True)
    ]
    try:
        for port in ports:
            wait_for_port(port, timeout=20)
        await asyncio.sleep(0.5)
        session_id = await login(ports[0])
        other = "www-other-test---http.proxy.localhost"
        assert (await get(ports[1], other, "/", session_id)).status == 404
        (dirs[0] / "vendor.txt").write_text(RULES + "HJ http://www.other.test\n")  # edited on A
        started = time.monotonic()
        while (await get(ports[1], other, "/", session_id)).status != 200:
            assert time.monotonic() - started < 2.0, "B did not get A's edit within 2 s"
            await asyncio.sleep(0.1)
        assert "www.other.test" in (dirs[1] / "vendor.txt").read_text()
        (dirs[0] / "new_db.txt").write_text("Title New\nURL http://www.new.test/\n")
        started = time.monotonic()
        while not (dirs[1] / "new_db.txt").exists():
            assert time.monotonic() - started < 2.0, "a new file did not reach B"
            await asyncio.sleep(0.1)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


async def test_a_card_blocked_is_refused_by_every_instance_at_once(
    instances: tuple[int, int, Path], tmp_path: Path, redis_url: str
) -> None:
    a, b, _ = instances
    session_id = await login(a)
    vendor = "www-vendor-test---http.proxy.localhost"
    assert (await get(b, vendor, "/", session_id)).status == 200
    env = {"GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state"), "GATEWAY_REDIS__URL": redis_url}
    blocked = run_gateway("patrons", "block", CARD, env=env)
    assert blocked.returncode == 0 and b"1 live sessions ended" in blocked.stdout
    refused = await get(b, vendor, "/", session_id)
    assert refused.status == 302 and "/login?qurl=" in refused.headers["Location"]
    assert run_gateway("patrons", "unblock", CARD, env=env).returncode == 0
    assert (await get(a, vendor, "/", await login(b))).status == 200


async def test_the_console_on_one_instance_acts_on_every_instance(
    instances: tuple[int, int, Path], tmp_path: Path
) -> None:
    from gateway.admin.staff import StaffStore

    a, b, _ = instances
    settings = config.build({"server": {"state_dir": str(tmp_path / "state")}}, env={})
    store = StaffStore(settings.staff_path)
    store.add("eli", "editor", "long editor password 2")
    token = store.new_token("eli")
    api = {"Host": "login.proxy.localhost", "Authorization": f"Bearer {token}"}
    session_id = await login(a)
    other = "www-other-test---http.proxy.localhost"
    assert (await get(b, other, "/", session_id)).status == 404
    async with aiohttp.ClientSession() as client:
        saved = await client.put(
            f"http://127.0.0.1:{a}/admin/api/rules/vendor.txt",
            data=RULES + "HJ http://www.other.test\n", headers=api,
        )  # fmt: skip
        assert saved.status == 200, await saved.text()
        started = time.monotonic()
        while (await get(b, other, "/", session_id)).status != 200:  # saved on A, live on B
            assert time.monotonic() - started < 2.0, "B did not pick up the console's save"
            await asyncio.sleep(0.1)
        blocked = await client.post(
            f"http://127.0.0.1:{a}/admin/api/cards/{CARD}/block", headers=api
        )
        assert (await blocked.json())["sessions_ended"] == 1
    refused = await get(b, other, "/", session_id)  # blocked through A: B refuses at once
    assert refused.status == 302 and "/login?qurl=" in refused.headers["Location"]
