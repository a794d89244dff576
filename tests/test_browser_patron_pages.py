"""Patron pages in a real browser: the wrong-PIN summary takes the focus and leads to its
field, and every focus outline (patron and console pages) has 3:1 against what it sits on
(WCAG 2.2, 1.4.11)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout

from gateway import config
from tests.admin_support import served_gateway
from tests.browser_support import accessible, chromium, log_in
from tests.patron_support import CARD

WRONG = "The card number or PIN is not right"

# The focused element's outline colour and the first opaque background behind it.
COLOURS = """el => {
  let node = el.parentElement, back = 'rgb(255, 255, 255)';
  while (node) {
    const c = getComputedStyle(node).backgroundColor;
    if (c && c !== 'transparent' && !c.endsWith(', 0)')) { back = c; break; }
    node = node.parentElement;
  }
  const style = getComputedStyle(el);
  return [style.outlineColor, back, style.outlineStyle, style.outlineWidth];
}"""


def luminance(rgb: str) -> float:
    """Relative luminance of a CSS ``rgb(...)`` colour."""
    channels = [int(x) / 255 for x in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_knows_black_on_white() -> None:
    assert round(contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)"), 1) == 21.0
    assert round(contrast("rgb(245, 166, 35)", "rgb(255, 255, 255)"), 2) == 2.03  # the old amber


@pytest.fixture
async def base(make_settings: Callable[..., config.Settings]) -> AsyncIterator[str]:
    async for port, _settings in served_gateway(make_settings):
        yield f"http://login.proxy.localhost:{port}"


async def test_the_wrong_pin_summary_takes_the_focus_once_and_leads_to_the_field(
    base: str,
) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        for lang, message in (("en", WRONG), ("es", "El número de tarjeta o el PIN no son")):
            await page.goto(f"{base}/login?lang={lang}")
            await page.locator("#card").fill(CARD)
            await page.locator("#pin").fill("9051")
            async with page.expect_navigation():  # the answer's page, not the form's own
                await page.locator("button[type=submit]").click()
            # autofocus is applied in a rendering step after the load: wait for it (bounded).
            with contextlib.suppress(PlaywrightTimeout):
                await page.wait_for_function(
                    "document.activeElement && document.activeElement.id === 'form-error'",
                    timeout=5000,
                )
            assert await page.evaluate("document.activeElement.id") == "form-error"
            assert (await page.inner_text("main")).count(message) == 1, lang
            assert await page.get_by_role("alert").count() == 1
            await page.locator("#form-error a[href='#pin']").click()
            assert await page.evaluate("document.activeElement.id") == "pin"
            await accessible(page, f"wrong PIN ({lang})")


async def focus_contrast(page: Any, selector: str) -> float:
    await page.focus(selector)
    outline, back, style, width = await page.eval_on_selector(selector, COLOURS)
    assert style == "solid" and width == "3px", (selector, style, width)
    return contrast(outline, back)


async def test_focus_outlines_have_three_to_one_on_patron_and_console_pages(base: str) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/login")
        ratios = {s: await focus_contrast(page, s) for s in ("#card", "button", "a[href='/help']")}
        await log_in(page, CARD, "9051")
        await page.wait_for_load_state()
        ratios["#form-error"] = await focus_contrast(page, "#form-error")
        ratios["summary link"] = await focus_contrast(page, "#form-error a")
        await page.goto(f"{base}/admin/login")
        ratios["console input"] = await focus_contrast(page, "input:not([type=hidden])")
        ratios["console button"] = await focus_contrast(page, "button")
    assert all(r >= 3 for r in ratios.values()), ratios
