"""Header tables, both directions, and the reverse mapping of proxied URLs."""

from __future__ import annotations

import pytest

from gateway.hostmap import Origin
from gateway.rewrite.headers import (
    HeaderContext,
    Unproxy,
    body_changed,
    rewrite_request_headers,
    rewrite_response_headers,
    strip_hop_by_hop,
)
from tests.rewrite_support import INDEX

CTX = HeaderContext(INDEX, Origin.of("https", "www.jstor.org"))
J = "https://www-jstor-org.proxy.lib.org"
J8443 = "https://www-jstor-org---8443.proxy.lib.org"
JHTTP = "https://www-jstor-org---http.proxy.lib.org"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Location", "https://www.jstor.org/stable/1?a=b", J + "/stable/1?a=b"),
        ("Location", "http://www.jstor.org/", "https://www-jstor-org---http.proxy.lib.org/"),
        ("Location", "/relative/path", "/relative/path"),
        ("Location", "//www.jstor.org/x", "//www-jstor-org.proxy.lib.org/x"),
        ("Location", "https://www.jstor.org.evil.com/", "https://www.jstor.org.evil.com/"),
        ("Location", "https://h.example.org/x", "https://h-example-org.proxy.lib.org/x"),
        ("Content-Location", "https://www.jstor.org/a", J + "/a"),
        ("Refresh", "5; url=https://www.jstor.org/next", "5; url=" + J + "/next"),
        ("Refresh", "5;URL='https://www.jstor.org/next'", "5; url=" + J + "/next"),
        ("Refresh", "0, https://www.jstor.org/next", "0; url=" + J + "/next"),
        ("Refresh", "0; url=//www.jstor.org/x", "0; url=//www-jstor-org.proxy.lib.org/x"),
        ("Refresh", "1; url=/next", "1; url=/next"),
        ("Refresh", "1; url=next?a=1", "1; url=next?a=1"),
        ("Refresh", '1;url = "/q" trailing', "1; url=/q"),
        ("Refresh", "5", "5"),
        ("Refresh", "5;", "5"),
        (
            "Link",
            "<https://www.jstor.org/s.css>; rel=preload, </a.js>; rel=preload",
            f"<{J}/s.css>; rel=preload, </a.js>; rel=preload",
        ),
        ("Access-Control-Allow-Origin", "https://www.jstor.org", J),
        ("Access-Control-Allow-Origin", "*", "*"),
        ("Origin-Agent-Cluster", "?1", "?1"),
        ("Permissions-Policy", "camera=()", "camera=()"),
        ("Accept-CH", "Sec-CH-UA-Model", "Sec-CH-UA-Model"),
        ("Content-Security-Policy", "img-src https://www.jstor.org 'self'", f"img-src {J} 'self'"),
        ("Content-Type", "text/html", "text/html"),
    ],
)
def test_response_header_table(name: str, value: str, expected: str) -> None:
    assert rewrite_response_headers([(name, value)], CTX) == [(name, expected)]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("script-src *.jstor.org", f"script-src *.jstor.org {J}"),  # not the :8443 one
        ("script-src *.jstor.org:*", f"script-src *.jstor.org:* {J} {J8443}"),
        (
            "script-src https://*.jstor.org:8443/js/",
            f"script-src https://*.jstor.org:8443/js/ {J8443}/js/",
        ),
        (
            "script-src http://*.jstor.org",
            f"script-src http://*.jstor.org {J} {JHTTP}",
        ),  # and https
        (
            "connect-src wss://*.jstor.org",
            "connect-src wss://*.jstor.org wss://www-jstor-org.proxy.lib.org",
        ),  # the https origins' sockets, by the proxy's wss
        ("connect-src ws://www.jstor.org", "connect-src wss://www-jstor-org---http.proxy.lib.org"),
        ("connect-src wss://evil.example", "connect-src wss://evil.example"),
        (
            "img-src *.example.org 'self'",
            "img-src *.example.org https://h-example-org.proxy.lib.org 'self'",
        ),
        ("img-src *.example.net", "img-src *.example.net"),  # a D line: no proxied name to give
        ("img-src *.www.jstor.org", "img-src *.www.jstor.org"),  # below, not the host itself
        ("img-src *.nowhere.test; script-src 'none'", "img-src *.nowhere.test; script-src 'none'"),
    ],
)
def test_csp_wildcard_allows_the_proxied_hosts_the_rules_name_under_it(
    policy: str, expected: str
) -> None:
    assert rewrite_response_headers([("Content-Security-Policy", policy)], CTX) == [
        ("Content-Security-Policy", expected)
    ]


