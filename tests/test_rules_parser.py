"""The stanza parser: directives, abbreviations, position-dependent state, file:line findings."""

from __future__ import annotations

import textwrap

import pytest

from gateway.hostmap import Origin
from gateway.rules.model import (
    CookieMode,
    FormMethod,
    HeaderAction,
    HeaderDirection,
    MimeAction,
    Severity,
)
from gateway.rules.parser import ParseResult, parse


def p(text: str, include: dict[str, str] | None = None) -> ParseResult:
    files = include or {}
    return parse(textwrap.dedent(text), "db.txt", files.get)


def messages(result: ParseResult, severity: Severity) -> list[str]:
    return [str(f) for f in result.findings if f.severity is severity]


def test_a_plain_stanza_gives_title_url_hosts_and_domains() -> None:
    result = p("""\
        # JSTOR
        Title JSTOR
        URL https://www.jstor.org/
        HJ www.jstor.org
        DJ jstor.org
        """)
    assert not result.findings
    (db,) = result.databases
    assert db.title == "JSTOR" and db.url == "https://www.jstor.org/"
    assert str(db.source) == "db.txt:2"
    origins = {(h.origin, h.javascript) for h in db.hosts}
    assert (Origin.of("https", "www.jstor.org"), False) in origins  # from URL: H strength
    assert (Origin.of("http", "www.jstor.org"), True) in origins  # bare HJ: both schemes
    assert (Origin.of("https", "www.jstor.org"), True) in origins
    assert db.domains[0].domain == "jstor.org" and db.domains[0].javascript


def test_directives_are_case_insensitive_with_abbreviations_and_trailing_spaces() -> None:
    result = p(
        "T  Mixed Case   \nu https://A.Example.COM/x  \nh b.example.com:8443\nd example.com\n"
    )
    assert not result.findings
    (db,) = result.databases
    assert db.title == "Mixed Case"
    hosts = {h.origin for h in db.hosts}
    assert Origin.of("https", "a.example.com") in hosts
    assert Origin.of("http", "b.example.com", 8443) in hosts
    assert not db.domains[0].javascript


def test_several_stanzas_in_one_file() -> None:
    result = p("Title A\nURL https://a.example.org\nTitle B\nURL https://b.example.org\n")
    assert [db.title for db in result.databases] == ["A", "B"]


def test_position_dependent_options_hold_until_reset_and_skip_trailing_resets() -> None:
    result = p("""\
        Option DomainCookieOnly
        HTTPMethod PUT
        Title One
        URL https://one.example.org
        Option Cookie
        Title Two
        URL https://two.example.org
        HTTPMethod -*
        Title Three
        URL https://three.example.org
        """)
    one, two, three = result.databases
    assert one.cookie_mode is CookieMode.DOMAIN_COOKIE_ONLY  # the reset after its hosts is not its
    assert two.cookie_mode is CookieMode.COOKIE
    assert one.methods == two.methods == frozenset({"PUT"})
    assert three.methods == frozenset()


def test_headers_mime_filters_anonymous_groups_and_xff_are_recorded() -> None:
    result = p("""\
        Group Medicine
        Option X-Forwarded-For
        AnonymousURL -OPTIONS +https://api.example.org/*
        Title Med
        HTTPHeader -request -process X-Requested-With
        HTTPHeader -response -block Content-Security-Policy
        MimeFilter application/json .* javascript
        AddUserHeader X-Patron
        URL https://med.example.org
        AnonymousURL -*
        """)
    (db,) = result.databases
    assert db.groups == frozenset({"Medicine"})
    assert db.x_forwarded_for
    assert db.anonymous[0].allow and db.anonymous[0].pattern == "https://api.example.org/*"
    assert db.anonymous[0].methods == frozenset({"OPTIONS"})
    assert [(h.direction, h.action, h.name) for h in db.headers] == [
        (HeaderDirection.REQUEST, "process", "X-Requested-With"),
        (HeaderDirection.RESPONSE, "block", "Content-Security-Policy"),
    ]
    assert db.mime_filters[0].action == "javascript"
    assert db.mime_filters[0].action is MimeAction.JAVASCRIPT
    assert db.headers[1].action is HeaderAction.BLOCK
    assert db.header_policy.response == frozenset({"content-security-policy"})
    assert db.user_headers == ("X-Patron",)


