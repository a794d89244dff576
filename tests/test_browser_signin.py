"""A full OpenID Connect sign-in in Chromium: the login page with the provider's button above
the card form (phone and desktop, English and Spanish, passing axe), the provider's own page
(node's oidc-provider on loopback), and back through the gateway to the database; and a SAML
sign-in through pysaml2's IdP, whose answer is a cross-site POST."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gateway import config
from gateway.app import build_app
from gateway.embedded_redis import free_port
from tests.browser_support import accessible, chromium
from tests.ldap_support import Slapd, directory
from tests.oidc_support import Provider, client
from tests.support import serve_on_loopback
from tests.test_signin_oidc import RULES, START
from tests.vendor_support import Vendor, gateway_settings

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


async def test_a_patron_signs_in_with_the_provider_in_chromium(
    tmp_path: Path, make_settings: Callable[..., config.Settings], vendor: Vendor
) -> None:
    listen = free_port()
    public_url = f"http://login.proxy.localhost:{listen}"
    registered = {**client(), "redirect_uris": [f"{public_url}/signin/campus/callback"]}
    (tmp_path / "idp").mkdir()
    async with Provider(tmp_path / "idp", [registered]) as idp:
        settings = gateway_settings(make_settings, vendor, RULES, oidc=[idp.settings()],
                                    server={"listen": f"127.0.0.1:{listen}"})  # fmt: skip
        async for _ in serve_on_loopback(build_app(settings), listen):
            async with chromium() as browser:
                for lang, viewport, button in (
                    ("en", PHONE, "Sign in with Campus ID"),
                    ("en", DESKTOP, "Sign in with Campus ID"),
                    ("es", PHONE, "Iniciar sesión con Campus ID (es)"),
                    ("es", DESKTOP, "Iniciar sesión con Campus ID (es)"),
                ):
                    context = await browser.new_context(viewport=viewport)
                    page: Any = await context.new_page()
                    await page.goto(f"{public_url}/login?lang={lang}&qurl={quote(START, safe='')}")
                    sign_in = page.get_by_role("button", name=button)
                    card = page.locator("#card")
                    assert (await sign_in.bounding_box())["y"] < (await card.bounding_box())["y"]
                    await accessible(page, f"login with a provider ({lang}, {viewport['width']}px)")
                    await page.screenshot(
                        path=str(_artifact(f"signin-login-{lang}-{viewport['width']}.png"))
                    )
                    await sign_in.click()
                    await page.get_by_label("Username").fill("alice")
                    await page.get_by_role("button", name="Continue").click()
                    await page.wait_for_url(f"http://www-vendor-test.proxy.localhost:{listen}/")
                    assert await page.locator("a", has_text="next").count() == 1
                    await context.close()


async def test_a_saml_sign_in_gets_past_the_idps_cross_site_post_in_chromium(
    tmp_path: Path, make_settings: Callable[..., config.Settings], vendor: Vendor
) -> None:
    """The IdP's answer is a cross-site POST, which carries no SameSite=Lax cookie: the ACS's
    303 to a same-site GET is what brings the browser's sign-in cookie back, in a real browser."""
    import aiohttp

    from tests.saml_support import Idp

    listen = free_port()
    public_url = f"http://login.proxy.localhost:{listen}"
    (tmp_path / "idp").mkdir()
    async with Idp(tmp_path / "idp") as idp:
        settings = gateway_settings(make_settings, vendor, RULES, saml=[idp.settings()],
                                    server={"listen": f"127.0.0.1:{listen}"})  # fmt: skip
        async for _ in serve_on_loopback(build_app(settings), listen):
            async with aiohttp.ClientSession() as http:
                metadata = await http.get(f"http://127.0.0.1:{listen}/signin/campus/metadata",
                                          headers={"Host": f"login.proxy.localhost:{listen}"})  # fmt: skip
                idp.sp_metadata = [await metadata.text()]
            async with chromium() as browser:
                context = await browser.new_context(viewport=DESKTOP)
                page: Any = await context.new_page()
                await page.goto(f"{public_url}/login?qurl={quote(START, safe='')}")
                await page.get_by_role("button", name="Sign in with Campus ID").click()
                await page.locator("input[name=user]").fill("alice")
                await page.get_by_role("button", name="Log in").click()
                await page.get_by_role("button", name="Continue").click()  # the POST to the ACS
                await page.wait_for_url(f"http://www-vendor-test.proxy.localhost:{listen}/")
                assert await page.locator("a", has_text="next").count() == 1
                await context.close()


