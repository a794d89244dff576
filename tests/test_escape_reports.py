"""Reading CSP reports and companion beacons, the Report-Only policy, and the HJ line an
escape needs in its stanza: pure tables, no sockets."""

from __future__ import annotations

import json

import pytest

from gateway.escapes.lines import host_line, with_line
from gateway.escapes.reports import (
    BadReport,
    Escaped,
    beacon,
    csp_reports,
    escaped_host,
    escaped_url,
    policy,
    reporting_endpoints,
    worth_recording,
)
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet

DOMAIN = "proxy.library.org"


def legacy(blocked: object) -> bytes:
    """An ``application/csp-report`` body, as report-uri sends it."""
    return json.dumps({"csp-report": {
        "document-uri": "https://www-jstor-org.proxy.library.org/stable/1?card=123",
        "blocked-uri": blocked, "effective-directive": "img-src", "disposition": "report",
    }}).encode()  # fmt: skip


def batch(*blocked: str, kind: str = "csp-violation") -> bytes:
    """An ``application/reports+json`` body, as the Reporting API sends it."""
    return json.dumps([
        {"type": kind, "age": 10, "url": "https://www-jstor-org.proxy.library.org/x",
         "body": {"blockedURL": url, "documentURL": "https://www-jstor-org.proxy.library.org/x",
                  "effectiveDirective": "script-src-elem", "disposition": "report"}}
        for url in blocked
    ]).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://cdn.jstor-assets.net/a/b.png?user=42#x", Escaped("cdn.jstor-assets.net", "https")),
        ("http://CDN.Example.COM./x", Escaped("cdn.example.com", "http")),
        ("https://cdn.example.com:443/x", Escaped("cdn.example.com", "https")),
        ("https://cdn.example.com:8443/x", Escaped("cdn.example.com:8443", "https")),
        ("wss://live.example.com/socket", Escaped("live.example.com", "https")),
        ("ws://live.example.com:80/socket", Escaped("live.example.com", "http")),
        ("ws://live.example.com:8080/", Escaped("live.example.com:8080", "http")),
        ("inline", None), ("eval", None), ("data", None), ("blob", None), ("", None),
        ("/relative/path", None), ("ftp://files.example.com/", None),
        ("https://no_such host.example/", None), ("https://localhost/", None),
        ("https://cdn.example.com:99999/", None), (42, None), (None, None),
    ],
)  # fmt: skip
def test_a_blocked_url_becomes_its_host_and_scheme_only(url: object, expected: object) -> None:
    assert escaped_url(url) == expected  # type: ignore[arg-type]


def test_both_report_formats_give_the_host_and_never_the_path_or_query() -> None:
    assert csp_reports(legacy("https://cdn.jstor-assets.net/img/1.png?session=abc")) == [
        Escaped("cdn.jstor-assets.net", "https")
    ]
    found = csp_reports(batch("https://a.example.com/x?q=1", "http://b.example.com/", "inline"))
    assert found == [Escaped("a.example.com", "https"), Escaped("b.example.com", "http")]
    assert "session" not in repr(found) and "/x" not in repr(found)


def test_other_report_types_and_repeats_count_once_or_not_at_all() -> None:
    assert csp_reports(batch("https://a.example.com/", kind="deprecation")) == []
    assert csp_reports(batch("https://a.example.com/1", "https://a.example.com/2")) == [
        Escaped("a.example.com", "https")
    ]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'{"csp-report": 1}', b'{"x": 1}', b"null",
     b'"string"', b"[" * 5000 + b"]" * 5000],
)  # fmt: skip
def test_junk_is_a_bad_report(body: bytes) -> None:
    with pytest.raises(BadReport):
        csp_reports(body)


def test_beacons_name_hosts_ports_or_urls_and_at_most_twenty() -> None:
    body = {"hosts": ["cdn.example.com", "API.example.com:8443", "https://x.example.org/p?q",
                      "not a host", "localhost", 7, "a.example.com:0", "a.example.com:http"]}  # fmt: skip
    assert beacon(json.dumps(body).encode()) == [
        Escaped("api.example.com:8443", ""), Escaped("cdn.example.com", ""),
        Escaped("x.example.org", "https"),
    ]  # fmt: skip
    many = {"hosts": [f"h{i}.example.com" for i in range(21)]}
    with pytest.raises(BadReport):
        beacon(json.dumps(many).encode())
    for junk in (b"[]", b'{"hosts": "cdn.example.com"}', b"{}", b"x"):
        with pytest.raises(BadReport):
            beacon(junk)
    assert escaped_host("x" * 300 + ".com") is None


