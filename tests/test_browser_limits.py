"""A patron paused by a usage limit, in a real browser: the page says what happened, until
when and how to get help, in English and Spanish, and passes axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway import config
from tests.admin_support import DEMO_HOST, served_gateway
from tests.browser_support import accessible, chromium, log_in
from tests.patron_support import CARD, PIN


@pytest.fixture
async def gateway(make_settings: Callable[..., config.Settings]) -> AsyncIterator[Any]:
    limits = {"limits": ["-enforce -interval=10 -expires=30 -transfers=2 -per=session quick"]}
    async for served in served_gateway(make_settings, usage=limits):
        yield served


async def test_the_suspension_page_explains_and_is_accessible(gateway: Any) -> None:
    port, _ = gateway
    base = f"http://login.proxy.localhost:{port}"
    vendor = f"http://{DEMO_HOST}:{port}"
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        await page.goto(f"{base}/login?url=http://www.demo.test/one")
        await log_in(page, CARD, PIN)
        await page.wait_for_url(f"{vendor}/one")
        statuses = []
        for n in range(2, 8):  # the browser also fetches a favicon: it counts as a transfer too
            answer = await page.goto(f"{vendor}/page{n}")
            assert answer is not None
            statuses.append(answer.status)
            if answer.status == 429:
                break
        assert statuses[-1] == 429 and set(statuses[:-1]) <= {200}, statuses
        assert await page.get_by_role("heading", level=1).inner_text() == "Your access is paused"
        assert "You can go on after" in await page.content()
        await accessible(page, "suspended")
        await page.locator("#main").get_by_role("link", name="Help").click()
        await page.wait_for_url(f"{base}/help")
        spanish = await page.goto(f"{vendor}/four?lang=es")
        assert spanish is not None and spanish.status == 429
        assert await page.get_by_role("heading", level=1).inner_text() == "Su acceso está en pausa"
        await accessible(page, "suspended, Spanish")
