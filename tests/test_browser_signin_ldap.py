"""The LDAP sign-in form in Chromium: on the login page above the card form (phone and
desktop, English and Spanish, passing axe, also with a wrong password's error), and a patron
signing in with it against the test run's slapd through to the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from gateway import config
from gateway.app import build_app
from gateway.embedded_redis import free_port
from tests.browser_support import accessible, chromium
from tests.ldap_support import PASSWORDS, Slapd, directory
from tests.support import serve_on_loopback
from tests.test_browser_signin import DESKTOP, PHONE, _artifact
from tests.test_signin_ldap import RULES, START
from tests.vendor_support import Vendor, gateway_settings

LABELS = {
    "en": ("Username", "Password", "Sign in", "The username or password is not right"),
    "es": ("Nombre de usuario", "Contraseña", "Iniciar sesión", "no son correctos"),
}


async def test_a_patron_signs_in_with_the_directorys_form_in_chromium(
    make_settings: Callable[..., config.Settings], vendor: Vendor, slapd: Slapd
) -> None:
    listen = free_port()
    public_url = f"http://login.proxy.localhost:{listen}"
    settings = gateway_settings(make_settings, vendor, RULES, ldap=[directory(slapd)],
                                server={"listen": f"127.0.0.1:{listen}"})  # fmt: skip
    async for _ in serve_on_loopback(build_app(settings), listen):
        async with chromium() as browser:
            for lang, viewport in (("en", PHONE), ("en", DESKTOP), ("es", PHONE), ("es", DESKTOP)):
                username, password, button, wrong = LABELS[lang]
                context = await browser.new_context(viewport=viewport)
                page: Any = await context.new_page()
                await page.goto(f"{public_url}/login?lang={lang}&qurl={quote(START, safe='')}")
                form = page.locator("form.signin-password")
                card = page.locator("#card")
                assert (await form.bounding_box())["y"] < (await card.bounding_box())["y"]
                width = viewport["width"]
                await accessible(page, f"login with a directory ({lang}, {width}px)")
                await page.screenshot(path=str(_artifact(f"ldap-login-{lang}-{width}.png")))
                await form.get_by_label(username).fill("alice")
                await form.get_by_label(password).fill("not-her-password")
                await form.get_by_role("button", name=button).click()
                await page.get_by_role("alert").filter(has_text=wrong).wait_for()
                await accessible(page, f"directory form, wrong password ({lang}, {width}px)")
                form = page.locator("form.signin-password")
                assert await form.get_by_label(username).input_value() == "alice"
                await form.get_by_label(password).fill(PASSWORDS["alice"])
                await form.get_by_role("button", name=button).click()
                await page.wait_for_url(f"http://www-vendor-test.proxy.localhost:{listen}/")
                await context.close()
