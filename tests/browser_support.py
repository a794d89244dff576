"""A real browser for page tests: Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