async def test_the_login_page_offers_every_kind_of_provider_with_the_card_form(
    tmp_path: Path, make_settings: Callable[..., config.Settings], vendor: Vendor, slapd: Slapd
) -> None:
    """One login page with an OpenID Connect, a CAS and a SAML button (the configuration's order
    of kinds), an LDAP form and the card form: each where a patron looks for it (the buttons,
    then the directory's form, then the card), reached by the keyboard in that order, on a phone and a desktop, in English and
    Spanish, passing axe."""
    from tests.saml_support import Idp

    listen = free_port()
    public_url = f"http://login.proxy.localhost:{listen}"
    (tmp_path / "oidc").mkdir()
    (tmp_path / "saml").mkdir()
    cas = {"id": "cas", "display_name": "Campus CAS", "display_name_es": "CAS del campus",
           "server_url": f"http://127.0.0.1:{free_port()}/cas"}  # fmt: skip
    async with Provider(tmp_path / "oidc", [client()]) as oidc, Idp(tmp_path / "saml") as idp:
        settings = gateway_settings(
            make_settings, vendor, RULES, oidc=[oidc.settings()],
            saml=[idp.settings("shib", display_name="Shibboleth", display_name_es="Shibboleth")],
            cas=[cas], ldap=[directory(slapd)], server={"listen": f"127.0.0.1:{listen}"},
        )  # fmt: skip
        async for _ in serve_on_loopback(build_app(settings), listen):
            async with chromium() as browser:
                for lang, viewport, words in (
                    ("en", PHONE, ("Sign in with Campus ID", "Sign in with Campus CAS",
                                   "Sign in with Shibboleth", "University account")),
                    ("es", DESKTOP, ("Iniciar sesión con Campus ID (es)",
                                     "Iniciar sesión con CAS del campus",
                                     "Iniciar sesión con Shibboleth",
                                     "Cuenta de la universidad")),
                ):  # fmt: skip
                    context = await browser.new_context(viewport=viewport)
                    page: Any = await context.new_page()
                    await page.goto(f"{public_url}/login?lang={lang}&qurl={quote(START, safe='')}")
                    *buttons, heading = words
                    tops = [
                        (await page.get_by_role("button", name=name).bounding_box())["y"]
                        for name in buttons
                    ]
                    directory_form = page.get_by_role("heading", name=heading)
                    tops.append((await directory_form.bounding_box())["y"])
                    tops.append((await page.locator("#card").bounding_box())["y"])
                    assert tops == sorted(tops), tops
                    await accessible(page, f"login with every kind ({lang}, {viewport['width']}px)")
                    await page.screenshot(
                        path=str(_artifact(f"signin-every-kind-{lang}-{viewport['width']}.png"))
                    )
                    focused = []
                    await page.locator("body").focus()
                    for _ in range(12):
                        await page.keyboard.press("Tab")
                        focused.append(await page.evaluate(
                            "document.activeElement.textContent.trim() || document.activeElement.id"
                        ))  # fmt: skip
                    order = [focused.index(name) for name in buttons]
                    assert order == sorted(order), focused
                    assert focused.index("card") > order[-1], focused
                    await context.close()


def _artifact(name: str) -> Path:
    from tests.browser_support import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
