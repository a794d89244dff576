"""A patron in a real browser: log in on the real login page, browse the recorded IANA site
through the gateway, follow links; every request stays under the proxy domain, the stylesheet
applies, and no request fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from gateway import config
from gateway.app import build_app
from gateway.auth.commands import local_directory
from gateway.embedded_redis import free_port
from tests.browser_support import ARTIFACTS, chromium, log_in
from tests.patron_support import CARD, PIN
from tests.support import corpus_dir
from tests.warc_site import serve_warc

IANA_RULES = "Title IANA\nURL http://www.iana.org/\nHJ http://www.iana.org\n"


@pytest.fixture
async def gateway_url(make_settings: Callable[..., config.Settings]) -> AsyncIterator[str]:
    warc = corpus_dir("warc") / "iana.warc.gz"
    async for site_port in serve_warc(warc):
        port = free_port()
        settings = make_settings(
            server={"listen": f"127.0.0.1:{port}"},
            upstream={"resolve": {"www.iana.org": f"127.0.0.1:{site_port}"}},
        )
        Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
        Path(settings.rules.dir, "iana.txt").write_text(IANA_RULES)
        local_directory(settings).add(CARD, PIN)
        runner = web.AppRunner(build_app(settings))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://login.proxy.localhost:{port}"
        finally:
            await runner.cleanup()


async def test_patron_browses_the_recorded_site_through_the_gateway(gateway_url: str) -> None:
    requested: list[str] = []
    failed: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        page.on("request", lambda r: requested.append(r.url))
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.url} {r.status}"))
        await page.goto(f"{gateway_url}/login?url=http://www.iana.org/")
        await log_in(page, CARD, PIN)
        await page.wait_for_url("http://www-iana-org---http.proxy.localhost:*/")
        await page.wait_for_load_state("networkidle")
        font = await page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Open Sans" in font  # the stylesheet came through the gateway and applied
        for link in ("Number Resources", "Domain Names"):
            await page.get_by_role("link", name=link, exact=True).first.click()
            await page.wait_for_load_state("networkidle")
        assert urlsplit(page.url).hostname == "www-iana-org---http.proxy.localhost"
        assert "/domains" in page.url
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "iana-through-gateway.png"), full_page=False)
    hosts = {urlsplit(url).hostname for url in requested if not url.startswith("data:")}
    assert hosts and all(h and h.endswith(".proxy.localhost") for h in hosts), hosts
    assert not failed, failed
    assert len(requested) > 10
