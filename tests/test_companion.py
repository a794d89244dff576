"""The companion script: which responses get it, how the vendor's CSP lets it run, and how the
login host serves it. Pure parts as tables; the rest through a real gateway and vendor."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.companion.bundle import PARTS, join, shipped
from gateway.companion.inject import HeadInsert, Prepend, Role, Scripts, allow_companion, role_of
from gateway.companion.scope import scope_of
from gateway.hostmap import HostnameEdit
from gateway.rewrite.target import ProxyTarget
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet
from tests.patron_support import Browser
from tests.vendor_support import WWW, Vendor, gateway_settings

TAGS = b"<script src=s></script>"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (b"<html><head><title>t</title>", b"<html><head>" + TAGS + b"<title>t</title>"),
        (b'<!DOCTYPE html>\n<HTML lang="en"><HEAD class="x">', b'<!DOCTYPE html>\n<HTML lang="en"><HEAD class="x">' + TAGS),
        (b"<!-- <head> in a comment --><head>", b"<!-- <head> in a comment --><head>" + TAGS),
        (b"<!doctype html><title>no head</title>", b"<!doctype html>" + TAGS + b"<title>no head</title>"),
        (b"<?xml version='1.0'?><html><body>x", b"<?xml version='1.0'?><html>" + TAGS + b"<body>x"),
        (b"<header>not a head</header>", TAGS + b"<header>not a head</header>"),
        (b"just text", b"just text" + TAGS),
        (b"", TAGS),
    ],
)  # fmt: skip
def test_the_tags_go_right_after_head_or_before_the_first_element(
    page: bytes, expected: bytes
) -> None:
    stage = HeadInsert(TAGS)
    assert stage.feed(page) + stage.flush() == expected


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_streaming_the_page_in_pieces_gives_the_same_page(size: int) -> None:
    page = b'<!DOCTYPE html><!-- c --><html lang="en"><head data-x="1"><title>t</title></head>'
    whole = HeadInsert(TAGS)
    expected = whole.feed(page) + whole.flush()
    stage = HeadInsert(TAGS)
    pieces = [stage.feed(page[i : i + size]) for i in range(0, len(page), size)]
    assert b"".join(pieces) + stage.flush() == expected


def test_a_page_without_any_tag_for_long_gets_the_tags_where_it_stands() -> None:
    stage = HeadInsert(TAGS)
    out = stage.feed(b"<!--" + b"x" * 70000)  # an unended comment cannot hold the page back
    assert out.startswith(TAGS + b"<!--xx") and stage.feed(b"-->") == b"-->"


def test_a_worker_gets_the_prelude_before_its_first_byte() -> None:
    stage = Prepend(b"P;")
    assert stage.feed(b"a") + stage.feed(b"b") + stage.flush() == b"P;ab"
    empty = Prepend(b"P;")
    assert empty.flush() == b"P;"


@pytest.mark.parametrize(
    ("dest", "mode", "role"),
    [
        ("document", "navigate", Role.PAGE),
        ("iframe", "navigate", Role.PAGE),
        ("frame", "navigate", Role.PAGE),
        ("worker", "same-origin", Role.CLASSIC_WORKER),
        ("sharedworker", "same-origin", Role.CLASSIC_WORKER),
        ("worker", "cors", Role.MODULE_WORKER),
        ("empty", "cors", None),  # fetch(): an HTML fragment is data
        ("script", "no-cors", None),
        ("serviceworker", "same-origin", None),
        ("", "", None),  # no Sec-Fetch-*: not a browser that runs scripts
    ],
)
def test_which_requests_get_the_companion(dest: str, mode: str, role: Role | None) -> None:
    assert role_of(dest, mode) is role


LOGIN = "https://login.p.test"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("script-src 'self' 'unsafe-inline'", f"script-src 'self' 'unsafe-inline' {LOGIN}"),
        ("script-src 'nonce-v' 'strict-dynamic'", "script-src 'nonce-v' 'strict-dynamic' 'nonce-N'"),
        ("script-src 'sha256-abc='", "script-src 'sha256-abc=' 'nonce-N'"),
        ("default-src 'self'; img-src *", f"default-src 'self'; img-src *; script-src 'self' {LOGIN}"),
        ("default-src 'self' 'nonce-v'", "default-src 'self' 'nonce-v'; script-src 'self' 'nonce-v' 'nonce-N'"),
        ("script-src-elem 'self'; script-src 'self'", f"script-src-elem 'self' {LOGIN}; script-src 'self' {LOGIN}"),
        ("script-src 'none'", "script-src 'none'"),
        ("img-src 'self'", "img-src 'self'"),
        ("require-trusted-types-for 'script'; trusted-types app", "require-trusted-types-for 'script'; trusted-types app carrel"),
        ("trusted-types *", "trusted-types *"),
    ],
)  # fmt: skip
def test_the_vendors_policy_lets_the_companion_run_and_changes_nothing_else(
    policy: str, expected: str
) -> None:
    assert allow_companion(policy, "N", LOGIN) == expected


def test_worker_preludes_import_the_scope_then_the_bundle() -> None:
    scripts = Scripts("https://l/s.js", "https://l/b.js", "https://l")
    assert scripts.worker_prelude(Role.CLASSIC_WORKER) == (
        b'try { importScripts("https://l/s.js", "https://l/b.js"); } catch (e) {}\n'
    )
    assert scripts.worker_prelude(Role.MODULE_WORKER) == (
        b'import "https://l/s.js";\nimport "https://l/b.js";\n'
    )


RULES = """Title J
URL https://www.jstor.org/
DJ jstor.org
NeverProxy *.cdn.jstor.org
ProxyHostnameEdit www.jstor.org$ wj
H http://old.example.org:8080
"""


def test_the_scope_names_what_the_rules_cover_and_its_version_follows_its_text() -> None:
    ruleset = RuleSet.from_results([parse(RULES, "j.txt")])
    target = ProxyTarget("https", ":8443", "p.test")
    scope = scope_of(ruleset, target)
    assert scope.script.startswith(b"globalThis.__carrelScope = {")
    # www.jstor.org is left out: DJ jstor.org covers it
    assert '"hosts":["http://old.example.org:8080"]' in scope.text
    assert '"domains":["jstor.org"]' in scope.text and '"never":["*.cdn.jstor.org"]' in scope.text
    assert '"edits":[["www.jstor.org$","wj"]]' in scope.text
    assert '"login":"login.p.test"' in scope.text and '"port":":8443"' in scope.text
    assert scope_of(ruleset, target).version == scope.version
    other = RuleSet.from_results([parse(RULES + "HJ api.example.net\n", "j.txt")])
    assert scope_of(other, target).version != scope.version
    assert RuleSet(hostname_edits=[HostnameEdit("a", "b")]).hostname_edits


def test_the_bundle_is_the_parts_in_order_inside_one_function() -> None:
    bundle = join({"a.js": "const a = 1;", "b.js": "if (!a) return;"})
    text = bundle.body.decode()
    assert text.index("const a = 1;") < text.index("if (!a) return;")
    assert text.startswith("(function (module) {") and text.rstrip().endswith("})();")
    assert gzip.decompress(bundle.gzipped) == bundle.body
    assert join({"a.js": "const a = 2;"}).digest != bundle.digest
    assert PARTS[0] == "map.js"  # the mapping first: every other part uses it


# -- through the gateway ------------------------------------------------------------------------

P = ".proxy.localhost:8080"
PAGE_HOST = "www-vendor-test" + P
DOCUMENT = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
SCRIPT_SRC = re.compile(r'<script src="([^"]+)" nonce="([^"]+)"></script>')


async def _patron(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
    enabled: bool = True,
) -> Browser:
    settings = gateway_settings(make_settings, vendor, companion={"enabled": enabled})
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    browser = Browser(client)
    assert (await browser.login()).status == 302
    return browser


async def _get(browser: Browser, path: str, host: str = PAGE_HOST, **headers: str) -> Any:
    return await browser.client.get(
        path, headers=browser.headers(host, **headers), allow_redirects=False
    )


@pytest.fixture
async def patron(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> Browser:
    return await _patron(aiohttp_client, make_settings, vendor)


async def test_a_page_gets_the_scope_and_the_bundle_first_in_its_head(patron: Browser) -> None:
    response = await _get(patron, "/policy", **DOCUMENT)
    text = await response.text()
    tags = SCRIPT_SRC.findall(text)
    assert [url.rsplit("/", 1)[1].startswith("scope-") for url, _ in tags] == [True, False]
    assert text.index("<head>") < text.index("<script") < text.index("<link")
    base = "http://login.proxy.localhost:8080/__carrel/companion/"
    assert tags[1][0] == f"{base}{shipped().digest}.js" and tags[0][0].startswith(base)
    assert tags[0][1] == tags[1][1]  # one nonce per page


async def test_the_nonce_goes_into_a_nonce_policy_and_the_host_into_a_host_policy(
    patron: Browser,
) -> None:
    strict = await _get(patron, "/policy?csp=script-src 'nonce-abc' 'strict-dynamic'", **DOCUMENT)
    nonce = SCRIPT_SRC.findall(await strict.text())[0][1]
    policy = strict.headers["Content-Security-Policy"]
    assert policy == f"script-src 'nonce-abc' 'strict-dynamic' 'nonce-{nonce}'"
    hosts = await _get(patron, "/policy?csp=script-src 'self' 'unsafe-inline'", **DOCUMENT)
    assert hosts.headers["Content-Security-Policy"] == (
        "script-src 'self' 'unsafe-inline' http://login.proxy.localhost:8080"
    )
    again = await _get(patron, "/policy?csp=script-src 'nonce-abc' 'strict-dynamic'", **DOCUMENT)
    assert SCRIPT_SRC.findall(await again.text())[0][1] != nonce  # fresh for every response


async def test_fragments_and_requests_without_fetch_metadata_are_left_alone(
    patron: Browser,
) -> None:
    fetched = await _get(patron, "/policy", **{"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"})
    assert "<script" not in await fetched.text()
    plain = await _get(patron, "/policy")
    assert "<script" not in await plain.text()


async def test_workers_import_the_companion_first(patron: Browser) -> None:
    classic = await _get(patron, "/worker.js", **{"Sec-Fetch-Dest": "worker",
                                                  "Sec-Fetch-Mode": "same-origin"})  # fmt: skip
    text = await classic.text()
    assert text.startswith('try { importScripts("http://login.proxy.localhost:8080/__carrel/')
    assert text.endswith("postMessage('ready');\n")
    module = await _get(patron, "/worker.js", **{"Sec-Fetch-Dest": "worker",
                                                 "Sec-Fetch-Mode": "cors"})  # fmt: skip
    assert (await module.text()).startswith('import "http://login.proxy.localhost:8080/')


async def test_switched_off_nothing_is_inserted(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> None:
    browser = await _patron(aiohttp_client, make_settings, vendor, enabled=False)
    page = await _get(browser, "/policy?csp=script-src 'self'", **DOCUMENT)
    assert "<script" not in await page.text()
    assert page.headers["Content-Security-Policy"] == "script-src 'self'"


async def test_the_login_host_serves_both_files_cached_for_a_year(patron: Browser) -> None:
    page = await _get(patron, "/policy", **DOCUMENT)
    (scope_url, _), (bundle_url, _) = SCRIPT_SRC.findall(await page.text())
    for url in (scope_url, bundle_url):
        path = url.removeprefix("http://login.proxy.localhost:8080")
        response = await patron.get(path)
        assert response.status == 200, path
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.content_type == "text/javascript"
    bundle = await patron.get(bundle_url.removeprefix("http://login.proxy.localhost:8080"))
    assert bundle.headers["Content-Encoding"] == "gzip"  # aiohttp's client asked for it
    assert await bundle.read() == shipped().body
    scope = await patron.get(scope_url.removeprefix("http://login.proxy.localhost:8080"))
    assert scope.headers["Content-Encoding"] == "gzip"
    assert (await scope.text()).startswith("globalThis.__carrelScope = {")
    assert f'"https://{WWW}"' in await scope.text()


async def test_unknown_files_are_404_and_an_unknown_scope_is_todays_uncached(
    patron: Browser,
) -> None:
    assert (await patron.get("/__carrel/companion/0000.js")).status == 404
    stale = await patron.get("/__carrel/companion/scope-0000.js")
    assert stale.status == 200 and stale.headers["Cache-Control"] == "no-store"


def test_comment_lines_stay_out_of_the_bundle_and_code_stays_in() -> None:
    part = (
        "// a comment line\n/** a doc\n * comment */\nconst url = 'https://x.test/a'; // kept\n"
        "  /** indented */\n  const b = `//not a comment`;\n"
    )
    text = join({"a.js": part}).body.decode()
    assert "a comment line" not in text and "a doc" not in text and "indented" not in text
    assert "const url = 'https://x.test/a'; // kept\n" in text
    assert "  const b = `//not a comment`;\n" in text
