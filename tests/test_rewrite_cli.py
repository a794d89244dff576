"""``gateway rewrite`` as librarians use it: same output whatever the chunk size."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.rewrite_support import RULES_TEXT
from tests.support import run_gateway


def rewrite(
    tmp_path: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "jstor.txt").write_text(RULES_TEXT)
    env = {
        "GATEWAY_RULES__DIR": str(rules),
        "GATEWAY_SERVER__PROXY_DOMAIN": "proxy.lib.org",
        "GATEWAY_SERVER__PUBLIC_SCHEME": "https",
        "GATEWAY_SERVER__PUBLIC_PORT": "443",
    }
    return run_gateway("rewrite", *args, env=env, stdin=stdin)


def test_rewrite_prints_what_a_patron_gets_for_any_chunk_size(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(
        b'<html><a href="https://www.jstor.org/stable/1">x</a> https://h.example.org/t\n'
    )
    whole = rewrite(tmp_path, "--url", "https://www.jstor.org/", str(page))
    assert whole.returncode == 0, whole.stderr
    assert (
        whole.stdout
        == b'<html><a href="https://www-jstor-org.proxy.lib.org/stable/1">x</a> https://h.example.org/t\n'
    )
    for size in ("1", "7"):
        assert (
            rewrite(
                tmp_path, "--url", "https://www.jstor.org/", "--chunk-size", size, str(page)
            ).stdout
            == whole.stdout
        )


def test_rewrite_reads_stdin_with_a_given_type(tmp_path: Path) -> None:
    result = rewrite(
        tmp_path,
        "--url",
        "https://www.jstor.org/api",
        "--content-type",
        "application/json",
        "-",
        stdin=b'{"u":"https:\\/\\/www.jstor.org\\/x"}',
    )
    assert result.stdout == b'{"u":"https:\\/\\/www-jstor-org.proxy.lib.org\\/x"}'


def test_rewrite_refuses_a_url_that_is_not_http(tmp_path: Path) -> None:
    result = rewrite(tmp_path, "--url", "not a url", "-", stdin=b"")
    assert result.returncode == 2 and b"not an absolute http(s) URL" in result.stderr
