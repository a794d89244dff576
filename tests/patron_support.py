"""A gateway with patrons, and a small cookie-keeping browser for its pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

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


LIBRARY = {
    "name": "Springfield Public Library",
    "name_es": "Biblioteca Pública de Springfield",
    "logo_url": "https://cdn.springfield.example/logo.png",
    "address": "742 Evergreen Terrace\nSpringfield",
    "phone": "+1 (555) 010-0199",
    "email": "ask@springfield.example",
    "chat_url": "https://chat.springfield.example/",
    "catalogue_url": "https://catalog.springfield.example/",
    "account_url": "https://catalog.springfield.example/account",
}
"""A configured ``[library]`` for page tests."""

LOGIN = "login.proxy.localhost"
VENDOR = "www-vendor-test.proxy.localhost"  # https vendor: no marker


class ScopedBrowser:
    """Keeps cookies as a browser scopes them: host-only ones for their host, ``Domain`` ones
    for every host under the domain."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.jar: dict[tuple[str, str], str] = {}  # (scope, name) -> value; scope "." + domain

    def _remember(self, host: str, response: ClientResponse) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                if name.startswith("__Host-"):
                    assert not morsel["domain"] and morsel["secure"], header  # as browsers demand
                scope = "." + morsel["domain"].lstrip(".") if morsel["domain"] else host
                if morsel["max-age"] == "0":
                    self.jar.pop((scope, name), None)
                else:
                    self.jar[(scope, name)] = morsel.value

    def cookies(self, host: str) -> list[tuple[str, str]]:
        return [
            (name, value)
            for (scope, name), value in self.jar.items()
            if scope == host or (scope.startswith(".") and host.endswith(scope))
        ]

    async def get(self, url: str, **headers: str) -> ClientResponse:
        parts = urlsplit(url)
        host = parts.hostname or ""
        cookie = "; ".join(f"{n}={v}" for n, v in self.cookies(host))
        sent = {"Host": host, **({"Cookie": cookie} if cookie else {}), **headers}
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = await self.client.get(path, headers=sent, allow_redirects=False)
        self._remember(host, response)
        await response.read()
        return response

    async def follow(self, url: str, hops: int = 8) -> ClientResponse:
        """GET ``url`` and follow redirects, as a browser does."""
        response = await self.get(url)
        while response.status in (301, 302, 303) and hops:
            url = _absolute(url, response.headers["Location"])
            response = await self.get(url)
            hops -= 1
        return response

    async def login(self, card: str = CARD, pin: str = PIN) -> ClientResponse:
        page = await self.get(f"https://{LOGIN}/login")
        token = TOKEN.search(await page.text())
        assert token
        cookie = "; ".join(f"{n}={v}" for n, v in self.cookies(LOGIN))
        response = await self.client.post(
            "/login", data={"csrf_token": token[1], "card": card, "pin": pin, "url": ""},
            headers={"Host": LOGIN, "Cookie": cookie}, allow_redirects=False,
        )  # fmt: skip
        self._remember(LOGIN, response)
        return response


def _absolute(base: str, location: str) -> str:
    if location.startswith("/"):
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}{location}"
    return location
