"""The console's test sign-in in Chromium: a staff member presses "Test sign-in", signs in at
the real provider (node's oidc-provider on loopback) and comes back, through the provider's
cross-site redirect, to the page that shows the claims and matched rules (phone and desktop,
English and Spanish, passing axe); no session is opened."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway import config
from gateway.app import build_app
from gateway.appkeys import SESSIONS
from gateway.embedded_redis import free_port
from tests.admin_support import PASSWORDS, add_staff
from tests.browser_support import accessible, chromium
from tests.oidc_support import Provider, client
from tests.support import serve_on_loopback
from tests.test_browser_signin import DESKTOP, PHONE
from tests.test_signin_rules import LICENSED_ONLY, RULES
from tests.vendor_support import Vendor, gateway_settings


async def test_staff_see_what_the_provider_sent_in_chromium(
    tmp_path: Path, make_settings: Callable[..., config.Settings], vendor: Vendor
) -> None:
    listen = free_port()
    public_url = f"http://login.proxy.localhost:{listen}"
    registered = {**client(), "redirect_uris": [f"{public_url}/signin/campus/callback"]}
    (tmp_path / "idp").mkdir()
    async with Provider(tmp_path / "idp", [registered]) as idp:
        entry = idp.settings(scopes=["openid", "email", "affiliation"], groups_claim="",
                             rules=LICENSED_ONLY)  # fmt: skip
        settings = gateway_settings(make_settings, vendor, RULES, oidc=[entry],
                                    server={"listen": f"127.0.0.1:{listen}"})  # fmt: skip
        add_staff(settings)
        app = build_app(settings)
        async for _ in serve_on_loopback(app, listen):
            async with chromium() as browser:
                for lang, viewport, button, denied in (
                    ("en", DESKTOP, "Test sign-in with Campus ID", "Denied"),
                    ("es", PHONE, "Probar el inicio de sesión con Campus ID (es)", "Denegado"),
                ):
                    context = await browser.new_context(viewport=viewport)
                    page: Any = await context.new_page()
                    await page.goto(f"{public_url}/admin/login?lang={lang}")
                    await page.locator("#user").fill("ada")
                    await page.locator("#password").fill(PASSWORDS["ada"])
                    await page.locator("#password").press("Enter")
                    await page.wait_for_url(f"{public_url}/admin/sessions")
                    await page.goto(f"{public_url}/admin/signin-test")
                    await accessible(page, f"test sign-in list ({lang})")
                    await page.get_by_role("button", name=button).click()
                    await page.get_by_label("Username").fill("carol")
                    await page.get_by_role("button", name="Continue").click()
                    await page.wait_for_url(
                        re.compile(re.escape(f"{public_url}/admin/signin-test/result?"))
                    )
                    main = page.locator("main")
                    assert denied in await main.inner_text()
                    assert (
                        await page.locator("td code").get_by_text("alumni", exact=True).count() == 1
                    )
                    await accessible(page, f"test sign-in result ({lang}, {viewport['width']}px)")
                    assert await app[SESSIONS].live() == []
                    await context.close()
