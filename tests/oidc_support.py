"""A real OpenID Connect provider for sign-in tests: node's ``oidc-provider`` (installed into
tests/idp/oidc by the Makefile) run by tests/idp/oidc/provider.mjs on loopback, behind a small
aiohttp front that passes everything through and that a test can make misbehave (change the
token endpoint's answer, add keys to the JWKS, fail) to check the gateway's refusals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from authlib.jose import JsonWebKey

from gateway.embedded_redis import free_port
from tests.patron_support import TOKEN, Browser
from tests.support import stop_process, wait_for_port

IDP_DIR = Path(__file__).resolve().parent / "idp" / "oidc"
CLIENT_ID, CLIENT_SECRET = "carrel", "test-client-secret-not-secret-0123456789"
PUBLIC_URL = "http://login.proxy.localhost:8080"
ACCOUNTS = {
    "alice": {"email": "alice@campus.test", "groups": ["Default", "Licensed"]},
    "bob": {"email": "bob@campus.test", "groups": ["Default"]},
    "carol": {"email": "carol@campus.test", "eduPersonAffiliation": ["alumni", "member"]},
    "dave": {
        "email": "dave@campus.test",
        "eduPersonAffiliation": ["staff", "member"],
        "eduPersonPrincipalName": "dave@campus.test",
    },
}
"""The provider's test accounts and their claims (``affiliation`` is a scope of its own: carol is
an alumna, dave on the staff)."""

TokenHook = Callable[[dict[str, Any]], dict[str, Any]]


def node_provider_ready() -> str:
    """Debian's node with oidc-provider installed (``make test`` does it); skips without them,
    fails where CARREL_REQUIRE_NODE is set (CI)."""
    node = shutil.which("node")
    problem = (
        "the OIDC sign-in tests need node: apt-get install nodejs npm" if not node
        else "oidc-provider is not installed: make idp (npm ci in tests/idp/oidc)"
        if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir() else ""
    )  # fmt: skip
    if problem:
        if os.environ.get("CARREL_REQUIRE_NODE"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert node
    return node


def rsa_key(kid: str) -> dict[str, Any]:
    """A new private RSA signing key as a JWK."""
    key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": kid})
    return {**key.as_dict(is_private=True), "use": "sig", "alg": "RS256"}


def public(jwk: dict[str, Any]) -> dict[str, Any]:
    """The public half of a private JWK."""
    return {**JsonWebKey.import_key(jwk).as_dict(is_private=False), "use": "sig", "alg": jwk["alg"]}


def client(method: str = "campus", **extra: Any) -> dict[str, Any]:
    """oidc-provider client metadata for the gateway's provider ``method``."""
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{PUBLIC_URL}/signin/{method}/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        **extra,
    }


@dataclass
class Front:
    """What the test can change in the provider's answers, and what it counts."""

    token_hook: TokenHook | None = None
    """Changes the token endpoint's JSON answer (a forged or broken ID token)."""
    userinfo_hook: TokenHook | None = None
    """Changes the userinfo endpoint's JSON answer."""
    extra_keys: list[dict[str, Any]] = field(default_factory=list)
    """Public keys added to the JWKS (the test signs forged tokens with their private half)."""
    fail: set[str] = field(default_factory=set)
    """Paths answered with 503 (the provider in trouble)."""
    hits: Counter[str] = field(default_factory=Counter)


