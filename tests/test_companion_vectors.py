"""The companion's JavaScript mapping agrees with gateway/hostmap.py: node's built-in test
runner checks tests/js/*.test.js against vectors this side writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.companion_vectors import vectors, write

JS_TESTS = Path(__file__).resolve().parent / "js"


def node() -> str:
    """Debian's node; skips without it (fails in CI, where CARREL_REQUIRE_NODE is set)."""
    found = shutil.which("node")
    if not found:
        message = "the companion's tests need node: apt-get install nodejs"
        if os.environ.get("CARREL_REQUIRE_NODE"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_vectors_cover_both_answers() -> None:
    cases = vectors()
    urls = [expected for case in cases for _, expected in case["urls"]]  # type: ignore[attr-defined]
    assert any(u is None for u in urls) and sum(u is not None for u in urls) > 50


def test_node_runs_the_javascript_side_against_the_vectors(tmp_path: Path) -> None:
    path = write(tmp_path / "vectors.json")
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.js"))
    done = subprocess.run(
        [node(), "--test", *files],
        env={**os.environ, "CARREL_VECTORS": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