def test_find_replace_pairs_keep_their_tokens() -> None:
    result = p(
        "Title F\nURL https://f.example.org\nFind proxycl=https://\nReplace proxycl=https://^A\n"
    )
    (db,) = result.databases
    assert (db.find_replace[0].find, db.find_replace[0].replace) == (
        "proxycl=https://",
        "proxycl=https://^A",
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Title A\nURL https://a.example.org\nReplace x\n", 3, "Replace without a Find"),
        ("Title A\nURL https://a.example.org\nFind x\n", 3, "has no Replace"),
        ("HJ www.example.org\n", 1, "before any Title"),
        (
            "Title A\nURL https://a.example.org\nHJ htttp://b.example.org\n",
            3,
            "only http and https",
        ),
        ("Title A\nURL https://a.example.org\nHJ bad..host.org\n", 3, "not a valid host"),
        ("Title A\nURL ftp://a.example.org\n", 2, "absolute http(s) URL"),
        ("Title A\nURL https://a.example.org\nHTTPMethod P@T\n", 3, "method names"),
        ("Title A\nURL https://a.example.org\nMimeFilter a/b ( javascript\n", 3, "not valid"),
        ("Title A\nURL https://a.example.org\nMimeFilter a/b .* jscript\n", 3, "not one of"),
        ("Title\n", 1, "Title needs a database name"),
    ],
)
def test_syntax_errors_name_file_and_line(text: str, line: int, words: str) -> None:
    errors = messages(p(text), Severity.ERROR)
    assert any(e.startswith(f"db.txt:{line}: error:") and words in e for e in errors), errors


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "Title A\nURL https://a.example.org\nFormVariable x y\n",
            "FormVariable is not implemented",
        ),
        ("Title A\nURL https://a.example.org\nBogus thing\n", "unknown directive 'Bogus'"),
        ("Option MetaEZproxyRewriting\nTitle A\nURL https://a.example.org\n", "not implemented"),
        ("Title A\nURL https://[siteID].example.org\n", "template placeholder"),
        ("LoginPort 2048\nTitle A\nURL https://a.example.org\n", "server directive"),
        ("Title A\nURL https://a.example.org\nIncludeFile missing.txt\n", "no such file"),
    ],
)
def test_unimplemented_directives_are_warnings_never_silent(text: str, words: str) -> None:
    result = p(text)
    warnings = messages(result, Severity.WARNING)
    assert any(words in w and w.startswith("db.txt:") for w in warnings), warnings
    assert not result.errors


def test_include_file_is_inlined_with_its_own_file_name() -> None:
    result = p(
        "IncludeFile common.txt\nTitle A\nURL https://a.example.org\n",
        include={"common.txt": "Option CookiePassThrough\nNeverProxy cdn.example.org\n"},
    )
    (db,) = result.databases
    assert db.cookie_mode is CookieMode.PASS_THROUGH
    assert result.never_proxy[0][0] == "cdn.example.org"
    assert str(result.never_proxy[0][1]) == "common.txt:2"


def test_include_loop_is_an_error() -> None:
    result = p("IncludeFile a.txt\n", include={"a.txt": "IncludeFile a.txt\n"})
    assert any("includes itself" in str(e) for e in result.errors)


def test_global_directives_may_precede_the_title() -> None:
    result = p("""\
        ProxyHostnameEdit intelliconnect.cch.com$ intelliconnect
        NeverProxy static.example.org
        Title CCH
        URL https://intelliconnect.cch.com
        """)
    assert not result.errors
    assert result.hostname_edits[0].replace == "intelliconnect"
    assert result.databases[0].preamble[0].startswith("ProxyHostnameEdit")


def test_url_without_title_is_accepted_titled_by_its_url() -> None:
    result = p("U http://home.example.com\nHJ home.example.com\n")
    assert result.databases[0].title == "http://home.example.com"
    assert not result.errors


