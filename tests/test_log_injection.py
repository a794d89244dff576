"""Request text cannot forge or break a line in the starting-point log or the access log."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.auth.commands import local_directory
from gateway.hostmap import Origin
from gateway.logsafe import printable
from gateway.proxy.access_log import Entry
from tests.patron_support import CARD, PIN, Browser, start
from tests.test_usage import ezpaarse_regex
from tests.vendor_support import API, VENDOR_RULES, Vendor, run_vendor

Make = Callable[..., config.Settings]
FORGED = '2026-01-01T00:00:00Z 0000 "JSTOR" https://www.jstor.org/forged'
EZPAARSE = ezpaarse_regex('%h %l %u %t "%r" %s %b')


async def test_starting_point_url_with_an_encoded_newline_is_one_line_of_the_spu_log(
    aiohttp_client: Callable[..., Any], make_settings: Make
) -> None:
    settings = make_settings()
    browser = Browser(await start(aiohttp_client, settings))
    target = f"https://www.jstor.org/stable/1\n{FORGED}\r\u2028x"
    response = await browser.login(query=f"qurl={quote(target, safe='')}")
    assert response.status == 302
    encoded = "/stable/1%0A" + FORGED + "%0D%E2%80%A8x"  # controls re-encoded, nothing else
    assert response.headers["Location"] == "http://www-jstor-org.proxy.localhost:8080" + encoded
    lines = (settings.state_path / "spu.log").read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(' "JSTOR" https://www.jstor.org' + encoded)


@pytest.fixture
async def vendor(tmp_path: Path) -> AsyncIterator[Vendor]:
    async for running in run_vendor(tmp_path):
        yield running


async def test_proxied_request_with_encoded_newline_and_raw_quote_is_one_access_log_line(
    aiohttp_client: Callable[..., Any], make_settings: Make, vendor: Vendor
) -> None:
    settings = make_settings(upstream={"resolve": vendor.resolve(), "ca_file": str(vendor.ca_file)})
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "vendor.txt").write_text(VENDOR_RULES)
    local_directory(settings).add(CARD, PIN)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    patron = Browser(client)
    assert (await patron.login()).status == 302
    # Raw on the wire (aiohttp's client would encode the quote): a " would end %r early.
    target = b'/json?q=%0a1.2.3.4%20-%20-%20[x]%20"GET%20/%20HTTP/1.1"%20200%201&r="x"%20y'
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: api-vendor-test.proxy.localhost:8080\r\n"
                 b"Cookie: carrel_session=" + patron.cookies["carrel_session"].encode()
                 + b"\r\nConnection: close\r\n\r\n")  # fmt: skip
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    lines = (settings.state_path / "access.log").read_text().splitlines()
    assert len(lines) == 1, lines
    match = EZPAARSE.match(lines[0])
    assert match, lines[0]
    assert match[5] == (f"https://{API}:443/json?q=%0a1.2.3.4%20-%20-%20[x]%20%22GET%20/%20"
                        "HTTP/1.1%22%20200%201&r=%22x%22%20y")  # fmt: skip


def test_access_log_line_escapes_what_would_end_the_line_or_the_field() -> None:
    # The C parser refuses raw controls in a request line; aiohttp's pure-Python one
    # (AIOHTTP_NO_EXTENSIONS, platforms without the extension) lets non-ASCII ones through.
    origin = Origin.of("https", "www.vendor.test", 443)
    target = '/a\u2028b\u0085c\nd"e\x1b[2J'
    entry = Entry("10.0.0.1", "p1", 0.0, "GET", origin, target, "1.1", 200, 5).line()
    assert entry.splitlines() == [entry]
    assert '"GET https://www.vendor.test:443/a\\u2028b\\x85c\\x0ad%22e\\x1b[2J HTTP/1.1" 200 5' in (
        entry
    )
    assert EZPAARSE.match(entry)


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("plain https://x.org/a?b=1 café", "plain https://x.org/a?b=1 café"),
        ("a\nb\rc\td\x00e\x7f", "a\\x0ab\\x0dc\\x09d\\x00e\\x7f"),
        ("nel\x85 ls\u2028 ps\u2029", "nel\\x85 ls\\u2028 ps\\u2029"),
        ("bidi \u202eevil\u2066", "bidi \\u202eevil\\u2066"),
        ("ansi \x1b[31mred", "ansi \\x1b[31mred"),
        ("undecodable \udcff", "undecodable \\udcff"),
    ],
)
def test_printable_escapes_line_ends_controls_and_reordering_but_keeps_text(
    raw: str, logged: str
) -> None:
    assert printable(raw) == logged
    assert printable(raw).encode("utf-8")  # a log file can hold it
    assert re.fullmatch(r"[^\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*", printable(raw))
