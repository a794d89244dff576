"""Attacks that only a real browser can show: a vendor page that overflows the cookie jar to
plant its own session, and a vendor service worker that outlives logout.

Chromium visits a proxied vendor page whose script sets 400 cookies for the parent domain
(which pushes the gateway's HttpOnly session cookie out of the jar) and then its own session
cookie, an attacker's live session. Over plain http this still works, and the README says so;
over TLS each host keeps a host-only ``__Host-`` cookie that no sibling can set, and the patron
stays who they are. The vendor echoes the pseudonym the gateway sends (``AddUserHeader``), so
the test sees whose session a request ran on.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web

from gateway import config
from gateway.app import build_app
from gateway.auth.commands import local_directory
from gateway.auth.secrets import Keyring
from gateway.embedded_redis import free_port
from tests.browser_support import accessible, chromium, log_in
from tests.patron_support import CARD, OTHER_CARD, OTHER_PIN, PIN

WWW, API, PLAIN = "www.vendor.test", "api.vendor.test", "plain.vendor.test"
RULES = f"""AddUserHeader X-Patron
Option ServiceWorkers
Title Vendor
URL https://{WWW}/
HJ https://{WWW}
HJ https://{API}
Option NoServiceWorkers
Title Plain
URL https://{PLAIN}/
HJ https://{PLAIN}
Title Vendor login
URL -Form=post vendorform https://{WWW}/form
FormVariable q=carrels
"""
OVERFLOW = """<!doctype html><html><head><title>vendor</title></head><body><script>
const secure = location.protocol === "https:" ? "; Secure" : "";
for (let i = 0; i < 400; i++) {
  document.cookie = `filler${i}=${"x".repeat(20)}; Domain=proxy.localhost; Path=/${secure}`;
}
document.cookie = `carrel_session=ATTACKER; Domain=proxy.localhost; Path=/${secure}`;
document.cookie = `carrel_form=ATTACKER_FORM_VALUE_0123; Domain=proxy.localhost; Path=/${secure}`;
document.cookie = `__Host-carrel_session=ATTACKER; Path=/${secure}`;
document.title = "done";
</script></body></html>"""
WORKER_PAGE = """<!doctype html><html><head><title>vendor</title></head><body><script>
navigator.serviceWorker.register("/sw.js").then(
  () => navigator.serviceWorker.ready).then(() => { document.title = "registered"; },
  (e) => { document.title = "refused: " + e.name; });
</script></body></html>"""
FETCHER = """<!doctype html><html><head><title>vendor</title></head><body><script>
fetch("https://api.vendor.test/whoami", {credentials: "include"})
  .then((r) => r.ok ? r.text() : "status " + r.status)
  .then((t) => { document.title = "api: " + t; }, (e) => { document.title = "failed: " + e; });
</script></body></html>"""
WORKER = """self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  if (new URL(e.request.url).pathname === "/fake-login") {
    e.respondWith(new Response("<title>enter your card and PIN</title>",
      {headers: {"Content-Type": "text/html"}}));
  }
});"""


@dataclass
class Attack:
    """What the vendor's page plants: set once the attacker has a session."""

    session: str = "none-yet"
    patrons: list[str] = field(default_factory=list)


def vendor_app(attack: Attack) -> web.Application:
    async def overflow(request: web.Request) -> web.Response:
        return web.Response(
            text=OVERFLOW.replace("ATTACKER", attack.session), content_type="text/html"
        )

    async def whoami(request: web.Request) -> web.Response:
        patron = request.headers.get("X-Patron", "")
        attack.patrons.append(patron)
        if request.headers.get("Origin") == f"https://{WWW}":  # the vendor's own API, by CORS
            return web.Response(text=patron, headers={
                "Access-Control-Allow-Origin": f"https://{WWW}",
                "Access-Control-Allow-Credentials": "true",
            })  # fmt: skip
        return web.Response(text=f"<title>{patron}</title>", content_type="text/html")

    async def fetcher(request: web.Request) -> web.Response:
        return web.Response(text=FETCHER, content_type="text/html")

    async def worker_page(request: web.Request) -> web.Response:
        return web.Response(text=WORKER_PAGE, content_type="text/html")

    async def worker(request: web.Request) -> web.Response:
        return web.Response(text=WORKER, content_type="text/javascript")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<title>vendor page</title>", content_type="text/html")

    async def form(request: web.Request) -> web.Response:
        posted = await request.post()
        return web.Response(
            text=f"<title>form: {posted.get('q')}</title>", content_type="text/html"
        )

    def pages() -> web.Application:
        site = web.Application()
        site.router.add_get("/", page)
        site.router.add_get("/overflow", overflow)
        site.router.add_get("/worker", worker_page)
        site.router.add_get("/sw.js", worker)
        site.router.add_get("/fake-login", page)
        site.router.add_get("/fetcher", fetcher)
        site.router.add_post("/form", form)
        return site

    app = web.Application()
    api = web.Application()
    api.router.add_get("/whoami", whoami)
    app.add_domain(WWW, pages())
    app.add_domain(PLAIN, pages())
    app.add_domain(API, api)
    return app