def test_preamble_carries_the_state_in_force_for_standalone_export() -> None:
    result = p("""\
        Option DomainCookieOnly
        HTTPHeader X-Requested-With
        AnonymousURL +https://a.example.org/api/*
        Title A
        URL https://a.example.org
        """)
    assert result.databases[0].preamble == (
        "Option DomainCookieOnly",
        "HTTPHeader X-Requested-With",
        "AnonymousURL +https://a.example.org/api/*",
    )


def test_a_setting_after_the_last_stanza_is_flagged_but_resets_are_not() -> None:
    result = p("""\
        Title A
        URL https://a.example.org
        HTTPMethod PUT
        Option Cookie
        AnonymousURL -*
        """)
    warnings = messages(result, Severity.WARNING)
    assert warnings == [
        "db.txt:3: warning: HTTPMethod holds for the stanzas after it, and none follows; "
        "put it before the Title of the stanza it is for"
    ]
    followed = p(
        "Title A\nURL https://a.example.org\nHTTPMethod PUT\nTitle B\nURL https://b.example.org\n"
    )
    assert not messages(followed, Severity.WARNING)
    assert followed.databases[1].methods == frozenset({"PUT"})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HJ http://127.0.0.1:8080", "HJ names 127.0.0.1, a loopback address"),
        ("HostJavaScript 127.0.0.1", "HJ names 127.0.0.1, a loopback address"),
        ("H 10.0.0.5", "Host names 10.0.0.5, a private address"),
        ("Host https://192.168.1.1:8443/", "Host names 192.168.1.1, a private address"),
        ("D 172.16.0.1", "Domain names 172.16.0.1, a private address"),
        ("DJ 169.254.169.254", "DJ names 169.254.169.254, the cloud metadata address"),
        ("URL http://169.254.169.254/latest/", "URL names 169.254.169.254, the cloud metadata"),
        ("U 100.64.0.1", "URL names 100.64.0.1, a carrier-grade NAT address"),
        ("AnonymousURL +http://127.0.0.1/*", "AnonymousURL names 127.0.0.1, a loopback address"),
        ("AnonymousURL *://10.0.0.1:8080/api/*", "AnonymousURL names 10.0.0.1, a private"),
        ("HJ https://[::1]/", "HJ names ::1, a loopback address"),
        ("URL https://[::1]:8443/x", "URL names ::1, a loopback address"),
        ("HJ https://[::ffff:127.0.0.1]/", "an IPv4-mapped address for 127.0.0.1, a loopback"),
        ("H http://[64:ff9b::a9fe:a9fe]/", "a NAT64 address for 169.254.169.254"),
        ("H http://[fd00:ec2::254]/", "Host names fd00:ec2::254, a private (unique local)"),
        ("HJ http://2130706433/", "HJ names 2130706433 (127.0.0.1), a loopback address"),
        ("HJ http://0x7f.1/", "HJ names 0x7f.1 (127.0.0.1), a loopback address"),
        ("HJ 127.1", "HJ names 127.1 (127.0.0.1), a loopback address"),
        ("HJ 127.0.0.1.", "HJ names 127.0.0.1, a loopback address"),
        ("URL http://0.0.0.0:8080/", "URL names 0.0.0.0, an unspecified"),
    ],
)
def test_a_rule_naming_a_non_public_address_is_an_error_at_its_line(
    line: str, message: str
) -> None:
    result = p(f"Title A\nURL https://a.example.org\n{line}\nTitle B\nURL https://b.example.org\n")
    (error,) = messages(result, Severity.ERROR)
    assert error.startswith("db.txt:3: error: ") and message in error, error
    assert error.endswith(": the gateway never connects to non-public addresses")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("H 8.8.2056", "Host names 8.8.2056 (8.8.8.8): write the address as 8.8.8.8"),
        (
            "HJ 0x08.0x08.0x08.0x08",
            "HJ names 0x08.0x08.0x08.0x08 (8.8.8.8): write the address as 8.8.8.8",
        ),
        ("HJ www.example.300", "'www.example.300' is not a valid host name"),
        ("H 1.2.3.4.5", "'1.2.3.4.5' is not a valid host name"),
    ],
)
def test_an_address_spelled_oddly_or_a_host_ending_in_a_number_is_an_error(
    line: str, message: str
) -> None:
    errors = messages(p(f"Title A\nURL https://a.example.org\n{line}\n"), Severity.ERROR)
    assert errors == [f"db.txt:3: error: {message}"]