@pytest.mark.parametrize(
    "name",
    [
        "Set-Cookie",
        "Alt-Svc",
        "Strict-Transport-Security",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Upgrade",
        "Trailer",
        "TE",
    ],
)
def test_response_headers_that_never_reach_the_patron(name: str) -> None:
    assert rewrite_response_headers([(name, "x")], CTX) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Clear-Site-Data", '"cookies"'),
        ("Clear-Site-Data", '"*"'),
        ("Set-Login", "logged-in"),
        ("Supports-Loading-Mode", "credentialed-prerender"),
        ("Origin-Agent-Cluster", "?0"),
        ("Service-Worker-Allowed", "/"),
        ("Reporting-Endpoints", 'default="https://reports.evil.example/"'),
        ("Report-To", '{"group":"a","endpoints":[{"url":"https://reports.evil.example/"}]}'),
        ("NEL", '{"report_to":"a","max_age":86400}'),
        ("Attribution-Reporting-Register-Source", '{"destination":"https://x.example"}'),
        ("Access-Control-Allow-Origin", "null"),
        ("Access-Control-Allow-Origin", "https://evil.example"),
        ("Access-Control-Allow-Origin", "https://login.proxy.lib.org"),
        ("Refresh", "0; url=https://evil.example/login"),
        ("Refresh", "0;https://evil.example/"),
        ("Refresh", "0; url=//evil.example/"),
        ("Refresh", "0; url=/\\evil.example/"),
        ("Refresh", "0; url=\\\\evil.example/"),
        ("Refresh", "0; url=/\t/evil.example/"),
        ("Refresh", "0; ur https://evil.example/"),  # the steps read the URL " https://evil..."
        ("Refresh", "0; u https://evil.example/"),
        ("Refresh", "0; url='\"//evil.example/'"),  # written back, the second quote would go
        ("Refresh", "0; url=javascript:alert(1)"),
        ("Refresh", "0; url=https:/\\evil.example/"),
        ("Refresh", "soon; url=/x"),
    ],
)
def test_vendor_headers_that_act_beyond_its_host_are_dropped(name: str, value: str) -> None:
    assert rewrite_response_headers([(name, value)], CTX) == []


def test_connection_tokens_are_stripped_too() -> None:
    headers = [("Connection", "close, X-Secret"), ("X-Secret", "1"), ("X-Kept", "2")]
    assert strip_hop_by_hop(headers) == [("X-Kept", "2")]


def test_blocked_csp_is_dropped() -> None:
    ctx = HeaderContext(INDEX, Origin.of("https", "www.jstor.org"), drop_csp=True)
    assert rewrite_response_headers([("Content-Security-Policy", "default-src 'self'")], ctx) == []


def test_rewritten_body_loses_length_and_gets_the_new_encoding() -> None:
    headers = [
        ("Content-Length", "10"),
        ("Content-Encoding", "br"),
        ("ETag", '"x"'),
        ("Vary", "Accept"),
    ]
    assert body_changed(headers, "gzip") == [("Vary", "Accept"), ("Content-Encoding", "gzip")]


UNPROXY = Unproxy(INDEX)


def test_request_headers_map_back_and_drop_the_gateways_own() -> None:
    headers = [
        ("Host", "www-jstor-org.proxy.lib.org"),
        ("Referer", J + "/stable/1?x=1"),
        ("Origin", J),
        ("Cookie", "carrel_session=secret"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("Forwarded", "for=1.2.3.4"),
        ("Connection", "keep-alive"),
        ("Accept", "text/html"),
    ]
    assert rewrite_request_headers(headers, UNPROXY) == [
        ("Referer", "https://www.jstor.org/stable/1?x=1"),
        ("Origin", "https://www.jstor.org"),
        ("Accept", "text/html"),
    ]


def test_referer_from_the_gateways_own_pages_is_dropped() -> None:
    headers = [("Referer", "https://login.proxy.lib.org/menu"), ("Origin", "https://evil.example")]
    assert rewrite_request_headers(headers, UNPROXY) == []


def test_query_and_form_values_map_back() -> None:
    text = (
        "return=https%3A%2F%2Fwww-jstor-org.proxy.lib.org%2Fstable%2F1&next="
        "https://www-jstor-org---8443.proxy.lib.org/x&other=https://evil-org.proxy.lib.org/"
    )
    assert UNPROXY.text(text) == (
        "return=https%3A%2F%2Fwww.jstor.org%2Fstable%2F1&next="
        "https://www.jstor.org:8443/x&other=https://evil-org.proxy.lib.org/"
    )
