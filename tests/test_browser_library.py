"""The library's name and contacts in a real browser: the login page and an error page on a
vendor host, desktop and phone, English and Spanish. The error page's stylesheet comes from
the login host and applies; its language switch and links go to the login host; axe-core
finds nothing serious; screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from gateway import config
from tests.admin_support import served_gateway
from tests.browser_support import ARTIFACTS, accessible, chromium
from tests.patron_support import LIBRARY
from tests.support import serve_on_loopback

LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">'
    '<rect width="120" height="40" rx="6" fill="#0b4f8a"/>'
    '<text x="60" y="27" font-family="sans-serif" font-size="18" fill="#fff" '
    'text-anchor="middle">SPL</text></svg>'
)
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
LOCALES = {"en": "en-US", "es": "es-ES"}
HEADINGS = {
    ("login", "en"): "Log in to the library's databases",
    ("login", "es"): "Inicie sesión en las bases de datos de la biblioteca",
    ("error", "en"): "This database is not set up",
}


async def _logo(request: web.Request) -> web.Response:
    return web.Response(text=LOGO, content_type="image/svg+xml")


@pytest.fixture
async def gateway(make_settings: Callable[..., config.Settings]) -> AsyncIterator[Any]:
    logo_app = web.Application()
    logo_app.router.add_get("/logo.svg", _logo)
    async for logo_port in serve_on_loopback(logo_app):
        library = {**LIBRARY, "logo_url": f"http://127.0.0.1:{logo_port}/logo.svg"}
        async for served in served_gateway(make_settings, library=library):
            yield served


async def _stylesheet_applies(page: Any) -> None:
    """The gateway's stylesheet, not the browser's defaults: main is 36rem wide at most and the
    footer has its rule."""
    style = await page.evaluate(
        "() => ({main: getComputedStyle(document.querySelector('main')).maxWidth,"
        " footer: getComputedStyle(document.querySelector('footer')).borderTopStyle,"
        " logo: document.querySelector('img.logo').naturalWidth})"
    )
    assert style == {"main": "576px", "footer": "solid", "logo": 120}, style


async def test_login_and_vendor_error_pages_carry_the_library_on_every_screen(
    gateway: Any,
) -> None:
    port, _ = gateway
    login = f"http://login.proxy.localhost:{port}"
    vendor_error = f"http://www-nowhere-test.proxy.localhost:{port}/some/page"
    ARTIFACTS.mkdir(exist_ok=True)
    async with chromium() as browser:
        for lang, locale in LOCALES.items():
            name = (
                "Springfield Public Library"
                if lang == "en"
                else "Biblioteca Pública de Springfield"
            )
            for screen, viewport in VIEWPORTS.items():
                context = await browser.new_context(viewport=viewport, locale=locale)
                page = await context.new_page()
                failed = _failed_loads(page)
                for kind, url in (("login", f"{login}/login"), ("error", vendor_error)):
                    answer = await page.goto(url)
                    assert answer is not None
                    assert answer.status == (200 if kind == "login" else 404)
                    assert await page.title() == f"{await _h1(page)} · {name}"
                    if (kind, lang) in HEADINGS:
                        assert await _h1(page) == HEADINGS[kind, lang]
                    await _stylesheet_applies(page)
                    phone = page.locator('a[href="tel:+15550100199"]')
                    assert await phone.inner_text() == "+1 (555) 010-0199"
                    await accessible(page, f"{kind} page, {lang}, {screen}")
                    await page.screenshot(
                        path=str(ARTIFACTS / f"library-{kind}-{lang}-{screen}.png"), full_page=True
                    )
                assert failed == [], failed
                # The vendor host's language switch goes to the login host, in the other language.
                other = "es" if lang == "en" else "en"
                await page.locator(f'header a[hreflang="{other}"]').click()
                await page.wait_for_url(f"{login}/help?lang={other}")
                await _stylesheet_applies(page)
                await context.close()


def _failed_loads(page: Any) -> list[str]:
    """The URLs of what ``page`` itself fails to load from now on (axe's own fetches of the
    stylesheets are not the page's: its default-src keeps those to its host)."""
    failed: list[str] = []

    def note(request: Any) -> None:
        if request.resource_type in ("document", "stylesheet", "image", "script"):
            failed.append(request.url)

    page.on("requestfailed", note)
    return failed


async def _h1(page: Any) -> str:
    text: str = await page.get_by_role("heading", level=1).inner_text()
    return text
