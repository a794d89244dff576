"""Body rewriting, as input -> output tables: every URL form, H vs HJ, hosts left alone."""

from __future__ import annotations

import pytest

from gateway.rewrite.body import Mode, Passthrough, choose_mode
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.model import MimeFilter, Source
from tests.rewrite_support import RULES, run

J = b"https://www-jstor-org.proxy.lib.org"
H = b"https://h-example-org.proxy.lib.org"

HTML_CASES = [
    # HJ hosts: everywhere they look like a URL
    (b"see https://www.jstor.org/stable/1 now", b"see " + J + b"/stable/1 now"),
    (b"http://www.jstor.org/a", b"https://www-jstor-org---http.proxy.lib.org/a"),
    (b"https://www.jstor.org:8443/a", b"https://www-jstor-org---8443.proxy.lib.org/a"),
    (b'<a href="//www.jstor.org/x">', b'<a href="//www-jstor-org.proxy.lib.org/x">'),
    (b"HTTPS://WWW.JSTOR.ORG/Stable", J + b"/Stable"),
    (b"https://ocr.jstor.org/p", b"https://ocr-jstor-org.proxy.lib.org/p"),
    (b"https:\\/\\/www.jstor.org\\/x", J.replace(b"//", b"\\/\\/") + b"\\/x"),
    (b"https%3A%2F%2Fwww.jstor.org%2Fx", b"https%3A%2F%2Fwww-jstor-org.proxy.lib.org%2Fx"),
    (b"https%3a%2f%2fwww.jstor.org", b"https%3a%2f%2fwww-jstor-org.proxy.lib.org"),
    (
        b"https&#x3a;&#x2f;&#x2f;www.jstor.org&#x2f;",
        b"https&#x3a;&#x2f;&#x2f;www-jstor-org.proxy.lib.org&#x2f;",
    ),
    (b"https&colon;&sol;&sol;www.jstor.org", b"https&colon;&sol;&sol;www-jstor-org.proxy.lib.org"),
    (b"https&#58;&#47;&#47;www.jstor.org", b"https&#58;&#47;&#47;www-jstor-org.proxy.lib.org"),
    (b"https:\\u002f\\u002fwww.jstor.org", b"https:\\u002f\\u002fwww-jstor-org.proxy.lib.org"),
    (b"<script>var u='https://www.jstor.org/x'</script>", b"<script>var u='" + J + b"/x'</script>"),
    (b"<b onclick=\"go('https://www.jstor.org/x')\">", b"<b onclick=\"go('" + J + b"/x')\">"),
    # H hosts: URL-bearing attributes, CSS url()/@import and meta refresh only
    (b'<a href="https://h.example.org/x">', b'<a href="' + H + b'/x">'),
    (b"<a href=https://h.example.org/x>", b"<a href=" + H + b"/x>"),
    (b'<base href="https://h.example.org/">', b'<base href="' + H + b'/">'),
    (b'<form action="https://h.example.org/s">', b'<form action="' + H + b'/s">'),
    (
        b'<img srcset="https://h.example.org/1.jpg 1x, https://h.example.org/2.jpg 2x">',
        b'<img srcset="' + H + b"/1.jpg 1x, " + H + b'/2.jpg 2x">',
    ),
    (
        b'<link rel=preload imagesrcset="https://h.example.org/1.jpg 1x, https://h.example.org/2.jpg 2x">',
        b'<link rel=preload imagesrcset="' + H + b"/1.jpg 1x, " + H + b'/2.jpg 2x">',
    ),
    (
        b'<p style="background:url(https://h.example.org/b.png)">',
        b'<p style="background:url(' + H + b'/b.png)">',
    ),
    (
        b"<style>@import 'https://h.example.org/a.css';</style>",
        b"<style>@import '" + H + b"/a.css';</style>",
    ),
    (
        b'<meta http-equiv="refresh" content="0; url=https://h.example.org/next">',
        b'<meta http-equiv="refresh" content="0; url=' + H + b'/next">',
    ),
    (b'<a href="https://a.example.net/">', b'<a href="https://a-example-net.proxy.lib.org/">'),
    (b"text https://h.example.org/x", b"text https://h.example.org/x"),
    (
        b"<script>u='https://h.example.org/x'</script>",
        b"<script>u='https://h.example.org/x'</script>",
    ),
    (
        b"<b onclick=\"go('https://h.example.org/x')\">",
        b"<b onclick=\"go('https://h.example.org/x')\">",
    ),
    (b"see https://a.example.net/", b"see https://a.example.net/"),
    # never rewritten: look-alikes, NeverProxy, hosts outside the rules, other schemes
    (b"https://www.jstor.org.evil.com/", b"https://www.jstor.org.evil.com/"),
    (b"https://notjstor.org/", b"https://notjstor.org/"),
    (b"https://jstor.org.evil.com/", b"https://jstor.org.evil.com/"),
    (b"https://static.jstor.org/app.js", b"https://static.jstor.org/app.js"),
    (b"https://www.google.com/", b"https://www.google.com/"),
    (b"ftp://www.jstor.org/", b"ftp://www.jstor.org/"),
    (b"https://www.jstor.org:9999/", b"https://www.jstor.org:9999/"),
    (b"a//www.jstor.org", b"a//www.jstor.org"),
    (b"www.jstor.org", b"www.jstor.org"),
    # integrity on rewritten targets goes; elsewhere it stays
    (
        b'<script src="https://www.jstor.org/a.js" integrity="sha384-x" crossorigin></script>',
        b'<script src="' + J + b'/a.js" crossorigin="use-credentials"></script>',
    ),
    (
        b'<link integrity="sha384-x" rel="stylesheet" href="https://h.example.org/a.css">',
        b'<link rel="stylesheet" href="' + H + b'/a.css">',
    ),
    (
        b'<script src="https://cdn.other.org/a.js" integrity="sha384-x"></script>',
        b'<script src="https://cdn.other.org/a.js" integrity="sha384-x"></script>',
    ),
    # CSP in <meta> is handled like the header
    (
        b'<meta http-equiv="Content-Security-Policy" content="script-src \'self\' https://www.jstor.org https://cdn.other.org">',
        b'<meta http-equiv="Content-Security-Policy" content="script-src \'self\' '
        + J
        + b' https://cdn.other.org">',
    ),
]