def test_public_addresses_and_wildcard_patterns_are_accepted() -> None:
    result = p("""\
        AnonymousURL +http://*.example.org/*
        AnonymousURL +http://10.*/*
        Title A
        URL http://65.245.134.215/start
        H 206.181.209.21
        HJ 130.132.52.51:8080
        """)
    assert not result.errors
    hosts = {h.origin.host for h in result.databases[0].hosts}
    assert hosts == {"65.245.134.215", "206.181.209.21", "130.132.52.51"}


def test_http_header_forms_carrel_does_not_implement_warn_at_their_line() -> None:
    result = p("""\
        HTTPHeader -response -edit Access-Control-Allow-Origin ^(.*)$ $1
        HTTPHeader -request -inject X-Proxy-Server x
        HTTPHeader -request -unrewrite Origin
        Title A
        URL https://a.example.org
        """)
    warnings = messages(result, Severity.WARNING)
    assert warnings[:3] == [
        "db.txt:1: warning: HTTPHeader -edit is not implemented by Carrel: "
        "Access-Control-Allow-Origin passes unchanged; line ignored",
        "db.txt:2: warning: HTTPHeader option -inject is not implemented by Carrel; line ignored",
        "db.txt:3: warning: HTTPHeader option -unrewrite is not implemented by Carrel; "
        "line ignored",
    ]
    assert result.databases[0].headers == ()


def test_header_lines_compile_in_order_once_per_database() -> None:
    result = p("""\
        HTTPHeader -request -block Referer
        HTTPHeader -request -block Origin
        HTTPHeader -request -unblock origin
        HTTPHeader -response -block Link
        HTTPHeader -response -process Link
        Title A
        URL https://a.example.org
        HTTPHeader -*
        Title B
        URL https://b.example.org
        """)
    a, b = result.databases
    assert a.header_policy.request == frozenset({"referer"})
    assert a.header_policy.response == frozenset()
    assert b.header_policy.request == frozenset() and b.headers == ()


def test_url_form_lines_with_form_variables_are_named_starting_points() -> None:
    result = p("""\
        Title Kompass
        URL -Form=POST kompass https://us.kompass.com/login?x=1
        FormVariable login_header{actionForm.login}=LIBRARY1
        FormVariable -expr username=session:user
        FormVariable returnPage
        URL -RewriteHost other https://us.kompass.com/other
        """)
    (db,) = result.databases
    form, other = db.starts
    assert (form.label, form.url, form.method) == ("kompass", "https://us.kompass.com/login?x=1",
                                                   FormMethod.POST)  # fmt: skip
    assert form.variables == (("login_header{actionForm.login}", "LIBRARY1"),)
    assert (other.label, other.method) == ("other", None)
    assert db.url == "https://us.kompass.com/login?x=1"
    assert messages(result, Severity.WARNING) == [
        "db.txt:4: warning: FormVariable -expr is not implemented by Carrel; not sent",
        "db.txt:5: warning: FormVariable returnPage has no value (EZproxy copies it from the "
        "link's query, which Carrel does not implement); not sent",
        "db.txt:6: warning: URL option -RewriteHost is not implemented by Carrel; ignored",
        "db.txt:6: warning: second URL line in 'Kompass'; the first one stays the start URL",
    ]
    assert not result.errors


@pytest.mark.parametrize(
    "line", ["URL https://<Institution_ID>.vendor.com/", "FormVariable site=${siteName}"]
)
def test_template_placeholders_are_warnings_at_their_line(line: str) -> None:
    result = p(f"Title V\nURL -Form=post v https://v.example.org/\n{line}\n")
    assert not result.errors
    (warning,) = messages(result, Severity.WARNING)
    assert warning.startswith("db.txt:3: warning: ") and "template placeholder" in warning
