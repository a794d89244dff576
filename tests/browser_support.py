"""A real browser for page tests: Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def chromium_path() -> str:
    """Debian's chromium; skips (or fails in CI, where CARREL_REQUIRE_BROWSER is set) without it."""
    found = os.environ.get("CARREL_CHROMIUM") or shutil.which("chromium") or ""
    if not found:
        message = "browser tests need Debian's chromium: apt-get install chromium"
        if os.environ.get("CARREL_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@asynccontextmanager
async def chromium(*flags: str) -> AsyncIterator[Any]:
    """Debian's chromium, launched by Playwright with CHROMIUM_FLAGS (and ``flags``), closed
    afterwards."""
    executable = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, args=[*CHROMIUM_FLAGS, *flags]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Any, card: str, pin: str) -> None:
    """Fill in the gateway's login form that ``page`` shows and send it, as a patron would."""
    await page.get_by_label("Library card number").fill(card)
    await page.get_by_label("PIN", exact=True).fill(pin)
    await page.get_by_role("button", name="Log in").click()


BLOCKING_IMPACTS = ("serious", "critical")


async def accessible(page: Any, name: str) -> None:
    """Fail on serious or critical axe-core violations on the page as it stands."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]
    report = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in bad]
    assert not bad, f"{name}: {report}"
