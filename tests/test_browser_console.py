"""An editor in a real browser: log in to the console, break a rule file and see the line
flagged, fix it, save; a proxied request then follows the new rule; the change is in the
history and can be restored. axe-core checks the patron and console pages on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import config
from tests.admin_support import CDN_HOST, PASSWORDS, served_gateway
from tests.browser_support import ARTIFACTS, accessible, chromium, log_in
from tests.patron_support import CARD, PIN


@pytest.fixture
async def gateway(make_settings: Callable[..., config.Settings]) -> AsyncIterator[Any]:
    async for served in served_gateway(make_settings):
        yield served


async def test_editor_fixes_saves_and_restores_a_rule_in_the_browser(gateway: Any) -> None:
    port, settings = gateway
    base = f"http://login.proxy.localhost:{port}"
    cdn = f"http://{CDN_HOST}:{port}/hello"
    rule_file = Path(settings.rules.dir, "demo.txt")
    original = rule_file.read_text()
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1024, "height": 768})  # a desk tablet
        # The patron side: login page and menu pass axe; the patron then has a session.
        await page.goto(f"{base}/login")
        await accessible(page, "login")
        await log_in(page, CARD, PIN)
        await page.wait_for_url(f"{base}/menu")
        await accessible(page, "menu")
        refused = await page.goto(cdn)
        assert refused is not None and refused.status == 404  # no rule for cdn.demo.test yet

        await page.goto(f"{base}/admin/")
        assert page.url.startswith(f"{base}/admin/login?next="), page.url
        await accessible(page, "staff login")
        await page.get_by_label("User name").fill("eli")
        await page.get_by_label("Password").fill(PASSWORDS["eli"])
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{base}/admin/sessions")
        await accessible(page, "sessions")
        assert CARD in await page.content()  # the patron's live session is listed
        await page.get_by_role("link", name="Databases").click()
        await accessible(page, "databases")
        await page.get_by_role("link", name="Demo Journals").click()
        await page.wait_for_url(f"{base}/admin/rules/demo.txt")
        await accessible(page, "editor")

        editor = page.get_by_label("Rules (EZproxy stanza syntax)")
        await editor.fill(original + "Replace without find\n")
        live = page.locator(".live-findings li.error")  # checked as typed, through the API
        await live.wait_for()
        assert await live.inner_text() == "Line 4: error: Replace without a Find line before it"
        await page.get_by_role("button", name="Check").click()
        flagged = page.locator("ul.findings li.error")
        assert await flagged.inner_text() == (
            "Line 4: error: Replace without a Find line before it"
        )
        await accessible(page, "editor with findings")
        await page.get_by_role("button", name="Save").click()
        assert "nothing has been saved" in await page.content()
        assert rule_file.read_text() == original

        await page.get_by_label("Rules (EZproxy stanza syntax)").fill(
            original + "HJ http://cdn.demo.test\n"
        )
        await page.get_by_label("URL to test").fill("http://cdn.demo.test/hello")
        await page.get_by_role("button", name="Test URL").click()
        explained = await page.locator("pre.explain").inner_text()
        assert f"http://{CDN_HOST}:{port}/hello" in explained
        rewriting = next(r for r in explained.splitlines() if r.startswith("What is proxied:"))
        assert "URLs inside scripts are proxied" in rewriting and rewriting.endswith("(HJ)")
        await page.get_by_role("button", name="Save").click()
        await page.wait_for_url(f"{base}/admin/rules/demo.txt/history")
        await accessible(page, "history")
        assert "+HJ http://cdn.demo.test" in await page.locator("pre.diff").first.inner_text()
        assert "eli" in await page.locator("ol.versions h2").first.inner_text()

        followed = await page.goto(cdn)
        assert followed is not None and followed.status == 200
        assert "vendor page cdn.demo.test/hello" in await page.content()

        await page.goto(f"{base}/admin/rules/demo.txt/history")
        await page.get_by_role("button", name="Restore version 0").click()
        await page.wait_for_url(f"{base}/admin/rules/demo.txt/history")
        assert "restored version 0" in await page.locator("ol.versions h2").first.inner_text()
        assert rule_file.read_text() == original
        await page.goto(f"{base}/admin/cards?card={CARD}")
        await accessible(page, "cards")
        for area in ("limits", "usage"):
            await page.get_by_role("link", name=area.capitalize(), exact=True).click()
            await page.wait_for_url(f"{base}/admin/{area}")
            await accessible(page, area)
        for _ in range(40):  # the proxy's counts reach Redis within a flush (about a second)
            if await page.locator("svg.chart").count():
                break
            await asyncio.sleep(0.25)
            await page.reload()
        assert "Demo Journals" in await page.locator("svg.chart").inner_html()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "console-usage.png"), full_page=True)
        gone = await page.goto(cdn)
        assert gone is not None and gone.status == 404  # the restored rule is live again
        # An administrator's pages too: staff accounts and the audit log.
        await page.goto(f"{base}/admin/sessions")
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url(f"{base}/admin/login")
        await page.get_by_label("User name").fill("ada")
        await page.get_by_label("Password").fill(PASSWORDS["ada"])
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{base}/admin/sessions")
        for area, link in (("staff", "Staff"), ("audit", "Audit log")):
            await page.get_by_role("link", name=link, exact=True).click()
            await page.wait_for_url(f"{base}/admin/{area}")
            await accessible(page, area)
        assert "rules_restored" in await page.content()


async def test_console_on_a_phone_tables_scroll_in_their_region_and_lines_are_numbered(
    gateway: Any,
) -> None:
    port, _ = gateway
    base = f"http://login.proxy.localhost:{port}"
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        await page.goto(f"{base}/login")
        await log_in(page, CARD, PIN)  # a session to list
        await page.goto(f"{base}/admin/login")
        await page.get_by_label("User name").fill("ada")
        await page.get_by_label("Password").fill(PASSWORDS["ada"])
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{base}/admin/sessions")
        for area in ("sessions", "rules", "audit", "staff"):
            await page.goto(f"{base}/admin/{area}")
            page_width = await page.evaluate("document.documentElement.scrollWidth")
            assert page_width <= 390, f"{area}: the page itself scrolls sideways ({page_width}px)"
            region = page.locator("div.scroll[role=region]").first
            assert await region.get_attribute("aria-label")
            box = await region.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            wide = await region.evaluate("r => r.scrollWidth > r.clientWidth")
            assert wide, f"{area}: the table fits or is cut off instead of scrolling"
            await region.focus()  # keyboard users scroll it with the arrow keys
            await page.keyboard.press("ArrowRight")
            await region.evaluate(
                "r => new Promise(ok => { const t = Date.now(); (function f() {"
                " if (r.scrollLeft > 0 || Date.now() - t > 3000) ok(); else setTimeout(f, 20); })(); })"
            )  # the page's CSP allows no eval, so no wait_for_function: a polling promise
            assert await region.evaluate("r => r.scrollLeft") > 0
            await accessible(page, f"{area} on a phone")
        await page.screenshot(path=str(ARTIFACTS / "console-audit-phone.png"), full_page=True)

        await page.goto(f"{base}/admin/rules/demo.txt")
        editor = page.get_by_label("Rules (EZproxy stanza syntax)")
        await editor.fill("\n".join(f"# line {n}" for n in range(1, 41)) + "\nReplace x\n")
        gutter = page.locator("#gutter")
        assert "\n41\n" in await gutter.inner_text()  # numbered as typed
        await editor.evaluate("t => { t.scrollTop = t.scrollHeight; }")
        await editor.evaluate(
            "t => new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)))"
        )
        scrolled = await page.evaluate(
            "[document.getElementById('gutter').scrollTop, document.getElementById('text').scrollTop]"
        )
        assert scrolled[1] > 0 and scrolled[0] == scrolled[1]  # the numbers follow the text
        # Line 41 of the gutter sits level with line 41 of the text (same font, same top).
        tops = await page.evaluate("""() => {
            const t = document.getElementById('text'), g = document.getElementById('gutter');
            return [parseFloat(getComputedStyle(t).lineHeight), parseFloat(getComputedStyle(g).lineHeight),
                    parseFloat(getComputedStyle(t).paddingTop), parseFloat(getComputedStyle(g).paddingTop)];
        }""")
        assert tops[0] == tops[1] and tops[2] == tops[3]
        assert await gutter.get_attribute("aria-hidden") == "true"
        await page.get_by_role("button", name="Check").click()
        assert "Line 41:" in await page.locator("ul.findings li.error").inner_text()
        assert "41" in await page.locator("#gutter").inner_text()
        await accessible(page, "editor on a phone")
        await page.screenshot(path=str(ARTIFACTS / "console-editor-phone.png"), full_page=True)
