"""A gateway with staff accounts, a plain-HTTP vendor on loopback, and a console client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, DummyCookieJar, web
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.admin.staff import StaffStore
from gateway.app import build_app
from gateway.embedded_redis import free_port
from tests.patron_support import TOKEN, Browser, prepare
from tests.support import serve_on_loopback

PASSWORDS = {
    "ada": "long admin password 1",
    "eli": "long editor password 2",
    "dee": "long desk password 3",
}
ROLES = {"ada": "admin", "eli": "editor", "dee": "desk"}
DEMO_RULES = "Title Demo Journals\nURL http://www.demo.test/\nHJ http://www.demo.test\n"
DEMO_HOST = "www-demo-test---http.proxy.localhost"
CDN_HOST = "cdn-demo-test---http.proxy.localhost"


PDF_BODY = b"%PDF-1.4\n" + b"0" * 20000 + b"\n%%EOF\n"


async def _page(request: web.Request) -> web.Response:
    if request.path.startswith("/pdf/"):
        return web.Response(body=PDF_BODY, content_type="application/pdf")
    return web.Response(text=f"vendor page {request.host}{request.path_qs}")


def vendor() -> web.Application:
    """One plain-HTTP vendor answering for every host it is asked as (PDFs under /pdf/)."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", _page)
    return app


async def vendor_port() -> AsyncIterator[int]:
    """The vendor on a loopback port."""
    async for port in serve_on_loopback(vendor()):
        yield port


def add_staff(settings: config.Settings) -> dict[str, str]:
    """The three staff accounts; returns an API token per user."""
    store = StaffStore(settings.staff_path)
    tokens = {}
    for user, role in ROLES.items():
        store.add(user, role, PASSWORDS[user])
        tokens[user] = store.new_token(user)
    return tokens


def settings_with_vendor(
    make_settings: Callable[..., config.Settings], port: int, **sections: dict[str, Any]
) -> config.Settings:
    """Settings whose demo hosts resolve to the loopback vendor, with rules and patrons."""
    resolve = {"www.demo.test": f"127.0.0.1:{port}", "cdn.demo.test": f"127.0.0.1:{port}"}
    settings = make_settings(upstream={"resolve": resolve}, **sections)
    prepare(settings)
    Path(settings.rules.dir, "demo.txt").write_text(DEMO_RULES)
    return settings


async def start(
    aiohttp_client: Callable[..., Any], settings: config.Settings,
    clock: Callable[[], float] | None = None,
) -> TestClient:  # fmt: skip
    """The gateway app under a test client (no client jar: each Browser keeps its own)."""
    app = build_app(settings) if clock is None else build_app(settings, clock)
    client: TestClient = await aiohttp_client(app, cookie_jar=DummyCookieJar())
    return client


@dataclass
class Console:
    """A staff member's browser on the console: session cookie, CSRF token, JSON calls."""

    browser: Browser
    token: str = ""

    async def login(self, user: str, password: str | None = None) -> ClientResponse:
        form = await self.browser.get("/admin/login")
        match = TOKEN.search(await form.text())
        assert match
        self.token = match[1]
        data = {"csrf_token": self.token, "user": user, "password": password or PASSWORDS[user]}
        return await self.browser.post("/admin/login", data)

    async def call(
        self, method: str, path: str, body: Any = None, **headers: str
    ) -> ClientResponse:
        """An API call with the session cookie and (for changes) the CSRF header."""
        sent = self.browser.headers(**headers)
        if method not in ("GET", "HEAD"):
            sent.setdefault("X-CSRF-Token", self.token)
        data = json.dumps(body) if isinstance(body, dict) else body
        if isinstance(body, dict):
            sent["Content-Type"] = "application/json"
        return await self.browser.client.request(
            method, path, data=data, headers=sent, allow_redirects=False
        )

    async def form(self, path: str, **fields: str) -> ClientResponse:
        """Submit a console form with the page's CSRF token."""
        return await self.browser.post(path, {"csrf_token": self.token, **fields})


async def bearer(
    client: TestClient, token: str, method: str, path: str, body: Any = None
) -> ClientResponse:
    """An API call with an API token only (no cookies), as a script makes it."""
    headers = {"Host": "login.proxy.localhost", "Authorization": f"Bearer {token}"}
    if isinstance(body, dict):
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    return await client.request(method, path, data=body, headers=headers, allow_redirects=False)


def finding_lines(payload: dict[str, Any]) -> list[tuple[int, str]]:
    """(line, severity) of every finding in an API answer."""
    return [(f["line"], f["severity"]) for f in payload["findings"]]


async def served_gateway(
    make_settings: Callable[..., config.Settings], **sections: dict[str, Any]
) -> AsyncIterator[tuple[int, config.Settings]]:
    """The gateway on a real loopback port (for a browser), with the vendor and staff."""
    async for port in vendor_port():
        listen = free_port()
        settings = settings_with_vendor(
            make_settings, port, server={"listen": f"127.0.0.1:{listen}"}, **sections
        )
        add_staff(settings)
        runner = web.AppRunner(build_app(settings))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", listen).start()
        try:
            yield listen, settings
        finally:
            await runner.cleanup()