@pytest.mark.parametrize(("source", "expected"), HTML_CASES)
def test_html(source: bytes, expected: bytes) -> None:
    assert run(source) == expected
    assert run(source, sizes=[1]) == expected


@pytest.mark.parametrize(
    ("content_type", "source", "expected"),
    [
        (
            "text/css",
            b"a{background:url(https://h.example.org/x.png)}",
            b"a{background:url(" + H + b"/x.png)}",
        ),
        ("text/css", b'@import "https://h.example.org/a.css";', b'@import "' + H + b'/a.css";'),
        ("text/css", b"/* https://h.example.org/ */", b"/* https://h.example.org/ */"),
        (
            "application/json",
            b'{"u":"https:\\/\\/www.jstor.org\\/x"}',
            b'{"u":"' + J.replace(b"/", b"\\/") + b'\\/x"}',
        ),
        ("application/json", b'{"u":"https://h.example.org/"}', b'{"u":"https://h.example.org/"}'),
        (
            "text/javascript",
            b"fetch('//www.jstor.org/api')",
            b"fetch('//www-jstor-org.proxy.lib.org/api')",
        ),
        (
            "application/rss+xml",
            b"<link>https://h.example.org/i</link>",
            b"<link>" + H + b"/i</link>",
        ),
        (
            "image/svg+xml",
            b'<image xlink:href="https://h.example.org/i.png"/>',
            b'<image xlink:href="' + H + b'/i.png"/>',
        ),
        ("application/vnd.api+json", b'"https://www.jstor.org/"', b'"' + J + b'/"'),
    ],
)
def test_other_text_types(content_type: str, source: bytes, expected: bytes) -> None:
    assert run(source, content_type=content_type) == expected
    assert run(source, sizes=[1, 2, 3], content_type=content_type) == expected