async def _serve(app: web.Application, port: int, context: ssl.SSLContext | None) -> web.AppRunner:
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    return runner


@dataclass
class Site:
    url: str
    """The login host's base URL."""
    proxied: str
    """``scheme://{label}.proxy.localhost:port`` with ``{label}`` to fill in."""
    attack: Attack
    keyring: Keyring
    port: int


@asynccontextmanager
async def _site(
    scheme: str, make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    """The gateway over ``scheme`` (https: it holds a wildcard certificate itself) in front of
    an https vendor, both on loopback."""
    ca = trustme.CA()
    vendor_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(WWW, API, PLAIN).configure_cert(vendor_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    gateway_ctx = None
    if scheme == "https":
        gateway_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("*.proxy.localhost", "login.proxy.localhost").configure_cert(gateway_ctx)
    attack = Attack()
    vendor_port, port = free_port(), free_port()
    settings = make_settings(
        server={"listen": f"127.0.0.1:{port}", "public_scheme": scheme},
        upstream={"resolve": {h: f"127.0.0.1:{vendor_port}" for h in (WWW, API, PLAIN)},
                  "ca_file": str(ca_file)},
        # The companion runs inside the vendor's page, which is the attacker here: what it
        # does (its document.cookie patch drops a Domain) is no defence, so these attacks are
        # judged against the gateway alone.
        companion={"enabled": False},
    )  # fmt: skip
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "vendor.txt").write_text(RULES)
    local_directory(settings).add(CARD, PIN)
    local_directory(settings).add(OTHER_CARD, OTHER_PIN)
    vendor = await _serve(vendor_app(attack), vendor_port, vendor_ctx)
    gateway = await _serve(build_app(settings), port, gateway_ctx)
    try:
        yield Site(
            url=f"{scheme}://login.proxy.localhost:{port}",
            proxied=f"{scheme}://{{label}}.proxy.localhost:{port}",
            attack=attack, keyring=Keyring(config.secret_key(settings)), port=port,
        )  # fmt: skip
    finally:
        await gateway.cleanup()
        await vendor.cleanup()


@pytest.fixture(params=["http", "https"])
async def site(
    request: pytest.FixtureRequest, make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    async with _site(request.param, make_settings, tmp_path) as running:
        yield running


@pytest.fixture
async def http_site(
    make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    async with _site("http", make_settings, tmp_path) as running:
        yield running


@pytest.fixture
async def tls_site(
    make_settings: Callable[..., config.Settings], tmp_path: Path
) -> AsyncIterator[Site]:
    async with _site("https", make_settings, tmp_path) as running:
        yield running


async def _attackers_session(site: Site) -> str:
    """The attacker logs in with their own card and keeps the session id."""
    jar = aiohttp.DummyCookieJar()
    connector = aiohttp.TCPConnector(ssl=False)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as http:
        host = {"Host": f"login.proxy.localhost:{site.port}"}
        base = f"{site.url.split('://')[0]}://127.0.0.1:{site.port}"
        async with http.get(f"{base}/login", headers=host) as page:
            form = next(v for k, v in page.cookies.items() if k.endswith("carrel_form"))
            token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
        async with http.post(
            f"{base}/login", data={"csrf_token": token, "card": OTHER_CARD, "pin": OTHER_PIN, "url": ""},
            headers={**host, "Cookie": f"{form.key}={form.value}"}, allow_redirects=False,
        ) as response:  # fmt: skip
            assert response.status == 302
            return next(
                v.value for k, v in response.cookies.items() if k.endswith("carrel_session")
            )


async def _logged_in(browser: Any, site: Site) -> tuple[Any, Any]:
    """A new browser context and page in which the patron has logged in (on the menu)."""
    context = await browser.new_context(ignore_https_errors=True)
    page = await context.new_page()
    await page.goto(f"{site.url}/login")
    await log_in(page, CARD, PIN)
    await page.wait_for_url(f"{site.url}/menu")
    return context, page


def _label(host: str) -> str:
    return host.replace("-", "--").replace(".", "-")


async def test_a_vendor_page_overflowing_the_cookie_jar_cannot_plant_its_session_over_tls(
    site: Site,
) -> None:
    site.attack.session = await _attackers_session(site)
    victim, attacker = site.keyring.pseudonym(CARD), site.keyring.pseudonym(OTHER_CARD)
    whoami = site.proxied.format(label=_label(API)) + "/whoami"
    async with chromium() as browser:
        context, page = await _logged_in(browser, site)
        await page.goto(whoami)
        assert await page.title() == victim  # browsing as themselves
        await page.goto(site.proxied.format(label=_label(WWW)) + "/overflow")
        await page.wait_for_function("document.title === 'done'")
        evicted = not any(c["name"].endswith("carrel_session") and "ATTACKER" not in c["value"]
                          and c["value"] != site.attack.session for c in await context.cookies())  # fmt: skip
        await page.goto(whoami)
        now = await page.title()
        await context.close()
    assert evicted, "the overflow did not push the gateway's cookies out: the test shows nothing"
    if site.url.startswith("http:"):
        # What remains over plain http (README, "Security model"): there is no host-only
        # cookie a sibling cannot replace, so the planted session wins. Production uses TLS.
        assert now == attacker
    else:
        assert now != attacker
        assert site.attack.patrons.count(attacker) == 0


async def test_a_vendor_service_worker_is_refused_unless_the_rules_opt_in_and_gone_after_logout(
    tls_site: Site,
) -> None:
    site = tls_site
    www, plain = (site.proxied.format(label=_label(h)) for h in (WWW, PLAIN))
    # The test's own CA: Chromium registers service workers only where it trusts the TLS.
    async with chromium("--ignore-certificate-errors") as browser:
        context, page = await _logged_in(browser, site)
        await page.goto(f"{plain}/worker")  # no Option ServiceWorkers: the script is refused
        await page.wait_for_function("document.title !== 'vendor'")
        assert (await page.title()).startswith("refused")
        await page.goto(f"{www}/worker")  # Option ServiceWorkers: the vendor may have one
        await page.wait_for_function("document.title !== 'vendor'")
        assert await page.title() == "registered"
        await page.goto(f"{www}/fake-login")
        assert await page.title() == "enter your card and PIN"  # the worker answers
        await page.goto(f"{site.url}/logout")
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_load_state()
        assert "logged out" in await page.title()
        await page.goto(f"{www}/")  # the host's first answer after the session ended
        await page.goto(f"{www}/fake-login")
        title = await page.title()
        workers = await page.evaluate(
            "navigator.serviceWorker ? navigator.serviceWorker.getRegistrations()"
            ".then(r => r.length) : 0"
        )
        await context.close()
    assert title != "enter your card and PIN"
    assert workers == 0


async def test_over_tls_the_first_fetch_to_a_databases_api_host_finds_the_session(
    tls_site: Site,
) -> None:
    """A credentialed cross-origin fetch() cannot follow a hand-over through the login host,
    so the hand-over page gives the database's other hosts their cookie first."""
    site = tls_site
    async with chromium() as browser:
        context, page = await _logged_in(browser, site)
        await page.goto(site.proxied.format(label=_label(WWW)) + "/fetcher")
        await page.wait_for_function(
            "document.title.startsWith('api') || document.title.startsWith('failed')"
        )
        title = await page.title()
        await context.close()
    assert title == f"api: {site.keyring.pseudonym(CARD)}"


async def test_the_new_patron_pages_pass_axe(tls_site: Site) -> None:
    """The logout page and the hand-over page on a proxied host."""
    site = tls_site
    www = site.proxied.format(label=_label(WWW))
    async with chromium() as browser:
        context, page = await _logged_in(browser, site)
        # Without its script the hand-over page stays put, as it does for a moment anyway.
        await page.route("**/static/handover.js", lambda route: route.abort())
        await page.goto(f"{www}/")
        await page.wait_for_selector("a[data-continue]")
        assert await page.title() == "Opening the database · Library database access"
        await accessible(page, "hand-over page")
        await page.goto(f"{site.url}/logout")
        await accessible(page, "logout page")
        await context.close()


async def test_a_form_start_logs_the_library_in_at_the_vendor_in_a_browser(site: Site) -> None:
    """``URL -Form=post``: the page posts the stanza's values to the vendor, over http and over
    TLS (where it is served on the vendor's host, after the hand-over); without scripts it
    waits for the Continue button, and passes axe."""
    async with chromium() as browser:
        context, page = await _logged_in(browser, site)
        await page.goto(f"{site.url}/login/vendorform")
        await page.wait_for_function("document.title.startsWith('form: ')")
        assert await page.title() == "form: carrels"
        await page.route("**/static/autosubmit.js", lambda route: route.abort())
        await page.goto(f"{site.url}/login/vendorform")
        await page.wait_for_selector("form[data-autosubmit]")
        await accessible(page, "form start page")
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_function("document.title.startsWith('form: ')")
        assert await page.title() == "form: carrels"
        await context.close()


async def test_the_two_cookies_page_passes_axe(http_site: Site) -> None:
    """Over http a sibling can plant a parent-domain cookie beside the login host's own."""
    site = http_site
    async with chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{site.url}/login")
        await context.add_cookies(
            [{"name": "carrel_form", "value": "planted-by-a-sibling-0123", "domain": ".proxy.localhost", "path": "/"}]
        )  # fmt: skip
        await page.goto(f"{site.url}/login")
        assert (await page.title()).startswith("Please try again")
        await accessible(page, "two-cookies page")
        await page.get_by_role("link", name="Log in again").click()  # the way forward works
        assert (await page.title()).startswith("Log in")
        await context.close()
