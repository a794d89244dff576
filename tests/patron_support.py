"""A gateway with patrons, and a small cookie-keeping browser for its pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import ClientResponse, DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.auth.commands import local_directory

LOGIN_HOST = "login.proxy.localhost"
CARD, PIN = "21234000000001", "4827"
OTHER_CARD, OTHER_PIN = "21234000000002", "5830"
RULES = "Title JSTOR\nURL https://www.jstor.org/\nHJ www.jstor.org\nDJ jstor.org\n"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def prepare(settings: config.Settings) -> None:
    """Rules and patrons on disk before the gateway starts."""
    rules = settings.rules.dir
    import pathlib

    pathlib.Path(rules).mkdir(parents=True, exist_ok=True)
    pathlib.Path(rules, "jstor.txt").write_text(RULES)
    directory = local_directory(settings)
    directory.add(CARD, PIN, name="Ana", email="ana@example.org")
    directory.add(OTHER_CARD, OTHER_PIN, name="Bo")


class Browser:
    """Keeps cookies by name (every host here is under proxy.localhost) and sends them."""

    def __init__(self, client: TestClient, lang: str = "en") -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.lang = lang

    def _remember(self, response: ClientResponse) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def headers(self, host: str = LOGIN_HOST, **extra: str) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        base = {"Host": host, "Accept-Language": self.lang}
        if cookie:
            base["Cookie"] = cookie
        return {**base, **extra}

    async def get(self, path: str, host: str = LOGIN_HOST, **kw: Any) -> ClientResponse:
        response = await self.client.get(
            path, headers=self.headers(host), allow_redirects=False, **kw
        )
        self._remember(response)
        return response

    async def post(self, path: str, data: dict[str, str], host: str = LOGIN_HOST) -> ClientResponse:
        response = await self.client.post(
            path, data=data, headers=self.headers(host), allow_redirects=False
        )
        self._remember(response)
        return response

    async def logout(self) -> ClientResponse:
        """Log out as a patron does: the page with the button, then the button."""
        page = await self.get("/logout")
        match = TOKEN.search(await page.text())
        assert page.status == 200 and match, await page.text()
        return await self.post("/logout", {"csrf_token": match[1]})

    async def login(self, card: str = CARD, pin: str = PIN, query: str = "") -> ClientResponse:
        form = await self.get("/login" + (f"?{query}" if query else ""))
        html = await form.text()
        if form.status == 302:  # already logged in: take a token from the menu's forms
            html = await (await self.get("/menu")).text()
        match = TOKEN.search(html)
        assert match, html
        target = re.search(r'name="url" value="([^"]*)"', html)
        data = {
            "csrf_token": match[1],
            "card": card,
            "pin": pin,
            "url": target[1] if target else "",
        }
        import html as html_lib

        data["url"] = html_lib.unescape(data["url"])
        return await self.post("/login", data)


async def start(
    aiohttp_client: Callable[..., Any], settings: config.Settings,
    clock: Callable[[], float] | None = None,
) -> TestClient:  # fmt: skip
    prepare(settings)
    app = build_app(settings) if clock is None else build_app(settings, clock)
    # No client-side jar: each Browser keeps its own cookies (several browsers share a client).
    client: TestClient = await aiohttp_client(app, cookie_jar=DummyCookieJar())
    return client