def test_binary_types_pass_through_untouched() -> None:
    data = b"%PDF-1.4 https://www.jstor.org/ \x00\xff"
    assert run(data, content_type="application/pdf") == data
    assert run(data, content_type="image/png", sizes=[3]) == data


def test_port_of_the_gateway_is_added_in_the_form_of_the_url() -> None:
    index = HostIndex(RULES, ProxyTarget("http", ":8080", "proxy.localhost"))
    out = run(b"https%3A%2F%2Fwww.jstor.org%2F https://www.jstor.org/", index=index)
    assert out == (
        b"http%3A%2F%2Fwww-jstor-org.proxy.localhost%3A8080%2F "
        b"http://www-jstor-org.proxy.localhost:8080/"
    )


def test_find_replace_tokens_before_url_rewriting() -> None:
    source = (
        b'window.__NAME__ = "jstor"; <input name="back" value="https://www.jstor.org/x"> '
        b"https://www.jstor.org/y"
    )
    out = run(source, find_replace=True)
    assert out == (
        b'window.__NAME__ = "proxy.lib.org .proxy.lib.org login.proxy.lib.org '
        b'www-jstor-org.proxy.lib.org www-jstor-org---http.proxy.lib.org"; '
        b'<input name="back" value="https://www.jstor.org/x"> ' + J + b"/y"
    )
    assert run(source, sizes=[1], find_replace=True) == out


def test_mime_filter_decides_the_mode() -> None:
    rule = MimeFilter("application/json", ".*", "javascript", Source("r.txt", 1))
    assert (
        choose_mode("application/json; charset=utf-8", "https://x.org/", [rule]) is Mode.JAVASCRIPT
    )
    none = MimeFilter("text/html", "/download", "none", Source("r.txt", 2))
    assert choose_mode("text/html", "https://x.org/download/1", [none]) is Mode.PASS
    assert choose_mode("text/html", "https://x.org/page", [none]) is Mode.HTML
    assert choose_mode("application/octet-stream") is Mode.PASS


def test_bytes_outside_urls_are_never_reencoded() -> None:
    latin1 = "café <a href='https://www.jstor.org/é'>".encode("latin-1")
    assert run(latin1) == "café <a href='".encode("latin-1") + J + "/é'>".encode("latin-1")
    broken = b"\xff\xfe<p>\x80 https://www.jstor.org/ \xc3"
    assert run(broken) == b"\xff\xfe<p>\x80 " + J + b"/ \xc3"


def test_passthrough_is_identity() -> None:
    p = Passthrough()
    assert p.feed(b"abc") == b"abc" and p.flush() == b""


def test_a_vendor_port_beginning_with_3_is_read_whole() -> None:
    """``:35581`` and ``%3A3000`` are ports 35581 and 3000 (the colon's ``%3A`` spelling is
    no reason to drop the port's own leading 3s)."""
    from gateway.rules.parser import parse
    from gateway.rules.ruleset import RuleSet

    rules = RuleSet.from_results(
        [parse("Title X\nURL http://x.example.org:35581/\nHJ http://x.example.org:3000\n"
               "HJ http://x.example.org:35581\n", "x.txt")]
    )  # fmt: skip
    index = HostIndex(rules, ProxyTarget("https", "", "proxy.lib.org"))
    source = b"http://x.example.org:35581/a http%3A%2F%2Fx.example.org%3A3000%2Fb"
    assert run(source, index=index) == (
        b"https://x-example-org---http-35581.proxy.lib.org/a "
        b"https%3A%2F%2Fx-example-org---http-3000.proxy.lib.org%2Fb"
    )
