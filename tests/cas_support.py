"""A real CAS server for sign-in tests: nitmir's django-cas-server (CAS 1, 2 and 3), installed
into its own virtualenv by ``make cas`` (tests/idp/cas/requirements.txt pins it and Django) and
run by tests/idp/cas/serve.py on a loopback port; and the patron's browser at its login form."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.embedded_redis import free_port
from tests.oidc_support import PUBLIC_URL
from tests.support import stop_process, wait_for_port

CAS_DIR = Path(__file__).resolve().parent / "idp" / "cas"
CAS_PYTHON = CAS_DIR.parent.parent.parent / ".venv" / "cas" / "bin" / "python"
"""The CAS server's own virtualenv, inside the project's (``make cas``)."""
PASSWORD = "correct horse battery staple"
ACCOUNTS = {
    "alice": {"password": PASSWORD, "attributes": {
        "mail": "alice@campus.test", "groups": ["Default", "Licensed"]}},
    "bob": {"password": PASSWORD, "attributes": {"mail": "bob@campus.test", "groups": ["Default"]}},
}  # fmt: skip
SERVICES = re.escape(f"{PUBLIC_URL}/signin/") + r"[a-z0-9-]+/callback\?state=[A-Za-z0-9_.-]+$"
"""The service URLs the server accepts (its admin's "service pattern"): the gateway's
callbacks, any provider id (a console test sign-in's state holds a '.')."""


def cas_server_ready() -> Path:
    """The CAS server's virtualenv (``make cas`` makes it); skips without it, fails where
    CARREL_REQUIRE_CAS is set (CI)."""
    if not CAS_PYTHON.exists():
        problem = "django-cas-server is not installed: make cas"
        if os.environ.get("CARREL_REQUIRE_CAS"):
            pytest.fail(problem)
        pytest.skip(problem)
    return CAS_PYTHON


class CasServer:
    """django-cas-server as a child process on 127.0.0.1, with the test's accounts."""

    def __init__(self, tmp: Path) -> None:
        self.python = cas_server_ready()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"port": self.port, "database": str(tmp / "cas.sqlite3"),
                  "service": "^" + SERVICES, "accounts": ACCOUNTS}  # fmt: skip
        self.config, self.log = tmp / "cas.json", tmp / "cas.log"
        self.config.write_text(json.dumps(config))
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CasServer:
        with self.log.open("wb") as log:  # a file, not a pipe nobody reads: it never fills
            self.process = subprocess.Popen(
                [str(self.python), str(CAS_DIR / "serve.py"), str(self.config)], cwd=CAS_DIR,
                stdout=log, stderr=log,
            )  # fmt: skip
        try:
            wait_for_port(self.port, timeout=60)  # Django creates its tables first
        except RuntimeError:
            self.__exit__()
            raise RuntimeError(
                f"the CAS server did not start: {self.log.read_text()[-2000:]}"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.process)

    def settings(self, method: str = "campus", **extra: Any) -> dict[str, Any]:
        """The gateway's ``[[cas]]`` entry for this server."""
        return {"id": method, "display_name": "Campus CAS", "display_name_es": "CAS del campus",
                "server_url": self.url, "groups_attribute": "groups", **extra}  # fmt: skip


def running_cas(tmp: Path) -> Iterator[CasServer]:
    """A started CAS server for a fixture."""
    with CasServer(tmp) as server:
        yield server


INPUT = re.compile(r"<input\b[^>]*>")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


class CasBrowser:
    """The patron's browser at the CAS server: its own cookies (the server's session and
    ticket-granting cookies, for 127.0.0.1), its login form filled and posted as a browser
    would, with every hidden field the page holds (CSRF token, login ticket, service)."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def log_in(self, location: str, account: str, password: str = PASSWORD) -> str:
        """Open ``location`` (the server's login page, for a service), log in as ``account``;
        returns where the server sends the browser (the service URL with ``ticket=``)."""
        async with self.http.get(location, allow_redirects=False) as page:
            html = await page.text()
            assert page.status == 200 and 'id="login_form"' in html, (page.status, html[:500])
        form: dict[str, str] = {}
        for tag in INPUT.findall(html):
            fields = dict(ATTRIBUTE.findall(tag))
            if "name" in fields and fields.get("type") != "checkbox":
                form[fields["name"]] = unescape(fields.get("value", ""))
        form.update(username=account, password=password)
        async with self.http.post(location, data=form, allow_redirects=False) as answer:
            assert answer.status == 302, (answer.status, (await answer.text())[:500])
            return answer.headers["Location"]