class Provider:
    """oidc-provider as a child process, on loopback behind the ``Front``."""

    def __init__(
        self, tmp: Path, clients: list[dict[str, Any]], ttl: dict[str, int] | None = None
    ) -> None:
        self.node = node_provider_ready()
        self.tmp = tmp
        self.port = free_port()
        self.node_port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.clients = clients
        self.ttl = ttl or {}
        self.keys = [rsa_key("k1")]
        self.front = Front()
        self.process: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- the node process -----------------------------------------------------------------

    def start_node(self) -> None:
        config = {"issuer": self.issuer, "port": self.node_port, "keys": self.keys,
                  "clients": self.clients, "accounts": ACCOUNTS, "ttl": self.ttl}  # fmt: skip
        path = self.tmp / "provider.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [self.node, str(IDP_DIR / "provider.mjs"), str(path)], cwd=IDP_DIR,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for_port(self.node_port, timeout=20)

    def stop_node(self) -> None:
        stop_process(self.process)

    def rotate_keys(self) -> None:
        """A key rotation: the provider restarts signing with a new key only (k1 is gone)."""
        self.stop_node()
        self.keys = [rsa_key(f"k{len(self.keys) + 1}-rotated")]
        self.start_node()

    # -- the front ------------------------------------------------------------------------

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        front = self.front
        front.hits[request.path] += 1
        if request.path in front.fail:
            return web.Response(status=503, text="provider in trouble")
        assert self._session is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding")
        }
        async with self._session.request(
            request.method, f"http://127.0.0.1:{self.node_port}{request.path_qs}",
            headers=headers, data=await request.read(), allow_redirects=False,
        ) as upstream:  # fmt: skip
            body = await upstream.read()
            out = [(k, v) for k, v in upstream.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")]  # fmt: skip
            if request.path == "/token" and front.token_hook and upstream.status == 200:
                body = json.dumps(front.token_hook(json.loads(body))).encode()
            if request.path == "/me" and front.userinfo_hook and upstream.status == 200:
                body = json.dumps(front.userinfo_hook(json.loads(body))).encode()
            if request.path == "/jwks" and front.extra_keys:
                document = json.loads(body)
                document["keys"] += front.extra_keys
                body = json.dumps(document).encode()
            response = web.Response(status=upstream.status, body=body)
            for name, value in out:
                response.headers.add(name, value)
            return response

    async def __aenter__(self) -> Provider:
        self.start_node()
        self._session = aiohttp.ClientSession(auto_decompress=True)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def go_down(self) -> None:
        """The provider becomes unreachable: nothing listens on its port any more."""
        await self._runner.cleanup()
        self.stop_node()

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.stop_node()

    def settings(self, method: str = "campus", **extra: Any) -> dict[str, Any]:
        """The gateway's ``[[oidc]]`` entry for this provider."""
        return {"id": method, "display_name": "Campus ID", "display_name_es": "Campus ID (es)",
                "issuer": self.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "scopes": ["openid", "email", "groups"], "userinfo": True,
                "groups_claim": "groups", **extra}  # fmt: skip


INTERACTION_FORM = re.compile(r'<form method="post" action="(/interaction/[^"]+/login)"')


class ProviderBrowser:
    """The patron's browser at the provider: its own cookies (oidc-provider's interaction and
    session cookies, for 127.0.0.1), redirects followed by hand until the gateway's callback."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def log_in(self, location: str, account: str, public_url: str = PUBLIC_URL) -> str:
        """Follow the provider's pages from ``location`` (the authorization request), log in as
        ``account``; returns the callback URL the provider sends the browser to (on the
        gateway's ``public_url``)."""
        for _ in range(12):
            if location.startswith(public_url):
                return location
            async with self.http.get(location, allow_redirects=False) as response:
                if response.status in (302, 303):
                    location = _absolute(location, response.headers["Location"])
                    continue
                html = await response.text()
                match = INTERACTION_FORM.search(html)
                assert response.status == 200 and match, (response.status, html[:500])
                action = _absolute(location, unescape(match[1]))
            async with self.http.post(
                action, data={"login": account}, allow_redirects=False
            ) as response:
                assert response.status in (302, 303), await response.text()
                location = _absolute(location, response.headers["Location"])
        raise AssertionError("the provider never sent the browser back")


def _absolute(base: str, location: str) -> str:
    if location.startswith("/"):
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}{location}"
    return location


def callback_path(url: str) -> str:
    """The path and query of a callback URL, to send to the gateway's test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def press_signin(
    browser: Browser, target: str = "", method: str = "campus"
) -> aiohttp.ClientResponse:
    """Open the login page (for ``target``) and press "Sign in with ...", as a patron does."""
    page = await browser.get("/login" + (f"?qurl={quote(target, safe='')}" if target else ""))
    html = await page.text()
    match = TOKEN.search(html)
    assert page.status == 200 and match and f'action="/signin/{method}"' in html, html
    return await browser.post(f"/signin/{method}", {"csrf_token": match[1], "url": target})


async def sign_in(
    browser: Browser, at: ProviderBrowser, account: str = "alice", target: str = "",
    method: str = "campus",
) -> aiohttp.ClientResponse:  # fmt: skip
    """The whole round trip: the button, the provider's login, the callback's answer."""
    started = await press_signin(browser, target, method)
    assert started.status == 302, await started.text()
    back = await at.log_in(started.headers["Location"], account)
    return await browser.get(callback_path(back))


async def running_provider(
    tmp: Path, clients: list[dict[str, Any]], **kw: Any
) -> AsyncIterator[Provider]:
    """A started provider for a fixture."""
    async with Provider(tmp, clients, **kw) as provider:
        yield provider
        await asyncio.sleep(0)