RULES = """Title JSTOR
URL https://www.jstor.org/
HJ www.jstor.org
DJ jstor.org
NeverProxy ads.example.net
Title Other
URL http://old.example.org:8080/
H http://old.example.org:8080
"""


def ruleset() -> RuleSet:
    return RuleSet.from_results([parse(RULES, "rules.txt")])


@pytest.mark.parametrize(
    ("escaped", "worth"),
    [
        (Escaped("cdn.jstor-assets.net", "https"), True),
        (Escaped("cdn.jstor-assets.net", ""), True),
        (Escaped("www.jstor.org", "https"), False),  # covered by HJ
        (Escaped("images.jstor.org", "http"), False),  # covered by DJ
        (Escaped("old.example.org:8080", "http"), False),
        (Escaped("old.example.org:8080", "https"), True),  # only http is proxied there
        (Escaped("old.example.org:8080", ""), False),  # a bare host: covered in one scheme
        (Escaped("ads.example.net", "https"), False),  # NeverProxy: adding it would not help
        (Escaped("login.proxy.library.org", "https"), False),
        (Escaped("www-jstor-org.proxy.library.org", "https"), False),
        (Escaped("10.0.0.7", "http"), False),
        (Escaped("127.0.0.1:8080", "http"), False),
        (Escaped("8.8.8.8", "https"), True),
    ],
)  # fmt: skip
def test_only_hosts_a_librarian_could_add_are_worth_recording(
    escaped: Escaped, worth: bool
) -> None:
    assert worth_recording(escaped, ruleset(), DOMAIN) is worth


def test_the_policy_allows_the_proxy_hosts_and_inline_code_and_reports_the_rest() -> None:
    value = policy("https", DOMAIN, "")
    directives = {d.split()[0]: d.split()[1:] for d in value.split("; ")}
    assert set(directives) == {"default-src", "report-uri", "report-to"}
    sources = directives["default-src"]
    assert "https://*.proxy.library.org" in sources and "wss://*.proxy.library.org" in sources
    assert {"'unsafe-inline'", "'unsafe-eval'", "data:", "blob:"} <= set(sources)
    assert not any("nonce" in s or "sha" in s or "strict-dynamic" in s for s in sources)
    assert directives["report-uri"] == ["/__carrel/csp-report"]
    assert reporting_endpoints() == f'{directives["report-to"][0]}="/__carrel/csp-report"'
    dev = policy("http", "proxy.localhost", ":8080")
    assert "http://*.proxy.localhost:8080 ws://*.proxy.localhost:8080" in dev
    assert dev.endswith("; report-uri /__carrel/csp-report")  # report-to would silence it


@pytest.mark.parametrize(
    ("host", "schemes", "line"),
    [
        ("cdn.example.com", ["https"], "HJ https://cdn.example.com"),
        ("cdn.example.com", ["http", "http"], "HJ http://cdn.example.com"),
        ("cdn.example.com:8443", ["https", ""], "HJ https://cdn.example.com:8443"),
        ("cdn.example.com", ["https", "http"], "HJ cdn.example.com"),
        ("cdn.example.com", [""], "HJ cdn.example.com"),
    ],
)
def test_the_line_names_the_scheme_the_reports_said(
    host: str, schemes: list[str], line: str
) -> None:
    assert host_line(host, schemes) == line


def test_the_line_goes_after_the_stanzas_last_host_line_and_parses() -> None:
    text = RULES.replace("DJ jstor.org\n", "DJ jstor.org\nHTTPHeader -request -block Referer\n")
    out = with_line(text, 1, "HJ https://cdn.jstor-assets.net")
    lines = out.splitlines()
    assert lines[3:6] == ["DJ jstor.org", "HJ https://cdn.jstor-assets.net",
                          "HTTPHeader -request -block Referer"]  # fmt: skip
    jstor = parse(out, "rules.txt").databases[0]
    assert any(h.origin.host == "cdn.jstor-assets.net" for h in jstor.hosts)
    title_line = parse(RULES, "rules.txt").databases[1].source.line
    other = with_line(RULES, title_line, "HJ https://cdn.example.org")
    assert other.endswith("H http://old.example.org:8080\nHJ https://cdn.example.org\n")
    with pytest.raises(ValueError, match="not the stanza's Title"):
        with_line(RULES, 2, "HJ x.example.com")
